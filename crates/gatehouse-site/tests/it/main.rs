//! The integration tests of `gatehouse-site`, in one test binary (as ripgrep's `tests/`): one
//! module per concern, as in the other crates, so a new concern adds a module, not a binary.

mod site;
