//! GitHub Actions: workflow runs (and their attempts), cancelling a run, and leaving a check
//! run on a commit. Shapes as in GitHub's OpenAPI description (`@octokit/openapi`, schemas
//! `workflow-run`, `simple-user`, `minimal-repository`); the `workflow_run` webhook carries the
//! same `workflow-run` object, so the guard reads both with these types.

use serde::Deserialize;

use crate::client::{Client, Error, Method, Priority};

/// An account, as GitHub embeds it everywhere (`simple-user`): enough to name a person.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct User {
    pub login: String,
    /// The numeric account id: what identifies a person across renames.
    pub id: i64,
}

/// A repository as embedded in other objects.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Repository {
    pub full_name: String,
    /// Who owns it: for a pull request's head repository, the fork's owner.
    #[serde(default)]
    pub owner: Option<User>,
    /// Its default branch (`main`), where the payload says.
    #[serde(default)]
    pub default_branch: Option<String>,
}

/// A workflow run (`workflow-run`), as in the `workflow_run` event, `GET
/// /repos/{owner}/{repo}/actions/runs/{run_id}` and `GET .../attempts/{attempt_number}`.
/// Unknown fields are ignored: it is GitHub's evolving format, and only what gatehouse needs is
/// required.
#[derive(Clone, Debug, Deserialize)]
pub struct WorkflowRun {
    pub id: i64,
    /// 1 for the first attempt; each re-run is a new attempt with its own triggering actor.
    #[serde(default = "first_attempt")]
    pub run_attempt: i64,
    pub event: String,
    /// `null` when the head repository (a fork) was deleted.
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
    #[serde(default)]
    pub head_sha: Option<String>,
}

fn first_attempt() -> i64 {
    1
}

/// `owner/name` split for a path; an error names the bad value.
fn split(repository: &str) -> Result<(&str, &str), Error> {
    repository
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| Error::Settings(format!("`{repository}` is not an owner/name repository")))
}

impl Client {
    /// One attempt of a run: `GET /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{n}`.
    /// `None` when GitHub has no such run or attempt.
    pub async fn run_attempt(
        &self,
        repository: &str,
        run_id: i64,
        attempt: i64,
    ) -> Result<Option<WorkflowRun>, Error> {
        let (owner, name) = split(repository)?;
        let (run, attempt) = (run_id.to_string(), attempt.to_string());
        self.get(&[
            "repos", owner, name, "actions", "runs", &run, "attempts", &attempt,
        ])
        .await
    }

    /// A job's status (`queued`, `in_progress`, `completed`, ...): `GET
    /// /repos/{owner}/{repo}/actions/jobs/{job_id}`. `None` when GitHub has no such job.
    pub async fn job_status(&self, repository: &str, job_id: i64) -> Result<Option<String>, Error> {
        #[derive(serde::Deserialize)]
        struct Job {
            status: String,
        }
        let (owner, name) = split(repository)?;
        let job = job_id.to_string();
        let found: Option<Job> = self
            .get(&["repos", owner, name, "actions", "jobs", &job])
            .await?;
        Ok(found.map(|j| j.status))
    }

    /// Cancels a run: `POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel`, urgently (it
    /// does not wait behind other mutating calls). `Ok(false)` when GitHub answers 409: the run
    /// is already over, so there is nothing left to stop.
    pub async fn cancel_run(&self, repository: &str, run_id: i64) -> Result<bool, Error> {
        let (owner, name) = split(repository)?;
        let run = run_id.to_string();
        let path = ["repos", owner, name, "actions", "runs", &run, "cancel"];
        match self
            .mutate_with::<serde::de::IgnoredAny>(
                Method::POST,
                &path,
                None::<&()>,
                Priority::Urgent,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.unexpected_status().is_some_and(|s| s.as_u16() == 409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Leaves a completed, failed check run named `gatehouse` on a commit: `POST
    /// /repos/{owner}/{repo}/check-runs`, where the person who pushed looks.
    pub async fn fail_check_run(
        &self,
        repository: &str,
        head_sha: &str,
        title: &str,
        summary: &str,
    ) -> Result<(), Error> {
        let (owner, name) = split(repository)?;
        let body = serde_json::json!({
            "name": "gatehouse",
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": "failure",
            "output": { "title": title, "summary": summary },
        });
        self.mutate::<serde::de::IgnoredAny>(
            Method::POST,
            &["repos", owner, name, "check-runs"],
            Some(&body),
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_example_run_reads_with_its_fork_owner() {
        // The shape of `@octokit/webhooks-examples`' workflow_run, trimmed to what is read.
        let run: WorkflowRun = serde_json::from_str(
            r#"{"id": 30433642, "run_attempt": 2, "event": "pull_request",
                "head_repository": {"full_name": "someone/hello", "owner": {"login": "someone", "id": 7}},
                "actor": {"login": "a", "id": 1}, "triggering_actor": {"login": "b", "id": 2},
                "head_sha": "abc", "extra": [1, 2]}"#,
        )
        .unwrap();
        assert_eq!(run.run_attempt, 2);
        assert_eq!(
            run.head_repository.unwrap().owner,
            Some(User {
                login: "someone".into(),
                id: 7
            })
        );
        let gone: WorkflowRun =
            serde_json::from_str(r#"{"id": 1, "event": "push", "head_repository": null}"#).unwrap();
        assert_eq!((gone.run_attempt, gone.head_repository), (1, None));
    }

    #[test]
    fn repositories_must_be_owner_and_name() {
        assert!(split("o/r").is_ok());
        for bad in ["o", "/r", "o/", "o/r/x"] {
            assert!(split(bad).is_err(), "{bad}");
        }
    }
}
