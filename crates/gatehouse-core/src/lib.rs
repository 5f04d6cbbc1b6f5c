//! The pure core of gatehouse: the access repository's model, the loader that reads it, and the
//! checks that validate it.
//!
//! Nothing here touches the network, reads the clock or the environment; the one place that
//! reads files is [`repo::load_dir`], at the edge. Everything else is a function of its inputs
//! and can be tested without any setup.

pub mod approval;
#[cfg(test)]
mod architecture;
pub mod audit;
pub mod check;
pub mod cost;
pub mod desired;
pub mod diag;
pub mod duration;
pub mod fixture;
pub mod import;
pub mod ledger;
pub mod model;
pub mod names;
pub mod outliers;
pub mod parse;
pub mod pools;
pub mod repo;
pub mod span;
pub mod tos_claims;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use repo::Repo;
pub use span::{Span, Spanned};
