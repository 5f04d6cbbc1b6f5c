//! gatehouse's public ledger: the access repository as a static site (HTML and a versioned
//! JSON API under `v1/`) and the usage dashboard's pages.
//!
//! [`Ledger::build`] turns a loaded [`gatehouse_core::Repo`] (plus, optionally, the grant
//! history read from git and the pull requests behind pending requests) into sorted records;
//! [`render_site`] writes every page and JSON file from them. [`render_dashboard`],
//! [`render_resource_usage`] and [`render_project_usage`] render the live usage pages from
//! plain data that `gatehouse serve` reads from its store.
//!
//! What it is not: it reads no files, runs no git and no clock (the day is passed in), and
//! writes nothing; the CLI and the server do that. The output depends only on its inputs, so
//! the same repository gives byte-identical files that can be committed and diffed.

pub mod cost;
pub mod ledger;
pub mod pools;
pub mod queue;
pub mod render;
pub mod usage;

pub use ledger::{HistoryEvent, Ledger, LedgerInputs, SCHEMA_VERSION};
pub use render::{
    DashboardPage, RenderError, Site, SiteOptions, render_dashboard, render_pool, render_pools,
    render_project_usage, render_queue, render_resource_usage, render_site,
};
pub use usage::{
    ApprovedJobShown, Dashboard, DeniedJob, ProjectResourceUsage, ProjectUsage, ResourceUsage,
    RunApprovalShown,
};
