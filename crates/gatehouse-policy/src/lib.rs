//! gatehouse's decision engine.
//!
//! [`compile`] turns the access repository into a [`Policy`], an immutable index built for
//! speed; [`Policy::decide`] answers, for one CI job, whether it may run on the resource its
//! labels ask for, with a stable rule code and a message that tells the person what to do.
//! [`Policy::explain`] gives the same decision with every rule's result.
//!
//! The renderers turn the same repository into what providers and other engines read:
//! Cirun's `.access.yml` ([`render::cirun`]) and Cedar policies with entities
//! ([`render::cedar`]), the latter used as an independent oracle in tests.
//!
//! Nothing here does I/O or reads the clock.

mod compile;
mod decide;
mod job;
pub mod render;
mod run_approval;
mod shared;
mod source;

pub use compile::{
    CompiledGrant, CompiledResource, GrantId, Policy, ResourceId, compile, compile_source,
};
pub use decide::{
    Cap, Checked, Decision, Denial, DenyReason, DenyRule, Routed, Step, Tracer, Who, decide_with,
    is_pull_request_event,
};
pub use job::{Actor, Job, JobContext, Missing, Permission, Run, Usage};
pub use run_approval::{NotApprover, RunApproval};
pub use shared::SharedPolicy;
pub use source::{GrantSource, PolicySource, ResourceSource};
