//! What the guard does with the events it uses: remember runs, decide queued jobs (and act on
//! denials), count the minutes of completed jobs. Each function returns a short phrase of what
//! it did, for the log and the webhook's answer.

use anyhow::Context;
use gatehouse_core::duration::Day;
use gatehouse_core::model::GuardMode;
use gatehouse_policy::{Actor, Decision, JobContext, Policy, ResourceId, Usage};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::events::{WorkflowJob, WorkflowJobEvent, WorkflowRunEvent};
use crate::state::{AppState, today};
use crate::store::{DecisionRecord, RunRecord};

pub async fn on_workflow_run(state: &AppState, body: &[u8]) -> anyhow::Result<String> {
    let event: WorkflowRunEvent =
        serde_json::from_slice(body).context("not a workflow_run event")?;
    let repository = event.repository.full_name;
    let Some(run) = event.workflow_run.record(&repository, event.sender) else {
        anyhow::bail!("the workflow_run event names no actor");
    };
    state
        .store
        .upsert_run(&run, &Timestamp::now().to_string())
        .await?;
    Ok(format!("run {} remembered", run.run_id))
}

pub async fn on_workflow_job(
    state: &AppState,
    delivery: &str,
    body: &[u8],
) -> anyhow::Result<String> {
    let event: WorkflowJobEvent =
        serde_json::from_slice(body).context("not a workflow_job event")?;
    let repository = event.repository.full_name.as_str();
    match event.action.as_str() {
        "queued" => decide_job(state, delivery, repository, &event.workflow_job).await,
        "completed" => count_minutes(state, repository, &event.workflow_job).await,
        other => Ok(format!("workflow_job `{other}` not used")),
    }
}

async fn decide_job(
    state: &AppState,
    delivery: &str,
    repository: &str,
    job: &WorkflowJob,
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
    let decision = policy.decide(&ctx);
    let message = decision.message(&policy, &ctx);
    let resource = decision
        .resource()
        .map(|id| policy.resource(id).name.to_string());
    state
        .store
        .record_decision(&DecisionRecord {
            delivery_id: delivery.to_string(),
            job_id: job.id,
            run_id: job.run_id,
            repository: repository.to_string(),
            project: policy.project_of(repository).map(str::to_lowercase),
            resource,
            outcome: decision.outcome().to_string(),
            rule: decision.rule().map(|r| r.code().to_string()),
            message: message.clone(),
            decided_at: Timestamp::now().to_string(),
        })
        .await?;
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
    state
        .store
        .upsert_run(&run, &Timestamp::now().to_string())
        .await?;
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
    let (from, until) = month_of(today);
    let (project_minutes, resource_minutes) = state
        .store
        .minutes_used(project, &policy.resource(resource).name, &from, &until)
        .await?;
    Ok(Usage {
        project_minutes,
        resource_minutes,
    })
}

/// The calendar month around `day`, as `[first day, first day of next month)`.
pub fn month_of(day: jiff::civil::Date) -> (String, String) {
    let first = day.first_of_month();
    let next = first.checked_add(1.month()).unwrap_or(first);
    (first.to_string(), next.to_string())
}

async fn count_minutes(
    state: &AppState,
    repository: &str,
    job: &WorkflowJob,
) -> anyhow::Result<String> {
    let (Some(start), Some(end)) = (job.started_at, job.completed_at) else {
        return Ok("completed job without times: nothing to count".into());
    };
    let policy = state.policy.load();
    let Ok(Some(resource)) = policy.route(job.labels.iter().map(String::as_str)) else {
        return Ok("not managed".into());
    };
    let Some(project) = policy.project_of(repository) else {
        return Ok("not a project repository: not counted".into());
    };
    let minutes = minutes_between(start, end);
    let day = TimeZone::UTC.to_datetime(end).date().to_string();
    let resource = &policy.resource(resource).name;
    let project = project.to_lowercase();
    if state
        .store
        .add_job_minutes(job.id, &project, resource, &day, minutes)
        .await?
    {
        Ok(format!(
            "{minutes} minutes counted for {project} on {resource}"
        ))
    } else {
        Ok("job counted before".into())
    }
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

    #[test]
    fn months_run_from_the_first_to_the_next_first() {
        let (from, until) = month_of(jiff::civil::date(2026, 12, 31));
        assert_eq!(
            (from.as_str(), until.as_str()),
            ("2026-12-01", "2027-01-01")
        );
    }
}
