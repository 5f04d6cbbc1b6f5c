//! The parts of GitHub's webhook payloads the guard reads.
//!
//! Unlike the access repository's files, these are someone else's evolving format: unknown
//! fields are ignored, and only what the guard needs is required.

use jiff::Timestamp;
use serde::Deserialize;

use crate::store::RunRecord;

#[derive(Debug, Deserialize)]
pub struct Repository {
    pub full_name: String,
}

#[derive(Debug, Deserialize)]
pub struct User {
    pub login: String,
    pub id: i64,
}

/// A workflow run, as in the `workflow_run` event and in `GET .../actions/runs/{id}`.
#[derive(Debug, Deserialize)]
pub struct WorkflowRun {
    pub id: i64,
    pub event: String,
    #[serde(default)]
    pub head_repository: Option<Repository>,
    #[serde(default)]
    pub repository: Option<Repository>,
    #[serde(default)]
    pub actor: Option<User>,
    #[serde(default)]
    pub triggering_actor: Option<User>,
    /// The workflow file, `.github/workflows/x.yml`.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WorkflowRunEvent {
    pub workflow_run: WorkflowRun,
    pub repository: Repository,
    #[serde(default)]
    pub sender: Option<User>,
}

#[derive(Debug, Deserialize)]
pub struct WorkflowJob {
    pub id: i64,
    pub run_id: i64,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub head_sha: Option<String>,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
pub struct WorkflowJobEvent {
    pub action: String,
    pub workflow_job: WorkflowJob,
    pub repository: Repository,
}

impl WorkflowRun {
    /// The run's context as the guard keeps it. `fallback` stands in for a missing `actor`
    /// (older payloads lack it; the sender is then who caused the run). `None` when neither
    /// names a person.
    pub fn record(self, repository: &str, fallback: Option<User>) -> Option<RunRecord> {
        let actor = self.actor.or(fallback)?;
        Some(RunRecord {
            run_id: self.id,
            repository: self
                .repository
                .map_or_else(|| repository.to_string(), |r| r.full_name),
            event: self.event,
            head_repository: self.head_repository.map(|r| r.full_name),
            actor: (actor.login, actor.id),
            triggering_actor: self.triggering_actor.map(|a| (a.login, a.id)),
            workflow: self.path,
            git_ref: self.head_branch.map(|b| format!("refs/heads/{b}")),
        })
    }
}
