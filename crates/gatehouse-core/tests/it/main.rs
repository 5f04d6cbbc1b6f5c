//! The integration tests of `gatehouse-core`, in one test binary (as ripgrep's `tests/`): one
//! module per concern, each of which was a test binary of its own, linked on its own.

mod bad_input;
mod checks;
mod import_cirun;
mod ledger;
mod parsers_proptest;
