//! The parts of GitHub's webhook payloads the guard reads.
//!
//! Unlike the access repository's files, these are someone else's evolving format: unknown
//! fields are ignored, and only what the guard needs is required.

use jiff::Timestamp;
use serde::Deserialize;

use crate::store::RunRecord;

pub use gatehouse_github::actions::{Repository, User, WorkflowRun};

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
    /// The attempt of the run this job belongs to (a re-run's jobs carry the new attempt).
    #[serde(default = "first_attempt")]
    pub run_attempt: i64,
    #[serde(default)]
    pub labels: Vec<String>,
    /// The runner group of the runner that took the job: known once it is `in_progress`
    /// (`runs-on: { group: ... }` jobs are queued with no labels and no group).
    #[serde(default)]
    pub runner_group_name: Option<String>,
    /// The runner that took the job (once it is `in_progress`): matches a gate's admission.
    #[serde(default)]
    pub runner_name: Option<String>,
    /// The job's name as the run shows it.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub head_sha: Option<String>,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
}

fn first_attempt() -> i64 {
    1
}

#[derive(Debug, Deserialize)]
pub struct WorkflowJobEvent {
    pub action: String,
    pub workflow_job: WorkflowJob,
    pub repository: Repository,
}

/// A run's context as the guard keeps it. `fallback` stands in for a missing `actor` (older
/// payloads lack it; the sender is then who caused the run). `None` when neither names a
/// person.
pub fn run_record(run: WorkflowRun, repository: &str, fallback: Option<User>) -> Option<RunRecord> {
    let actor = run.actor.or(fallback)?;
    let (head_repository, head_owner) = match run.head_repository {
        Some(r) => (Some(r.full_name), r.owner.map(|o| (o.login, o.id))),
        None => (None, None),
    };
    let default_branch = run
        .repository
        .as_ref()
        .and_then(|r| r.default_branch.clone());
    Some(RunRecord {
        run_id: run.id,
        run_attempt: run.run_attempt,
        repository: run
            .repository
            .map_or_else(|| repository.to_string(), |r| r.full_name),
        default_branch,
        event: run.event,
        head_repository,
        head_owner,
        head_sha: run.head_sha,
        actor: (actor.login, actor.id),
        triggering_actor: run.triggering_actor.map(|a| (a.login, a.id)),
        workflow: run.path,
        git_ref: run.head_branch.map(|b| format!("refs/heads/{b}")),
    })
}

/// A team, as in the `membership` and `team` events.
#[derive(Debug, Deserialize)]
pub struct Team {
    /// Absent when the team itself was deleted: GitHub then sends only `{id, name, deleted}`
    /// (`@octokit/webhooks-examples`, `membership` `removed`).
    #[serde(default)]
    pub slug: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Organization {
    pub login: String,
}

/// An event that may change who holds which role on the organisation's repositories:
/// `member` (a repository's collaborators), `membership` (a team's members), `team` (a team's
/// repositories and permissions), `organization` (members joining and leaving) and
/// `repository` (renamed, transferred, deleted). Shapes as in GitHub's webhook descriptions;
/// only what the guard needs is read.
#[derive(Debug, Deserialize)]
pub struct RoleChangeEvent {
    #[serde(default)]
    pub action: String,
    /// `member`, `team` (some), `repository`: the repository concerned.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// `member`, `membership`: the person concerned.
    #[serde(default)]
    pub member: Option<User>,
    /// `organization`: the membership, whose `user` is the person concerned.
    #[serde(default)]
    pub membership: Option<Membership>,
    /// `membership`, `team`.
    #[serde(default)]
    pub team: Option<Team>,
    #[serde(default)]
    pub organization: Option<Organization>,
    /// `repository` `renamed`: the former name (`changes.repository.name.from`).
    #[serde(default)]
    pub changes: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct Membership {
    #[serde(default)]
    pub user: Option<User>,
}

/// The events that change roles, by their `X-GitHub-Event` name.
pub const ROLE_EVENTS: &[&str] = &["member", "membership", "team", "organization", "repository"];

/// `issue_comment`: a comment on an issue or a pull request (shapes as in GitHub's webhook
/// description; only what a run approval needs is read).
#[derive(Debug, Deserialize)]
pub struct IssueCommentEvent {
    /// `created`, `edited` or `deleted`.
    pub action: String,
    pub issue: Issue,
    pub comment: Comment,
    pub repository: Repository,
}

#[derive(Debug, Deserialize)]
pub struct Issue {
    pub number: u64,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    /// Who wrote it. `null` in GitHub's description for a deleted account.
    #[serde(default)]
    pub user: Option<User>,
}

/// `pull_request_review`: a review submitted, edited or dismissed.
#[derive(Debug, Deserialize)]
pub struct PullRequestReviewEvent {
    /// `submitted`, `edited` or `dismissed`.
    pub action: String,
    pub review: Review,
    pub pull_request: PullNumber,
    pub repository: Repository,
}

#[derive(Debug, Deserialize)]
pub struct Review {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    /// `approved`, `commented`, `changes_requested`, ... (GitHub's examples write it in lower
    /// case; compared without case).
    pub state: String,
    /// The commit the review was given on.
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub user: Option<User>,
}

#[derive(Debug, Deserialize)]
pub struct PullNumber {
    pub number: u64,
}

/// A webhook delivery's payload, parsed as the guard reads it.
#[derive(Debug)]
pub enum Event {
    WorkflowRun(WorkflowRunEvent),
    WorkflowJob(WorkflowJobEvent),
    /// One of [`ROLE_EVENTS`] (its name, its payload).
    RoleChange(&'static str, RoleChangeEvent),
    /// A comment that may approve a pull request's head commit ([`crate::run_approvals`]).
    IssueComment(IssueCommentEvent),
    /// A review that may approve the commit it was given on.
    PullRequestReview(PullRequestReviewEvent),
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
        "issue_comment" => {
            Event::IssueComment(serde_json::from_slice(body).context("not an issue_comment event")?)
        }
        "pull_request_review" => Event::PullRequestReview(
            serde_json::from_slice(body).context("not a pull_request_review event")?,
        ),
        "ping" => Event::Ping,
        name => match ROLE_EVENTS.iter().find(|e| **e == name) {
            Some(role_event) => Event::RoleChange(
                role_event,
                serde_json::from_slice(body).with_context(|| format!("not a {name} event"))?,
            ),
            None => Event::Other,
        },
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
        let comment = br#"{"action": "created", "repository": {"full_name": "o/r"},
            "issue": {"number": 4, "pull_request": {"url": "u"}},
            "comment": {"id": 9, "body": "/gatehouse run 0123456789ab", "user": {"login": "m", "id": 2}}}"#;
        match parse_event("issue_comment", comment).unwrap() {
            Event::IssueComment(e) => {
                assert_eq!((e.issue.number, e.comment.id), (4, 9));
                assert!(e.issue.pull_request.is_some());
            }
            other => panic!("{other:?}"),
        }
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
