//! A job as the runner that is about to run it sees it: the job-started hook's environment
//! (GitHub's default variables) and the event payload in `GITHUB_EVENT_PATH`.
//!
//! GitHub's self-hosted runner runs the script named by `ACTIONS_RUNNER_HOOK_JOB_STARTED`
//! before the job's first step, with the job's environment ("Running scripts before or after a
//! job", docs.github.com/actions/hosting-your-own-runners): a non-zero exit fails the job and
//! none of its steps run. The variables read here are those of GitHub's "Variables reference"
//! (`GITHUB_REPOSITORY`, `GITHUB_EVENT_NAME`, `GITHUB_EVENT_PATH`, `GITHUB_ACTOR`,
//! `GITHUB_ACTOR_ID`, `GITHUB_TRIGGERING_ACTOR`, `GITHUB_RUN_ID`, `GITHUB_RUN_ATTEMPT`,
//! `GITHUB_JOB`, `GITHUB_WORKFLOW_REF`, `GITHUB_REF`, `RUNNER_NAME`). Nothing the job's own
//! code writes is read: the hook runs before it.

use serde::Deserialize;

/// The largest event payload read (GitHub's webhook payloads are at most 25 MiB).
pub const MAX_EVENT_BYTES: usize = 25 * 1024 * 1024;

/// The job, as the runner's environment tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerJob {
    /// `owner/name`.
    pub repository: String,
    pub event: String,
    pub run_id: i64,
    pub run_attempt: i64,
    /// The job's key in the workflow (`GITHUB_JOB`).
    pub job: String,
    pub runner_name: String,
    /// Login and account id of who caused the run.
    pub actor: (String, i64),
    /// Login of who started this attempt (the environment gives no id).
    pub triggering_actor: String,
    /// For a pull request: the head repository (`None` when it is gone) and its owner.
    pub head_repository: Option<String>,
    pub head_owner: Option<(String, i64)>,
    pub workflow_ref: Option<String>,
    pub git_ref: Option<String>,
}

/// Why the job's context cannot be built; each says what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RunnerError {
    #[error(
        "{0} is not set: the gate must run as the runner's job-started hook (ACTIONS_RUNNER_HOOK_JOB_STARTED), where GitHub sets it"
    )]
    Missing(&'static str),
    #[error("{name} is `{value}`, not a number")]
    NotANumber { name: &'static str, value: String },
    #[error("the event file {path} cannot be read: {reason}")]
    EventUnreadable { path: String, reason: String },
    #[error("the event file {path} is not a GitHub event payload: {reason}")]
    EventMalformed { path: String, reason: String },
    #[error(
        "GITHUB_REPOSITORY names `{env}` but the event payload is about `{event}`: refusing a job whose environment and event disagree"
    )]
    RepositoryMismatch { env: String, event: String },
}

#[derive(Deserialize)]
struct Payload {
    repository: Option<PayloadRepo>,
    #[serde(default)]
    pull_request: Option<PullRequest>,
}

#[derive(Deserialize)]
struct PayloadRepo {
    full_name: String,
    #[serde(default)]
    owner: Option<Owner>,
}

#[derive(Deserialize)]
struct Owner {
    login: String,
    id: i64,
}

#[derive(Deserialize)]
struct PullRequest {
    head: Head,
}

#[derive(Deserialize)]
struct Head {
    /// `null` when the fork was deleted.
    repo: Option<PayloadRepo>,
}

/// Builds the job from the hook's environment (`env`) and the event file's bytes (`read`, for
/// the path in `GITHUB_EVENT_PATH`).
pub fn from_env(
    env: impl Fn(&str) -> Option<String>,
    read: impl Fn(&str) -> Result<Vec<u8>, String>,
) -> Result<RunnerJob, RunnerError> {
    let need = |name: &'static str| {
        env(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or(RunnerError::Missing(name))
    };
    let number = |name: &'static str| {
        let value = need(name)?;
        value
            .trim()
            .parse::<i64>()
            .map_err(|_| RunnerError::NotANumber { name, value })
    };
    let repository = need("GITHUB_REPOSITORY")?;
    let event = need("GITHUB_EVENT_NAME")?;
    let path = need("GITHUB_EVENT_PATH")?;
    let bytes = read(&path).map_err(|reason| RunnerError::EventUnreadable {
        path: path.clone(),
        reason,
    })?;
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(RunnerError::EventMalformed {
            path,
            reason: "it is larger than any GitHub event payload".into(),
        });
    }
    let payload: Payload =
        serde_json::from_slice(&bytes).map_err(|e| RunnerError::EventMalformed {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let Some(event_repo) = payload.repository else {
        return Err(RunnerError::EventMalformed {
            path,
            reason: "it names no repository".into(),
        });
    };
    if !event_repo.full_name.eq_ignore_ascii_case(&repository) {
        return Err(RunnerError::RepositoryMismatch {
            env: repository,
            event: event_repo.full_name,
        });
    }
    let (head_repository, head_owner) = match payload.pull_request {
        Some(pr) => match pr.head.repo {
            Some(head) => (Some(head.full_name), head.owner.map(|o| (o.login, o.id))),
            None => (None, None),
        },
        // Not a pull request: the code is the repository's own.
        None => (
            Some(repository.clone()),
            event_repo.owner.map(|o| (o.login, o.id)),
        ),
    };
    let actor = (need("GITHUB_ACTOR")?, number("GITHUB_ACTOR_ID")?);
    Ok(RunnerJob {
        event,
        run_id: number("GITHUB_RUN_ID")?,
        run_attempt: number("GITHUB_RUN_ATTEMPT")?,
        job: need("GITHUB_JOB")?,
        runner_name: need("RUNNER_NAME")?,
        triggering_actor: env("GITHUB_TRIGGERING_ACTOR")
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| actor.0.clone()),
        actor,
        head_repository,
        head_owner,
        workflow_ref: env("GITHUB_WORKFLOW_REF"),
        git_ref: env("GITHUB_REF"),
        repository,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    const BASE: &[(&str, &str)] = &[
        ("GITHUB_REPOSITORY", "conda-forge/numpy-feedstock"),
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_EVENT_PATH", "/tmp/event.json"),
        ("GITHUB_ACTOR", "wolfv"),
        ("GITHUB_ACTOR_ID", "885054"),
        ("GITHUB_TRIGGERING_ACTOR", "isuruf"),
        ("GITHUB_RUN_ID", "42"),
        ("GITHUB_RUN_ATTEMPT", "2"),
        ("GITHUB_JOB", "build"),
        ("RUNNER_NAME", "gpu-runner-7"),
    ];

    fn event(head: &str) -> Vec<u8> {
        format!(
            r#"{{"repository": {{"full_name": "conda-forge/numpy-feedstock", "owner": {{"login": "conda-forge", "id": 11897326}}}},
               "pull_request": {{"head": {{"repo": {head}}}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_fork_pull_request_names_its_head_and_owner() {
        let fork =
            r#"{"full_name": "someone/numpy-feedstock", "owner": {"login": "someone", "id": 7}}"#;
        let job = from_env(env(BASE), |_| Ok(event(fork))).unwrap();
        assert_eq!(
            job.head_repository.as_deref(),
            Some("someone/numpy-feedstock")
        );
        assert_eq!(job.head_owner, Some(("someone".into(), 7)));
        assert_eq!((job.run_id, job.run_attempt), (42, 2));
        assert_eq!(job.triggering_actor, "isuruf");
        // A deleted fork: no head repository, no owner.
        let gone = from_env(env(BASE), |_| Ok(event("null"))).unwrap();
        assert_eq!((gone.head_repository, gone.head_owner), (None, None));
    }

    #[test]
    fn an_environment_that_disagrees_with_its_event_is_refused() {
        let mut vars = BASE.to_vec();
        vars[0] = ("GITHUB_REPOSITORY", "conda-forge/pytorch-cpu-feedstock");
        assert!(matches!(
            from_env(env(&vars), |_| Ok(event("null"))),
            Err(RunnerError::RepositoryMismatch { .. })
        ));
    }

    #[test]
    fn missing_or_malformed_inputs_are_refused_with_what_is_wrong() {
        let vars: Vec<_> = BASE
            .iter()
            .copied()
            .filter(|(k, _)| *k != "GITHUB_RUN_ID")
            .collect();
        assert_eq!(
            from_env(env(&vars), |_| Ok(event("null"))),
            Err(RunnerError::Missing("GITHUB_RUN_ID"))
        );
        assert!(matches!(
            from_env(env(BASE), |_| Err("No such file or directory".into())),
            Err(RunnerError::EventUnreadable { .. })
        ));
        assert!(matches!(
            from_env(env(BASE), |_| Ok(b"{not json".to_vec())),
            Err(RunnerError::EventMalformed { .. })
        ));
        let mut vars = BASE.to_vec();
        vars[4] = ("GITHUB_ACTOR_ID", "wolfv");
        assert!(matches!(
            from_env(env(&vars), |_| Ok(event("null"))),
            Err(RunnerError::NotANumber { .. })
        ));
    }
}
