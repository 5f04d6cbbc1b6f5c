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

/// A webhook delivery's payload, parsed as the guard reads it.
#[derive(Debug)]
pub enum Event {
    WorkflowRun(WorkflowRunEvent),
    WorkflowJob(WorkflowJobEvent),
    /// `ping`: GitHub checking that the hook works; its body is not read.
    Ping,
    /// An event the guard stores but does not use; its body is not read.
    Other,
}

/// Parses `body` as the payload of `event_name` (the `X-GitHub-Event` header) the way the
/// guard does before acting on it. Public so that the payload parser can be fuzzed and tested
/// on its own; an error names the event and says what in the body is wrong.
pub fn parse_event(event_name: &str, body: &[u8]) -> anyhow::Result<Event> {
    use anyhow::Context;
    Ok(match event_name {
        "workflow_run" => {
            Event::WorkflowRun(serde_json::from_slice(body).context("not a workflow_run event")?)
        }
        "workflow_job" => {
            Event::WorkflowJob(serde_json::from_slice(body).context("not a workflow_job event")?)
        }
        "ping" => Event::Ping,
        _ => Event::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_into_their_event_types() {
        let job = br#"{"action": "queued", "repository": {"full_name": "o/r"},
            "workflow_job": {"id": 7, "run_id": 3, "labels": ["gpu"], "extra": 1}}"#;
        match parse_event("workflow_job", job).unwrap() {
            Event::WorkflowJob(e) => {
                assert_eq!(e.action, "queued");
                assert_eq!((e.workflow_job.id, e.workflow_job.run_id), (7, 3));
                assert_eq!(e.workflow_job.labels, ["gpu"]);
            }
            other => panic!("{other:?}"),
        }
        let run = br#"{"repository": {"full_name": "o/r"}, "workflow_run": {"id": 3,
            "event": "push", "actor": {"login": "a", "id": 1}}}"#;
        match parse_event("workflow_run", run).unwrap() {
            Event::WorkflowRun(e) => assert_eq!(e.workflow_run.id, 3),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_event("ping", b"not json").unwrap(),
            Event::Ping
        ));
        assert!(matches!(parse_event("issues", b"").unwrap(), Event::Other));
    }

    #[test]
    fn a_malformed_payload_is_an_error_naming_the_event_and_the_field() {
        let e =
            parse_event("workflow_job", br#"{"action": "queued", "repository": {}}"#).unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("not a workflow_job event"), "{text}");
        assert!(text.contains("full_name"), "{text}");
        let e = parse_event("workflow_run", b"\xff").unwrap_err();
        assert!(format!("{e:#}").contains("not a workflow_run event"));
    }
}
