//! The integration tests of `gatehouse-policy`, in one test binary (as ripgrep's `tests/`): one
//! module per concern, each of which was a test binary of its own, linked on its own.

mod conformance;
mod differential;
mod render_cirun;
mod routing;
mod run_approvals;
mod teams;
