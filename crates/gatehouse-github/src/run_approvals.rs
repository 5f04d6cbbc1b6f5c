//! The calls the guard makes for run approvals (`/gatehouse run <sha>`): read the pull
//! request an approval is about, re-run the jobs it had cancelled, and answer the approval.
//! Paths, bodies and answer shapes as in GitHub's OpenAPI description (`@octokit/openapi`):
//!
//! - `pulls/get`: `GET /repos/{owner}/{repo}/pulls/{pull_number}`, a `pull-request` (its
//!   `state`, `user`, and `head` with `sha` and `repo`, `null` when the fork is gone);
//! - `actions/re-run-workflow-failed-jobs`: `POST
//!   /repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs`, 201: "Re-run all of the
//!   failed jobs and their dependent jobs in a workflow run". A run the guard cancelled has
//!   every unfinished job cancelled, the managed ones and the others alike, and GitHub counts
//!   cancelled jobs among the failed ones it re-runs; jobs that succeeded are not run again.
//!   (`actions/re-run-job-for-workflow-run` would re-run the denied job and its dependants
//!   only, leaving the run's other cancelled jobs cancelled; `actions/re-run-workflow` would
//!   run what succeeded again.) The new attempt's triggering actor is the guard's own account;
//! - `reactions/create-for-issue-comment`: `POST
//!   /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions` with `{"content": ...}`;
//! - `issues/create-comment` and `issues/update-comment`: the one reply on a pull request.

use serde::Deserialize;

use crate::actions::{Repository, User};
use crate::client::{Client, Error, Method};

/// The parts of a `pull-request` a run approval is judged on.
#[derive(Clone, Debug, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    /// `open` or `closed`.
    pub state: String,
    /// Who opened it.
    pub user: User,
    pub head: PullHead,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PullHead {
    pub sha: String,
    /// `null` when the head repository (a fork) was deleted.
    #[serde(default)]
    pub repo: Option<Repository>,
}

#[derive(Deserialize)]
struct Created {
    id: u64,
}

fn split(repository: &str) -> Result<(&str, &str), Error> {
    repository
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| Error::Settings(format!("`{repository}` is not an owner/name repository")))
}

impl Client {
    /// `pulls/get`; `None` when there is no such pull request.
    pub async fn pull_request(
        &self,
        repository: &str,
        number: u64,
    ) -> Result<Option<PullRequest>, Error> {
        let (owner, name) = split(repository)?;
        let n = number.to_string();
        self.get(&["repos", owner, name, "pulls", &n]).await
    }

    /// `actions/re-run-workflow-failed-jobs`: runs the run's failed and cancelled jobs again,
    /// as a new attempt.
    pub async fn rerun_failed_jobs(&self, repository: &str, run_id: i64) -> Result<(), Error> {
        let (owner, name) = split(repository)?;
        let run = run_id.to_string();
        self.mutate::<serde::de::IgnoredAny>(
            Method::POST,
            &[
                "repos",
                owner,
                name,
                "actions",
                "runs",
                &run,
                "rerun-failed-jobs",
            ],
            None::<&()>,
        )
        .await
        .map(drop)
    }

    /// `reactions/create-for-issue-comment`: `content` is one of GitHub's reactions (`+1`,
    /// `-1`, `rocket`, `eyes`, ...).
    pub async fn react_to_comment(
        &self,
        repository: &str,
        comment_id: u64,
        content: &str,
    ) -> Result<(), Error> {
        let (owner, name) = split(repository)?;
        let id = comment_id.to_string();
        self.mutate::<serde::de::IgnoredAny>(
            Method::POST,
            &["repos", owner, name, "issues", "comments", &id, "reactions"],
            Some(&serde_json::json!({ "content": content })),
        )
        .await
        .map(drop)
    }

    /// Writes the guard's reply on pull request `number`: edits comment `existing` when given,
    /// else comments anew (`issues/update-comment`, `issues/create-comment`). Returns the
    /// comment's id.
    pub async fn reply_on_pull(
        &self,
        repository: &str,
        number: u64,
        existing: Option<u64>,
        body: &str,
    ) -> Result<u64, Error> {
        let (owner, name) = split(repository)?;
        let text = serde_json::json!({ "body": body });
        let created: Created = match existing {
            Some(id) => {
                let id = id.to_string();
                self.mutate(
                    Method::PATCH,
                    &["repos", owner, name, "issues", "comments", &id],
                    Some(&text),
                )
                .await?
            }
            None => {
                let n = number.to_string();
                self.mutate(
                    Method::POST,
                    &["repos", owner, name, "issues", &n, "comments"],
                    Some(&text),
                )
                .await?
            }
        };
        Ok(created.id)
    }
}
