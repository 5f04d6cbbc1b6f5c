//! The access repository's file formats, one module per file kind.
//!
//! Every struct rejects unknown fields (a typo in a request is an error, never ignored) and keeps
//! the source location of the values that checks point at.

mod account;
mod gate;
mod grant;
mod pool;
mod provider;
mod request;
mod resource;
mod settings;
mod tos;

pub(crate) use account::ACCOUNT_ID_HELP;
pub use account::AccountId;
pub use gate::{
    DEFAULT_CONCURRENCY_WAIT_SECS, GateSettings, OnUnreachable, PoolSettings, gate_wait_limit_secs,
    parse_wait,
};
pub use grant::{Grant, GrantFile, GrantUser, GrantUsers, Standing, Validity};
pub use pool::{DEFAULT_ALERTS, Pool};
pub use provider::{
    CirunProvider, CirunVia, GithubAppProvider, ProviderKind, ProviderSettings, RunnerGroupProvider,
};
pub use request::{
    ADMIN_ACTIONS, ActionOnly, OTHER_ADMIN_ACTIONS, Request, RequestAction, RequestFile,
    RequestForm, TosClaim,
};
pub use resource::{BotTrust, Cost, Defaults, OnExceed, Quota, Resource, Role, Specs, UserPolicy};
pub use settings::{
    GuardMode, GuardSettings, OutlierSettings, Reviewers, RunApprovalAudit, RunApprovalSettings,
    Settings,
};
pub use tos::{TosEntry, TosList};
