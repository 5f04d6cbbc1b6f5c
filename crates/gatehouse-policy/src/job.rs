//! The job context: everything `decide` needs to know about one CI job.
//!
//! The guard builds it from `workflow_job` and `workflow_run` webhooks plus the facts it looks
//! up (each actor's permission on the repository, the usage counters); `gatehouse decide` reads
//! it as JSON.

use gatehouse_core::duration::Day;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobContext {
    /// `owner/name` of the repository the job runs in.
    pub repository: String,
    /// The job's `runs-on` labels.
    pub labels: Vec<String>,
    /// The event that triggered the workflow (`push`, `pull_request`, ...).
    pub event: String,
    /// `owner/name` of the repository the code comes from; differs from `repository` for a
    /// pull request from a fork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_repository: Option<String>,
    /// Who caused the run (for a re-run: who caused the original run).
    pub actor: Actor,
    /// Who triggered this run (differs from `actor` on a re-run by someone else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggering_actor: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(default)]
    pub usage: Usage,
    /// The day the job is judged on (expiry). The guard and the CLI fill it in; when absent,
    /// the day the policy was compiled is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub today: Option<Day>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub login: String,
    /// The numeric GitHub account id: what identifies a person across renames.
    pub id: i64,
    /// The person's role on the repository; absent means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<Permission>,
}

/// A role on a repository, as GitHub's collaborator permission API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    Admin,
    Maintain,
    Write,
    Triage,
    Read,
    None,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Admin => "admin",
            Permission::Maintain => "maintain",
            Permission::Write => "write",
            Permission::Triage => "triage",
            Permission::Read => "read",
            Permission::None => "none",
        }
    }

    /// The bit of this role in a [`crate::Policy`] role mask; `none` has none.
    pub(crate) fn bit(self) -> u8 {
        match self {
            Permission::Admin => 1,
            Permission::Maintain => 2,
            Permission::Write => 4,
            Permission::Triage => 8,
            Permission::Read => 16,
            Permission::None => 0,
        }
    }
}

/// Minutes already used in the current calendar month.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// By this project on the routed resource.
    #[serde(default)]
    pub project_minutes: u64,
    /// By every project on the routed resource.
    #[serde(default)]
    pub resource_minutes: u64,
}

impl JobContext {
    /// The actor whose permissions are checked besides `actor`, when it is someone else.
    pub fn triggering(&self) -> &Actor {
        self.triggering_actor.as_ref().unwrap_or(&self.actor)
    }
}
