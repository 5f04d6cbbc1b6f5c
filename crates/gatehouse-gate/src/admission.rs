//! The admission protocol between the gate on a runner and the guard: `POST /api/v1/admission`
//! with the runner pool's token as a bearer token. The request names only which job is asking
//! (its run, attempt, job key and runner): the guard builds the job's context itself from what
//! it knows of that run (its `workflow_run` event or GitHub's API), never from the request's
//! claims, so a forged request can only ask about a real run.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionRequest {
    /// `owner/name`, as the runner's environment says (checked against the run's own).
    pub repository: String,
    pub run_id: i64,
    pub run_attempt: i64,
    /// The job's key in the workflow (`GITHUB_JOB`).
    pub job: String,
    pub runner_name: String,
    /// How long the gate has waited for a concurrency slot so far (it asks again while the
    /// guard answers `wait`); past its pool's `concurrency_wait` the guard denies.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waited_secs: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The guard's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionAnswer {
    /// `allow`, `deny`, `not-managed`, or `wait`: every rule passes but a concurrency cap is
    /// reached; ask again after `retry_after_secs`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// With `wait`: when to ask again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl AdmissionAnswer {
    /// Whether the job may run now (`allow` or `not-managed`).
    pub fn allows(&self) -> bool {
        self.outcome == "allow" || self.outcome == "not-managed"
    }

    /// Whether the job must wait for a concurrency slot and ask again.
    pub fn waits(&self) -> bool {
        self.outcome == "wait"
    }
}
