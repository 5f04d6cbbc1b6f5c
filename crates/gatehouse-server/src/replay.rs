//! `gatehouse replay`: decide stored `workflow_job` `queued` deliveries again against the
//! policy on disk now, and say which decisions would change.
//!
//! For an audit ("would today's ledger have let this job run?") and for trying a policy change
//! before it lands. A job that was decided is decided again on the very facts it was decided
//! on (the job context recorded with the decision: actors and their roles, usage, the day), so
//! only the policy differs. A job that was not decided (the old policy did not manage it) is
//! decided on what the store knows: its labels and its run, with the actors' roles unknown
//! (the guard never asked GitHub); such rows carry a note.
//!
//! It reads the store and the access repository only: nothing is cancelled or recorded.

use std::path::Path;

use anyhow::Context;
use gatehouse_core::duration::Day;
use gatehouse_policy::{Actor, JobContext, Usage};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::events::WorkflowJobEvent;
use crate::source::load_policy;
use crate::store::{JobDelivery, Store, time_text};

/// What a job was (or would be) told: `allow`, `deny`, `not-managed`, or `error` (processing
/// failed, nothing was decided) and `unknown` (cannot be decided from what is stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// One re-decided job.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayedJob {
    pub delivery_id: String,
    pub received_at: String,
    pub repository: String,
    pub job_id: i64,
    pub run_id: i64,
    pub before: Verdict,
    pub after: Verdict,
    /// Why the new verdict may rest on incomplete facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ReplayedJob {
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    /// Deliveries received at or after this moment were replayed.
    pub since: String,
    /// `queued` jobs re-decided.
    pub replayed: usize,
    /// Those whose verdict would change, oldest first.
    pub changed: Vec<ReplayedJob>,
}

/// Replays the `queued` deliveries stored in `db_url` since `since` against the access
/// repository in `dir` (which must pass `check`, as for `serve`).
pub async fn replay(dir: &Path, db_url: &str, since: Timestamp) -> anyhow::Result<ReplayReport> {
    let loaded = load_policy(dir.to_path_buf())
        .await
        .with_context(|| format!("cannot replay against {}", dir.display()))?;
    let policy = loaded.policy;
    // Opening a SQLite store creates it; a replay of a file that is not there is a mistake
    // (a wrong path), not an empty history.
    if let Some(path) = crate::store::sqlite_file(db_url)
        && !Path::new(path).exists()
    {
        anyhow::bail!(
            "there is no guard database at {path}: pass the store `gatehouse serve` used with --db"
        );
    }
    let store = Store::connect(db_url).await?;
    let rows = store
        .job_deliveries_since(&time_text(since))
        .await
        .context("cannot read the stored deliveries")?;
    let mut report = ReplayReport {
        since: since.to_string(),
        replayed: 0,
        changed: Vec::new(),
    };
    for row in rows {
        let Ok(event) = serde_json::from_slice::<WorkflowJobEvent>(&row.delivery.body) else {
            continue;
        };
        if event.action != "queued" {
            continue;
        }
        let before = before_verdict(&row);
        let (after, note) = match &row.context {
            Some(json) => match serde_json::from_str::<JobContext>(json) {
                Ok(ctx) => (verdict(&policy, &ctx), None),
                Err(e) => (
                    unknown(),
                    Some(format!("the recorded job context does not read: {e}")),
                ),
            },
            None => redecide_from_store(&store, &policy, &event, &row).await?,
        };
        report.replayed += 1;
        let job = ReplayedJob {
            delivery_id: row.delivery.delivery_id,
            received_at: row.delivery.received_at,
            repository: event.repository.full_name,
            job_id: event.workflow_job.id,
            run_id: event.workflow_job.run_id,
            before,
            after,
            note,
        };
        if job.changed() {
            report.changed.push(job);
        }
    }
    Ok(report)
}

fn unknown() -> Verdict {
    Verdict {
        outcome: "unknown".into(),
        resource: None,
        rule: None,
    }
}

fn before_verdict(row: &JobDelivery) -> Verdict {
    match &row.outcome {
        Some(outcome) => Verdict {
            outcome: outcome.clone(),
            resource: row.resource.clone(),
            rule: row.rule.clone(),
        },
        None if row
            .processed
            .as_deref()
            .is_some_and(|p| p.starts_with("error")) =>
        {
            Verdict {
                outcome: "error".into(),
                resource: None,
                rule: None,
            }
        }
        None => Verdict {
            outcome: "not-managed".into(),
            resource: None,
            rule: None,
        },
    }
}

fn verdict(policy: &gatehouse_policy::Policy, ctx: &JobContext) -> Verdict {
    let d = policy.decide(ctx);
    Verdict {
        outcome: d.outcome().to_string(),
        resource: d.resource().map(|id| policy.resource(id).name.to_string()),
        rule: d.rule().map(|r| r.code().to_string()),
    }
}

/// A job the old policy did not decide: its context from its labels and its stored run, the
/// actors' roles unknown, the usage as stored for the month it was received in.
async fn redecide_from_store(
    store: &Store,
    policy: &gatehouse_policy::Policy,
    event: &WorkflowJobEvent,
    row: &JobDelivery,
) -> anyhow::Result<(Verdict, Option<String>)> {
    let job = &event.workflow_job;
    let repository = &event.repository.full_name;
    let resource = match policy.route(job.labels.iter().map(String::as_str)) {
        Ok(None) => {
            return Ok((
                Verdict {
                    outcome: "not-managed".into(),
                    resource: None,
                    rule: None,
                },
                None,
            ));
        }
        Ok(Some(r)) => Some(r),
        Err(_) => None,
    };
    let Some(run) = store.get_run(job.run_id, job.run_attempt).await? else {
        return Ok((
            unknown(),
            Some(format!("run {} was never stored", job.run_id)),
        ));
    };
    let received = row
        .delivery
        .received_at
        .parse::<Timestamp>()
        .unwrap_or_else(|_| Timestamp::now());
    let day = TimeZone::UTC.to_datetime(received).date();
    let usage = match (resource, policy.project_of(repository)) {
        (Some(r), Some(project)) => {
            let (project_minutes, resource_minutes) = store
                .minutes_used(
                    &project.to_lowercase(),
                    &policy.resource(r).name,
                    &day.strftime("%Y-%m").to_string(),
                )
                .await?;
            Usage {
                project_minutes,
                resource_minutes,
            }
        }
        _ => Usage::default(),
    };
    let ctx = JobContext {
        repository: repository.clone(),
        labels: job.labels.clone(),
        event: run.event,
        head_repository: run.head_repository,
        head_owner: None,
        actor: Actor {
            login: run.actor.0,
            id: run.actor.1,
            permission: None,
        },
        triggering_actor: run
            .triggering_actor
            .filter(|t| t.1 != run.actor.1)
            .map(|(login, id)| Actor {
                login,
                id,
                permission: None,
            }),
        workflow: run.workflow,
        git_ref: run.git_ref,
        usage,
        today: Some(Day(day)),
        head_sha: None,
        run_approval: None,
        default_branch: None,
        teams: Default::default(),
    };
    Ok((
        verdict(policy, &ctx),
        Some(
            "not decided when it arrived: the actors' roles were never looked up and count as none"
                .into(),
        ),
    ))
}
