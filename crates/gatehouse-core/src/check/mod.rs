//! `gatehouse check`: a flat table of independent checks.
//!
//! Each check is a plain function over the loaded repository that pushes what it finds into one
//! [`Diagnostics`]. All of them run, whatever the others found, so a contributor sees every
//! problem at once. Adding a rule means adding one function and one line in [`CHECKS`].
//!
//! Checks share one [`Index`] built up front, so that each is linear in the size of the
//! repository.

mod codeowners;
mod gate;
mod grants;
mod online;
mod people;
mod pools;
mod requests;
mod resources;
mod settings;
mod tos;

use std::collections::HashMap;

use jiff::civil::Date;

use crate::diag::Diagnostics;
use crate::model::{Grant, Resource};
use crate::names::{label_key, project_key};
use crate::repo::{Loaded, Repo};

pub use codeowners::codeowners;
pub use online::{OnlineFacts, RepoFact, UserFact, check_online, online_targets};

/// What every check sees: the repository, today's date, and lookups built once.
pub struct CheckContext<'a> {
    pub repo: &'a Repo,
    /// The day checks judge expiry against (passed in: the core never reads the clock).
    pub today: Date,
    pub index: Index<'a>,
}

/// One project's grants: resource -> every grant of it, with the file it is in.
pub type Holdings<'a> = HashMap<&'a str, Vec<(&'a str, &'a Grant)>>;

/// Lookups shared by the checks.
pub struct Index<'a> {
    /// Resources by name; the first file wins when a name is defined twice.
    pub resources: HashMap<&'a str, &'a Loaded<Resource>>,
    /// Every grant to a project ([`project_key`]), by resource, with the file it is in.
    pub grants: HashMap<String, Holdings<'a>>,
    /// Resources by the routing key of each label they claim.
    pub labels: HashMap<String, Vec<&'a str>>,
}

impl<'a> Index<'a> {
    pub fn build(repo: &'a Repo) -> Self {
        let mut resources = HashMap::with_capacity(repo.resources.len());
        let mut labels: HashMap<String, Vec<&str>> = HashMap::new();
        for r in &repo.resources {
            resources.entry(r.value.name.as_str()).or_insert(r);
            for label in &r.value.labels {
                let owners = labels.entry(label_key(label)).or_default();
                if !owners.contains(&r.value.name.as_str()) {
                    owners.push(r.value.name.as_str());
                }
            }
        }
        let mut grants: HashMap<String, Holdings<'_>> = HashMap::new();
        for file in &repo.grants {
            let held = grants.entry(project_key(&file.value.project)).or_default();
            for g in &file.value.grants {
                held.entry(g.resource.as_str())
                    .or_default()
                    .push((file.path.as_str(), g));
            }
        }
        Index {
            resources,
            grants,
            labels,
        }
    }

    /// Whether `project`, in whatever case, holds `resource`.
    pub fn has_grant(&self, project: &str, resource: &str) -> bool {
        self.grants
            .get(&project_key(project))
            .is_some_and(|held| held.contains_key(resource))
    }
}

pub type CheckFn = fn(&CheckContext<'_>, &mut Diagnostics);

/// Every offline check, by name. The names are what `gatehouse check --list` prints and
/// `--skip NAME` leaves out, and appear in its `--help`.
pub const CHECKS: &[(&str, CheckFn)] = &[
    ("files", report_load_errors),
    ("settings", settings::validate_settings),
    ("gate-pools", gate::validate_gate_pools),
    ("resource-files", resources::validate_resource_files),
    ("resource-providers", resources::validate_resource_providers),
    ("resource-labels", resources::validate_labels),
    ("concurrency-caps", resources::validate_caps),
    ("job-time-limits", resources::validate_job_time_limits),
    ("costs", resources::validate_costs),
    ("grant-files", grants::validate_grant_files),
    ("grant-projects", grants::validate_duplicate_projects),
    ("grant-resources", grants::validate_grant_resources),
    ("grant-dates", grants::validate_grant_dates),
    ("grant-duplicates", grants::validate_duplicate_grants),
    ("pools", pools::validate_pools),
    ("user-ids", people::validate_user_ids),
    ("request-projects", requests::validate_request_projects),
    ("request-resources", requests::validate_request_resources),
    ("request-targets", requests::validate_request_targets),
    ("request-dates", requests::validate_request_dates),
    ("admin-requests", requests::validate_admin_requests),
    ("request-tos", requests::validate_request_tos),
    ("tos", tos::validate_tos),
    ("codeowners", codeowners::validate_codeowners),
];

/// Runs every offline check.
pub fn run_all(repo: &Repo, today: Date) -> Diagnostics {
    run_except(repo, today, &[])
}

/// Runs every offline check but those whose [`CHECKS`] name is in `skip`.
pub fn run_except(repo: &Repo, today: Date, skip: &[String]) -> Diagnostics {
    let ctx = CheckContext {
        repo,
        today,
        index: Index::build(repo),
    };
    let mut diags = Diagnostics::new();
    for (name, check) in CHECKS {
        if !skip.iter().any(|s| s == name) {
            check(&ctx, &mut diags);
        }
    }
    diags
}

fn report_load_errors(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    diags.extend(ctx.repo.load_errors.clone());
}
