//! gatehouse's one client for GitHub's REST API, used by the command line (`apply`, `doctor`,
//! `approvals`, `check --online`, ...) and by the guard (`serve`).
//!
//! [`Client`] handles what every call needs once: the token, timeouts, retries with backoff,
//! `Retry-After` and rate-limit resets (primary and secondary limits, shared by every request
//! of the client), spacing between mutating calls, conditional requests and `Link`
//! pagination. The typed calls ([`actions`], [`collaborators`], [`hooks`], [`hosted_runners`])
//! name each endpoint and the shape of its answer as GitHub's OpenAPI description
//! (`@octokit/openapi`) gives it.
//! Cirun's API follows the same conventions, so the same client serves it
//! ([`Service::Cirun`]).
//!
//! What it is not: a general SDK. It knows the endpoints gatehouse uses and nothing else.
//! Secrets ([`Secret`]) never appear in its logs or errors.

pub mod actions;
mod client;
pub mod collaborators;
pub mod hooks;
pub mod hosted_runners;
pub mod issues;
pub mod run_approvals;
mod secret;

pub use client::{
    Client, Conditional, Error, GitHub, Method, Page, Priority, RepoInfo, Service, Settings, Url,
};
pub use secret::Secret;
