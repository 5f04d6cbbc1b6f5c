use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::span::Spanned;

/// `gatehouse.yml`: organisation-wide settings.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The GitHub organisation that owns the projects' repositories.
    pub org: Spanned<String>,
    /// Appended to a project name to get its repository name (`-feedstock` at conda-forge).
    #[serde(default)]
    pub repo_suffix: String,
    /// Who reviews requests, unless a resource names its own reviewers.
    pub reviewers: Reviewers,
    #[serde(default)]
    pub guard: GuardSettings,
    /// The providers that resources are served by, by name.
    #[serde(default)]
    pub providers: BTreeMap<String, super::ProviderSettings>,
    /// Runner pools that refuse jobs before their first step (`gatehouse gate`).
    #[serde(default)]
    pub gate: super::GateSettings,
    /// People whose requests committed straight to the default branch (with no pull request
    /// that GitHub links to the commit) `apply` grants anyway, matched by account id
    /// (`{ github: login, id: N }`): the commit's GitHub author and committer must both be
    /// listed. Empty (the default): `apply` grants only requests whose merged pull request it
    /// judges approved. `audit` reports the list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept_unreviewed: Vec<crate::span::Spanned<super::GrantUser>>,
    /// Bot accounts, named by numeric account id (`{ github: regro-cf-autotick-bot, id: N }`).
    /// A bot is never a maintainer: whatever role GitHub gives it, the guard judges it as
    /// having none, and it cannot approve runs. Its pull requests run on managed runners
    /// through a run approval of their head commit, like anyone's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bots: Vec<crate::span::Spanned<super::GrantUser>>,
    /// Run approvals: how someone who may start a resource's jobs approves one pull request's
    /// head commit for managed runners (the guard, `gatehouse serve`). Not the approvals of
    /// access requests (`gatehouse approvals`).
    #[serde(default)]
    pub run_approvals: RunApprovalSettings,
}

/// `run_approvals:` in `gatehouse.yml`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RunApprovalSettings {
    /// What a new pull request comment starts with (`/gatehouse run <sha> [resource ...]`),
    /// or an approving review's text contains, to approve the head commit.
    #[serde(default = "default_phrase")]
    pub phrase: String,
    /// How many runs an approval admits besides those the guard re-runs itself.
    #[serde(default = "default_runs")]
    pub runs: u32,
    /// How many hours an approval stays in force.
    #[serde(default = "default_hours")]
    pub hours: u32,
    /// When `audit --db` reports on run approvals.
    #[serde(default)]
    pub audit: RunApprovalAudit,
}

impl Default for RunApprovalSettings {
    fn default() -> Self {
        RunApprovalSettings {
            phrase: default_phrase(),
            runs: default_runs(),
            hours: default_hours(),
            audit: RunApprovalAudit::default(),
        }
    }
}

/// `run_approvals.audit:` when `audit --db` reports on run approvals of the last `days` days:
/// an approver of `many_pulls` or more pull requests from one outside account's fork, and an
/// approved job that ran more than `factor` times its project's median job and at least
/// `min_minutes` (a project with fewer than `min_jobs` counted jobs has no median to compare).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RunApprovalAudit {
    #[serde(default = "default_audit_days")]
    pub days: u32,
    #[serde(default = "default_many_pulls")]
    pub many_pulls: u32,
    #[serde(default = "default_job_factor")]
    pub factor: u32,
    #[serde(default = "default_job_minutes")]
    pub min_minutes: u32,
    #[serde(default = "default_min_jobs")]
    pub min_jobs: u32,
}

impl Default for RunApprovalAudit {
    fn default() -> Self {
        RunApprovalAudit {
            days: default_audit_days(),
            many_pulls: default_many_pulls(),
            factor: default_job_factor(),
            min_minutes: default_job_minutes(),
            min_jobs: default_min_jobs(),
        }
    }
}

fn default_audit_days() -> u32 {
    90
}

fn default_many_pulls() -> u32 {
    5
}

fn default_job_factor() -> u32 {
    3
}

fn default_job_minutes() -> u32 {
    30
}

fn default_min_jobs() -> u32 {
    5
}

fn default_phrase() -> String {
    "/gatehouse run".into()
}

fn default_runs() -> u32 {
    3
}

fn default_hours() -> u32 {
    24
}

impl Settings {
    /// The repository that holds a project: `org/<project><repo_suffix>`.
    pub fn repository_of(&self, project: &str) -> String {
        format!("{}/{}{}", self.org.value, project, self.repo_suffix)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reviewers {
    /// Team slugs in the organisation whose members may approve.
    #[serde(default)]
    pub teams: Vec<Spanned<String>>,
    /// Individual logins who may approve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<Spanned<String>>,
    /// How many distinct approvals a request needs.
    #[serde(default = "one")]
    pub min_approvals: Spanned<u32>,
}

fn one() -> Spanned<u32> {
    Spanned::unplaced(1)
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardSettings {
    #[serde(default)]
    pub mode: GuardMode,
    /// When a project's minutes this week are flagged as far above its usual ones.
    #[serde(default)]
    pub outliers: OutlierSettings,
    /// The access repository on GitHub (`owner/name`), where the guard opens its issues: one
    /// per sponsor credit pool whose alert thresholds are reached. Without it, alerts are only
    /// logged and shown on the pool's page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issues_repository: Option<crate::span::Spanned<String>>,
}

/// A project is an outlier when its minutes this week are at least `min_minutes` and more than
/// `factor` times the median of its previous `weeks` weeks (weeks start on Monday).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutlierSettings {
    #[serde(default = "default_factor")]
    pub factor: u32,
    #[serde(default = "default_weeks")]
    pub weeks: u32,
    #[serde(default = "default_min_minutes")]
    pub min_minutes: u64,
}

impl Default for OutlierSettings {
    fn default() -> Self {
        OutlierSettings {
            factor: default_factor(),
            weeks: default_weeks(),
            min_minutes: default_min_minutes(),
        }
    }
}

fn default_factor() -> u32 {
    4
}

fn default_weeks() -> u32 {
    8
}

fn default_min_minutes() -> u64 {
    60
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GuardMode {
    /// Cancel jobs that are denied.
    #[default]
    Enforce,
    /// Only record what would have been denied.
    DryRun,
}
