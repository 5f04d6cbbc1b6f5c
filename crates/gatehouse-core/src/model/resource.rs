use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Reviewers;
use crate::duration::GrantDuration;
use crate::span::Spanned;

/// `resources/<name>.yml`: one scarce CI resource.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub name: Spanned<String>,
    /// A provider defined in `gatehouse.yml`.
    pub provider: Spanned<String>,
    /// The runs-on labels that route a job to this resource.
    #[serde(default)]
    pub labels: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specs: Option<Specs>,
    /// Who should ask for it, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligibility: Option<String>,
    /// Overrides the reviewers of `gatehouse.yml` for this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewers: Option<Reviewers>,
    /// Every grant of this resource must expire within this duration of being granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Spanned<GrantDuration>>,
    /// The longest a job may run on this resource, in minutes: the guard cancels the run of a
    /// job in progress for longer, and `audit` reports jobs whose `timeout-minutes` is missing
    /// or larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_job_minutes: Option<Spanned<u32>>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub users: UserPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// What a minute of it costs: every counted minute has a cost, and the caps give the most
    /// a month can cost ([`crate::cost`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Spanned<Cost>>,
    /// `trusted`: pushes by the bots of `gatehouse.yml` to a project's own default branch
    /// (code maintainers already merged: re-renders, automerge) may use the resource, the bot
    /// judged by the grant's user list and terms but not by its role. Absent: bots are never
    /// trusted (their pull requests need a run approval). `audit` lists these resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bots: Option<Spanned<BotTrust>>,
}

/// What a resource trusts bots with ([`Resource::bots`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BotTrust {
    /// Pushes to a project's own default branch.
    Trusted,
}

/// A resource's price: `per_minute` or `per_hour` (one of them), in `currency` (an ISO 4217
/// code such as `USD` or `EUR`).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<Spanned<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<Spanned<f64>>,
    pub currency: Spanned<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Specs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_gb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_gb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// The provider's name for the machine (flavor, instance type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
}

/// Defaults for grants of this resource, when the request does not say.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    pub pull_request: bool,
    /// Whether grants let forks' pull requests run (judged by the fork's owner too), unless a
    /// grant says otherwise. Absent: `true`. `false` refuses forks for every grant that does
    /// not say `forks: true` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forks: Option<bool>,
}

/// Who may trigger a job on this resource, within a project that holds a grant.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPolicy {
    /// The repository roles that may trigger jobs.
    #[serde(default = "default_roles")]
    pub roles: Vec<Spanned<Role>>,
    /// The person must be in `people/tos.yml` (matched by numeric id).
    #[serde(default)]
    pub require_tos: bool,
}

impl Default for UserPolicy {
    fn default() -> Self {
        UserPolicy {
            roles: default_roles(),
            require_tos: false,
        }
    }
}

fn default_roles() -> Vec<Spanned<Role>> {
    [Role::Admin, Role::Maintain, Role::Write]
        .into_iter()
        .map(Spanned::unplaced)
        .collect()
}

/// A person's role on a repository, as GitHub names it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Maintain,
    Write,
    Triage,
    Read,
}

impl Role {
    /// The role's name, as GitHub and Cirun spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Maintain => "maintain",
            Role::Write => "write",
            Role::Triage => "triage",
            Role::Read => "read",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Minutes one project may use per calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_minutes_per_month: Option<u64>,
    /// Minutes all projects together may use per calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes_per_month: Option<u64>,
    /// Jobs that may hold a machine of this resource at once (running, or admitted by a gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Spanned<u32>>,
    /// Jobs of one project that may hold a machine of this resource at once, so that one
    /// project cannot hold the whole pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_concurrency: Option<Spanned<u32>>,
    /// What the guard's webhook path does with a job that goes in progress beyond a cap (the
    /// resource's, its project's or its provider's `max_concurrency`) on a resource no gate
    /// serves: `cancel` its run (the default) or only `record` it. A gate waits, then fails
    /// the one job, whatever this says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exceed: Option<Spanned<OnExceed>>,
}

/// What the webhook path does with a job beyond a concurrency cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnExceed {
    /// Cancel the job's run (GitHub cancels only whole runs).
    #[default]
    Cancel,
    /// Only record it (in the decisions, on the guard's pages).
    Record,
}
