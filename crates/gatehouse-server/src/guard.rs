//! What the guard does with the events it uses: remember runs, decide queued jobs (and act on
//! denials), track managed jobs, count the minutes of completed jobs.
//!
//! [`process`] is the one entry: it runs the event's handler, which pushes the writes it wants
//! into a list, and commits them together with the delivery's processed mark, so a delivery's
//! effects are stored all or nothing. Actions outside the store (cancelling a run) happen
//! before that commit: a delivery interrupted in between is processed again at the next start
//! ([`recover`]), and cancelling twice does no harm. Each handler returns a short phrase of
//! what it did, for the log and the webhook's answer.

use std::time::Instant;

use anyhow::Context;
use gatehouse_core::duration::Day;
use gatehouse_core::model::GuardMode;
use gatehouse_policy::{Actor, Decision, JobContext, Policy, ResourceId, Usage};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::events::{WorkflowJob, WorkflowJobEvent, WorkflowRunEvent};
use crate::state::{AppState, today};
use crate::store::{DecisionRecord, JobStatus, RunRecord, Write, now_text};

/// Processes one stored delivery and commits its effects with its processed mark. `Ok(Ok)`:
/// processed, with what was done; `Ok(Err)`: processing failed (marked processed all the
/// same, with the error, so it is not retried forever; `replay` can look at it again);
/// `Err`: the store failed, the delivery stays unprocessed and is retried at the next start.
pub async fn process(
    state: &AppState,
    delivery: &str,
    event: &str,
    body: &[u8],
) -> anyhow::Result<Result<String, String>> {
    let effects = effects(state, delivery, event, body).await;
    let rows = state.store.commit(effects.writes.clone()).await?;
    Ok(effects.finish(state, &rows))
}

/// Whether a delivery's processing acts only on the store (no GitHub call that changes
/// anything): then it is stored and processed in one commit, see [`effects`].
pub fn store_only(event: &str, body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Action {
        #[serde(default)]
        action: Option<String>,
    }
    event != "workflow_job"
        || serde_json::from_slice::<Action>(body)
            .map_or(true, |a| a.action.as_deref() != Some("queued"))
}

/// What processing a delivery does to the store, and what it says.
pub struct Effects {
    outcome: Result<String, String>,
    /// Ends with the delivery's processed mark.
    pub writes: Vec<Write>,
    /// Which write counts minutes, to tell a new count from a job counted before.
    minutes: Option<(usize, String, i64)>,
}

impl Effects {
    /// The outcome once `rows` (one per write, in order) were committed.
    pub fn finish(self, state: &AppState, rows: &[u64]) -> Result<String, String> {
        if let Some((i, resource, n)) = self.minutes {
            if rows.get(i) == Some(&1) {
                state.metrics.minutes(&resource, n);
            } else if self.outcome.is_ok() {
                return Ok("job counted before".into());
            }
        }
        self.outcome
    }

    /// Puts `write` before the others (shifting what `finish` looks at).
    pub fn prepend(&mut self, write: Write) {
        self.writes.insert(0, write);
        if let Some(m) = &mut self.minutes {
            m.0 += 1;
        }
    }
}

/// Runs the event's handler (acting on GitHub where it must) and collects its writes.
pub async fn effects(state: &AppState, delivery: &str, event: &str, body: &[u8]) -> Effects {
    let mut writes = Vec::new();
    let outcome = match event {
        "ping" => Ok("pong".to_string()),
        "workflow_run" => on_workflow_run(body, &mut writes),
        "workflow_job" => on_workflow_job(state, delivery, body, &mut writes).await,
        _ => Ok("stored; event not used".to_string()),
    }
    .map_err(|e| format!("{e:#}"));
    let minutes = writes.iter().enumerate().find_map(|(i, w)| match w {
        Write::Minutes {
            resource, minutes, ..
        } => Some((i, resource.clone(), *minutes)),
        _ => None,
    });
    writes.push(Write::Processed {
        delivery_id: delivery.to_string(),
        at: now_text(),
        outcome: match &outcome {
            Ok(what) => what.clone(),
            Err(e) => format!("error: {e}"),
        },
    });
    Effects {
        outcome,
        writes,
        minutes,
    }
}

/// Processes, oldest first, the deliveries that were stored but not processed (the process
/// stopped in between). Returns how many. Stops at the first store failure.
pub async fn recover(state: &AppState) -> anyhow::Result<usize> {
    let mut done = 0;
    loop {
        let batch = state.store.unprocessed(500).await?;
        if batch.is_empty() {
            return Ok(done);
        }
        for d in batch {
            let outcome = process(state, &d.delivery_id, &d.event, &d.body)
                .await
                .with_context(|| format!("cannot process stored delivery {}", d.delivery_id))?;
            match outcome {
                Ok(what) => tracing::info!(
                    delivery = d.delivery_id,
                    event = d.event,
                    outcome = what,
                    "stored delivery processed at start"
                ),
                Err(error) => tracing::error!(
                    delivery = d.delivery_id,
                    event = d.event,
                    error,
                    "stored delivery could not be processed at start"
                ),
            }
            done += 1;
        }
    }
}

fn on_workflow_run(body: &[u8], writes: &mut Vec<Write>) -> anyhow::Result<String> {
    let event: WorkflowRunEvent =
        serde_json::from_slice(body).context("not a workflow_run event")?;
    let repository = event.repository.full_name;
    let Some(run) = event.workflow_run.record(&repository, event.sender) else {
        anyhow::bail!("the workflow_run event names no actor");
    };
    let what = format!("run {} remembered", run.run_id);
    writes.push(Write::Run {
        run,
        now: now_text(),
    });
    Ok(what)
}

async fn on_workflow_job(
    state: &AppState,
    delivery: &str,
    body: &[u8],
    writes: &mut Vec<Write>,
) -> anyhow::Result<String> {
    let event: WorkflowJobEvent =
        serde_json::from_slice(body).context("not a workflow_job event")?;
    let repository = event.repository.full_name.as_str();
    match event.action.as_str() {
        "queued" => decide_job(state, delivery, repository, &event.workflow_job, writes).await,
        "in_progress" => Ok(track_job(
            state,
            repository,
            &event.workflow_job,
            JobStatus::InProgress,
            writes,
        )),
        "completed" => count_minutes(state, repository, &event.workflow_job, writes),
        other => Ok(format!("workflow_job `{other}` not used")),
    }
}

/// Notes how far a managed job got (for concurrency per resource).
fn track_job(
    state: &AppState,
    repository: &str,
    job: &WorkflowJob,
    status: JobStatus,
    writes: &mut Vec<Write>,
) -> String {
    let policy = state.policy.load();
    let Ok(Some(resource)) = policy.route(job.labels.iter().map(String::as_str)) else {
        return "not managed".into();
    };
    writes.push(Write::JobStatus {
        job_id: job.id,
        project: policy.project_of(repository).map(str::to_lowercase),
        resource: policy.resource(resource).name.to_string(),
        status,
        at: now_text(),
    });
    format!("job {}", status.as_str().replace('_', " "))
}

async fn decide_job(
    state: &AppState,
    delivery: &str,
    repository: &str,
    job: &WorkflowJob,
    writes: &mut Vec<Write>,
) -> anyhow::Result<String> {
    let policy = state.policy.load();
    // Most jobs run on GitHub's own runners: settle those before any lookup. (Not recorded
    // either: the decisions table is about managed resources.)
    if matches!(
        policy.route(job.labels.iter().map(String::as_str)),
        Ok(None)
    ) {
        return Ok("not managed".into());
    }
    let run = run_context(state, repository, job.run_id).await?;
    let ctx = job_context(state, &policy, repository, job, run).await?;
    let started = Instant::now();
    let decision = policy.decide(&ctx);
    let message = decision.message(&policy, &ctx);
    state.metrics.decide(started.elapsed());
    let rule = decision.rule().map(|r| r.code());
    state.metrics.decision(decision.outcome(), rule);
    let resource = decision
        .resource()
        .map(|id| policy.resource(id).name.to_string());
    let project = policy.project_of(repository).map(str::to_lowercase);
    if let Some(resource) = &resource {
        writes.push(Write::JobStatus {
            job_id: job.id,
            project: project.clone(),
            resource: resource.clone(),
            status: JobStatus::Queued,
            at: now_text(),
        });
    }
    writes.push(Write::Decision {
        decision: DecisionRecord {
            delivery_id: delivery.to_string(),
            job_id: job.id,
            run_id: job.run_id,
            repository: repository.to_string(),
            project,
            resource,
            outcome: decision.outcome().to_string(),
            rule: rule.map(str::to_string),
            message: message.clone(),
            decided_at: Timestamp::now().to_string(),
        },
        context: serde_json::to_string(&ctx).ok(),
    });
    let Decision::Deny(denial) = &decision else {
        return Ok(decision.outcome().to_string());
    };
    let rule = denial.rule.code();
    tracing::info!(
        repository,
        run_id = job.run_id,
        job_id = job.id,
        rule,
        "job denied"
    );
    if state.mode() == GuardMode::DryRun {
        return Ok(format!("deny ({rule}), dry run: not cancelled"));
    }
    state
        .github
        .cancel_run(repository, job.run_id)
        .await
        .with_context(|| format!("denied ({rule}) but the run could not be cancelled"))?;
    // The explanation is a courtesy: the run is already cancelled, so failing to explain
    // (a token that may not create check runs, say) is logged, not fatal.
    if let Some(sha) = &job.head_sha {
        let title = format!("gatehouse denied this job: {rule}");
        let summary = message.unwrap_or_default();
        if let Err(e) = state
            .github
            .fail_check_run(repository, sha, &title, &summary)
            .await
        {
            tracing::warn!(
                repository,
                error = format!("{e:#}"),
                "cannot leave the explanation on the commit"
            );
        }
    }
    Ok(format!("deny ({rule}): run cancelled"))
}

/// The run's context from the store, or from GitHub when its `workflow_run` event was missed
/// (and then stored, so the run's other jobs need no call).
async fn run_context(state: &AppState, repository: &str, run_id: i64) -> anyhow::Result<RunRecord> {
    if let Some(run) = state.store.get_run(run_id).await? {
        return Ok(run);
    }
    tracing::info!(
        repository,
        run_id,
        "workflow_run event missed: reading the run from GitHub"
    );
    let run = state
        .github
        .run(repository, run_id)
        .await?
        .with_context(|| format!("GitHub has no run {run_id} in {repository}"))?
        .record(repository, None)
        .with_context(|| format!("GitHub's run {run_id} names no actor"))?;
    state.store.upsert_run(&run, &now_text()).await?;
    Ok(run)
}

async fn job_context(
    state: &AppState,
    policy: &Policy,
    repository: &str,
    job: &WorkflowJob,
    run: RunRecord,
) -> anyhow::Result<JobContext> {
    let (login, id) = run.actor;
    let actor = Actor {
        permission: state.permission(repository, &login).await?,
        login,
        id,
    };
    let triggering_actor = match run.triggering_actor {
        Some((login, id)) if id != actor.id => Some(Actor {
            permission: state.permission(repository, &login).await?,
            login,
            id,
        }),
        _ => None,
    };
    let today = today();
    let resource = policy
        .route(job.labels.iter().map(String::as_str))
        .ok()
        .flatten();
    let usage = match (resource, policy.project_of(repository)) {
        (Some(resource), Some(project)) => {
            month_usage(state, policy, &project.to_lowercase(), resource, today).await?
        }
        _ => Usage::default(),
    };
    Ok(JobContext {
        repository: repository.to_string(),
        labels: job.labels.clone(),
        event: run.event,
        head_repository: run.head_repository,
        head_owner: None,
        actor,
        triggering_actor,
        workflow: run.workflow,
        git_ref: run.git_ref,
        usage,
        today: Some(Day(today)),
    })
}

async fn month_usage(
    state: &AppState,
    policy: &Policy,
    project: &str,
    resource: ResourceId,
    today: jiff::civil::Date,
) -> anyhow::Result<Usage> {
    let month = today.strftime("%Y-%m").to_string();
    let (project_minutes, resource_minutes) = state
        .store
        .minutes_used(project, &policy.resource(resource).name, &month)
        .await?;
    Ok(Usage {
        project_minutes,
        resource_minutes,
    })
}

/// Counts a completed managed job's minutes (once per job id: [`process`] says "job counted
/// before" when the store already had it) and marks the job completed.
fn count_minutes(
    state: &AppState,
    repository: &str,
    job: &WorkflowJob,
    writes: &mut Vec<Write>,
) -> anyhow::Result<String> {
    let policy = state.policy.load();
    let Ok(Some(resource)) = policy.route(job.labels.iter().map(String::as_str)) else {
        return Ok("not managed".into());
    };
    track_job(state, repository, job, JobStatus::Completed, writes);
    let (Some(start), Some(end)) = (job.started_at, job.completed_at) else {
        return Ok("completed job without times: nothing to count".into());
    };
    let Some(project) = policy.project_of(repository) else {
        return Ok("not a project repository: not counted".into());
    };
    let minutes = minutes_between(start, end);
    let day = TimeZone::UTC.to_datetime(end).date().to_string();
    let resource = policy.resource(resource).name.to_string();
    let project = project.to_lowercase();
    let what = format!("{minutes} minutes counted for {project} on {resource}");
    writes.push(Write::Minutes {
        job_id: job.id,
        project,
        resource,
        day,
        minutes,
    });
    Ok(what)
}

/// Whole minutes from start to end, a started minute counting as one (providers bill so).
fn minutes_between(start: Timestamp, end: Timestamp) -> i64 {
    let d = end.duration_since(start);
    if d.is_negative() {
        return 0;
    }
    d.as_secs() / 60 + i64::from(d.as_secs() % 60 != 0 || d.subsec_nanos() != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_minute_counts_whole() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            minutes_between(t("2021-08-05T10:34:58Z"), t("2021-08-05T10:38:16Z")),
            4
        );
        assert_eq!(
            minutes_between(t("2021-08-05T10:00:00Z"), t("2021-08-05T10:02:00Z")),
            2
        );
        assert_eq!(
            minutes_between(t("2021-08-05T10:00:00Z"), t("2021-08-05T10:00:00Z")),
            0
        );
        assert_eq!(
            minutes_between(t("2021-08-05T10:00:01Z"), t("2021-08-05T10:00:00Z")),
            0
        );
    }
}
