//! The lifecycle of `gatehouse apply` and `expire` as a library: the command line parses the
//! flags and calls [`pipeline::run`], [`doctor::run`], [`approvals::run`] or [`plan::make_plan`].
//!
//! One file a concern: [`pipeline`] (plan, guard, ledger, providers, in that order),
//! [`ledger_commit`] (the grant files and their commit), [`origins`] (which pull request brought
//! each request, judged again), [`approvals`] (the GitHub edge of the approval rules, which are
//! `gatehouse_core::approval`), [`notices`] (expiry notices), [`failures`] (what outlives a
//! run, and the issue about failing providers), [`issues`] (the issues `apply` keeps, found by
//! title), [`doctor`] (the credentials), [`plan`] (what `apply` would do), [`audit`] (what
//! `gatehouse audit` reads and finds), [`online`] (the facts `check --online` and the audit
//! ask GitHub for), [`run_approval_rows`] (the guard's run approvals read from its store for
//! `audit --db` and `history --db`).

pub mod approvals;
pub mod audit;
pub mod doctor;
pub mod failures;
pub mod fsutil;
mod issues;
mod ledger_commit;
mod notices;
pub mod online;
pub mod origins;
pub mod pipeline;
pub mod plan;
pub mod run_approval_rows;

use std::path::Path;

use jiff::civil::Date;

pub use failures::sent_configuration;
pub use issues::HELD_TITLE;
pub use pipeline::{ApplyOptions, Mode, granted_at};

/// Loads the repository and warns (on stderr) when `check` would find errors in it: commands
/// that act on a broken repository act on the files that loaded, which grant less, never more.
pub fn load_repo_warn(dir: &Path, today: Date) -> anyhow::Result<gatehouse_core::Repo> {
    let repo = gatehouse_core::repo::load_dir(dir)?;
    let errors = gatehouse_core::check::run_all(&repo, today).errors();
    if errors > 0 {
        eprintln!(
            "warning: {} has {errors} error(s); files that failed to load grant nothing. Run `gatehouse check {}` to see them",
            dir.display(),
            dir.display()
        );
    }
    Ok(repo)
}
