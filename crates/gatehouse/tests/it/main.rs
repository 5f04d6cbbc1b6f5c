//! The integration tests of the `gatehouse` binary, in one test binary (as ripgrep's `tests/`):
//! one module per command or concern, each of which was a test binary of its own, linked on its
//! own. What several of them share is `support` (the fakes, the apply world, a folder copy).

mod admin_requests_cli;
mod apply_e2e;
mod apply_judge;
mod apply_scale;
mod apply_tos;
mod approvals;
mod audit_cli;
mod check_cli;
mod cirun;
mod codeowners;
/// A fresh SQLite file or PostgreSQL database per test: the guard's tests' own.
#[path = "../../../gatehouse-server/tests/it/db.rs"]
mod db;
mod decide_cli;
mod distribution;
mod gate;
mod github_contract;
mod history_cli;
mod hosted_runners;
mod import_cli;
mod init;
mod kill_apply;
mod online;
mod plan_cli;
mod replay_cli;
mod run_approvals_cli;
mod security_md;
mod serve_cli;
mod serve_secrets;
mod site_cli;
mod support;
mod why_cli;
