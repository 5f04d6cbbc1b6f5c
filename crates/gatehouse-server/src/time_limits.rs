//! Per-job time limits (`max_job_minutes` on a resource): the guard cancels the run of a
//! managed job that has been in progress longer than its resource allows, and says why on
//! the commit.
//!
//! - When a job goes in progress on a resource with a limit, its timer is stored with the
//!   delivery's other effects ([`arm`]): deadline = when the job started + the limit. Its
//!   completion removes it ([`disarm`]).
//! - A task ([`spawn`]) looks for due timers every [`crate::TimeLimits::every`]. Timers live
//!   in the store, so a restart resumes them and replicas share them: a replica first takes a
//!   due timer's lease in the database ([`crate::store::Store::lease_timer`]), and only the
//!   one that got it calls GitHub. A lease that ends before the timer fired (a crash, GitHub
//!   unreachable) lets the next look try again; cancelling twice does no harm.
//! - Before cancelling, the guard asks GitHub whether the job still runs (its completion may
//!   have been lost): a run is never cancelled for a job that is over, nor a later attempt of
//!   the same run (its jobs have other ids).
//! - The limit is read again when the timer is due: a limit raised since the job started
//!   moves the deadline, a limit removed drops the timer.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::model::GuardMode;
use jiff::{SignedDuration, Timestamp};

use crate::clock::later;
use crate::events::WorkflowJob;
use crate::explanation::Explanation;
use crate::state::AppState;
use crate::store::{DecisionRecord, JobTimer, Write, time_text};

/// The rule a time-limit cancellation is recorded under (in the decisions, `/metrics` and the
/// dashboard).
pub const RULE: &str = "time-limit";

/// How often due timers are looked for (by default).
pub const EVERY: Duration = Duration::from_secs(15);

/// How long a replica holds a due timer before another may act on it (by default).
pub const LEASE: Duration = Duration::from_secs(120);

/// Due timers acted on per look.
const BATCH: i64 = 100;

/// The timer of `job`, which went in progress on `resource` of project `project` in
/// `repository`, when the resource has a time limit of `minutes`.
pub(crate) fn arm(
    repository: &str,
    project: Option<String>,
    resource: &str,
    minutes: u32,
    job: &WorkflowJob,
    now: Timestamp,
) -> Write {
    // GitHub's `started_at` is when the runner took the job; an event without it started
    // now at the latest.
    let started = job.started_at.unwrap_or(now).min(now);
    Write::ArmTimer(JobTimer {
        job_id: job.id,
        run_id: job.run_id,
        run_attempt: job.run_attempt,
        repository: repository.to_string(),
        project,
        resource: resource.to_string(),
        job_name: job.name.clone(),
        head_sha: job.head_sha.clone(),
        started: time_text(started),
        deadline: time_text(deadline(started, minutes)),
    })
}

/// A completed job's timer is dropped.
pub(crate) fn disarm(job: &WorkflowJob) -> Write {
    Write::DisarmTimer { job_id: job.id }
}

fn deadline(started: Timestamp, minutes: u32) -> Timestamp {
    later(started, Duration::from_secs(u64::from(minutes) * 60))
}

/// Acts on due timers every [`crate::TimeLimits::every`]; ends when the state is dropped.
pub(crate) fn spawn(state: &Arc<AppState>) {
    let weak = Arc::downgrade(state);
    let every = state.config.time_limits.every;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(state) = weak.upgrade() else { return };
            if let Err(e) = fire_due(&state, Timestamp::now()).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the look for jobs over their time limit failed"
                );
            }
        }
    });
}

/// Acts on every timer due at `now` that this replica can take. Returns how many it acted on.
pub(crate) async fn fire_due(state: &AppState, now: Timestamp) -> anyhow::Result<usize> {
    let now_text = time_text(now);
    let until = time_text(later(now, state.config.time_limits.lease));
    let mut acted = 0;
    for timer in state.store.due_timers(&now_text, BATCH).await? {
        // The limit as the access repository says it now.
        let limit = state.source.load().time_limits.of(&timer.resource);
        let started: Timestamp = timer.started.parse().unwrap_or(now);
        let limit = match limit {
            None => {
                state.store.move_timer(timer.job_id, None).await?;
                continue;
            }
            Some(minutes) if deadline(started, minutes) > now => {
                let moved = time_text(deadline(started, minutes));
                state.store.move_timer(timer.job_id, Some(&moved)).await?;
                continue;
            }
            Some(minutes) => minutes,
        };
        if !state
            .store
            .lease_timer(timer.job_id, &now_text, &until)
            .await?
        {
            continue; // another replica has it
        }
        match fire(state, &timer, limit, started, now).await {
            Ok(()) => acted += 1,
            Err(e) => tracing::warn!(
                repository = timer.repository,
                job_id = timer.job_id,
                error = format!("{e:#}"),
                "a job is over its time limit but its run could not be cancelled yet; trying again once the lease ends"
            ),
        }
    }
    Ok(acted)
}

/// Cancels the run of `timer`'s job, over its resource's `limit` minutes, when it still runs,
/// and records what was done.
async fn fire(
    state: &AppState,
    timer: &JobTimer,
    limit: u32,
    started: Timestamp,
    now: Timestamp,
) -> anyhow::Result<()> {
    let minutes = SignedDuration::from_secs(now.as_second() - started.as_second()).as_mins();
    let job = match &timer.job_name {
        Some(name) => format!("job `{name}`"),
        None => format!("job {}", timer.job_id),
    };
    let message = format!(
        "{job} ran for {minutes} minutes on `{}`, whose jobs may run for {limit} minutes at most (`max_job_minutes` in resources/{}.yml): its run was cancelled. Make the job shorter, or set `timeout-minutes: {limit}` on it so that it stops itself.",
        timer.resource, timer.resource
    );
    let acted = match (state.mode(), &state.github) {
        (GuardMode::DryRun, _) => "dry run: not cancelled".to_string(),
        (GuardMode::Enforce, None) => "no GitHub token: not cancelled".to_string(),
        (GuardMode::Enforce, Some(github)) => {
            match github.job_status(&timer.repository, timer.job_id).await? {
                Some(status) if status != "completed" => {
                    if github.cancel_run(&timer.repository, timer.run_id).await? {
                        "run cancelled".to_string()
                    } else {
                        "the run was over already".to_string()
                    }
                }
                _ => "the job was over already".to_string(),
            }
        }
    };
    tracing::info!(
        repository = timer.repository,
        job_id = timer.job_id,
        resource = timer.resource,
        minutes,
        limit,
        acted,
        "a job ran past its time limit"
    );
    let over = acted.ends_with("over already");
    let mut writes = vec![Write::TimerFired {
        job_id: timer.job_id,
        at: time_text(now),
    }];
    if !over {
        writes.push(Write::Decision {
            decision: DecisionRecord {
                delivery_id: format!("time-limit:{}", timer.job_id),
                job_id: timer.job_id,
                run_id: timer.run_id,
                repository: timer.repository.clone(),
                project: timer.project.clone(),
                resource: Some(timer.resource.clone()),
                outcome: "deny".to_string(),
                rule: Some(RULE.to_string()),
                message: Some(format!("{message} ({acted})")),
                decided_at: time_text(now),
                origin: RULE.to_string(),
            },
            context: None,
        });
    }
    state.store.commit(writes).await?;
    if over {
        return Ok(());
    }
    state.metrics.decision("deny", Some(RULE));
    if acted == "run cancelled"
        && let Some(head_sha) = &timer.head_sha
    {
        state.explain(Explanation {
            repository: timer.repository.clone(),
            head_sha: head_sha.clone(),
            title: format!("gatehouse cancelled this run: {RULE}"),
            summary: message,
        });
    }
    Ok(())
}
