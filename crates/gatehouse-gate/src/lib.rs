//! The gate on the runner: what `gatehouse gate` (run by a self-hosted runner's job-started
//! hook before the job's first step) and the guard share.
//!
//! - [`runner`]: the job as the runner's environment and event file tell it;
//! - [`admission`]: the request a gate sends the guard, and its answer;
//! - [`snapshot`]: the signed policy snapshot a gate decides from when the guard cannot be
//!   reached, and its keys;
//! - [`offline`]: that decision.
//!
//! What it is not: the command line's I/O (reading files and the environment, HTTP) or the
//! guard's endpoints; both live with their programs. Nothing here reads the clock.

pub mod admission;
pub mod offline;
pub mod runner;
pub mod snapshot;
