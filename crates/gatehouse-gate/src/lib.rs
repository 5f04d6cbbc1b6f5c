//! The gate on the runner: what `gatehouse gate` (run by a self-hosted runner's job-started
//! hook before the job's first step) and the guard share.
//!
//! - [`runner`]: the job as the runner's environment and event file tell it;
//! - [`admission`]: the request a gate sends the guard, and its answer;
//! - [`snapshot`]: the signed policy snapshot a gate decides from when the guard cannot be
//!   reached, and its keys;
//! - [`offline`]: that decision;
//! - [`serves`]: which resource a runner serves (its pool, its resource, or its labels);
//! - [`hook`]: the runner's edge, what `gatehouse gate` does (the environment, the files, the
//!   guard over HTTP) and the runner-side commands beside it.
//!
//! What it is not: the command line's argument parsing or the guard's endpoints; both live
//! with their programs. Only [`hook`] does I/O or reads the clock.

pub mod admission;
pub mod hook;
pub mod offline;
pub mod runner;
pub mod serves;
pub mod snapshot;
