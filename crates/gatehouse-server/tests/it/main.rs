//! The integration tests of `gatehouse-server`, in one test binary (as ripgrep's `tests/`): one
//! module per concern, each of which was a test binary of its own, linked on its own.
//! What several of them share is here once: the databases (`db`) and the contract tests'
//! recording proxy and schema checks (`tests/contract/`, shared with `gatehouse`'s tests).

mod capacity;
mod db;
#[path = "../../../../tests/contract/recorder.rs"]
mod recorder;
#[path = "../../../../tests/contract/schema.rs"]
mod schema;
mod serve;
mod webhook_contract;
mod webhook_inputs;
