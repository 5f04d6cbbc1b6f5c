//! Concurrency caps (DESIGN.md section 9): how many jobs may hold a machine at once, per
//! resource (`quota.concurrency`), per project on a resource (`quota.project_concurrency`)
//! and per provider (`max_concurrency`, the organisation-wide cap).
//!
//! What counts is what holds a machine: jobs in progress and jobs a gate admitted; a queued job
//! only waits. The count lives in the store (the `holds` table) and is taken in the same
//! statement, and on PostgreSQL under the same per-provider lock, as the claim it decides
//! ([`crate::store::Write::Admit`], [`crate::store::Write::Started`]), so replicas sharing a
//! database never admit more than a cap between them.
//!
//! - The gate ([`crate::gate`]) enforces per job: a job over a cap waits (the gate asks again)
//!   up to its pool's `concurrency_wait`, then fails alone (`concurrency-exhausted`).
//! - The webhook path sees jobs go in progress: on a resource no gate serves, a job beyond a cap
//!   cancels its run (`on_exceed: cancel`, the default) or is only recorded (`record`). On a
//!   gated resource, a job counts once its gate admits it.
//! - A gate's claim whose job never goes in progress stops counting after [`UNMATCHED_LIMIT`].
//! - A job that never reports completion stops counting [`HOLD_LIMIT`] after it started
//!   (GitHub's own limit on a self-hosted job's execution time), and the sweep
//!   ([`spawn_sweep`]) asks GitHub, for claims older than [`SWEEP_AFTER`], whether their job
//!   is still running.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_policy::Cap;
use jiff::Timestamp;

use crate::clock::later;
use crate::source::ResourceCaps;
use crate::state::AppState;
use crate::store::{Held, Hold, Limits, Store, Write, time_text};

/// How long a claim counts when its job never reports completion: GitHub ends a job on a
/// self-hosted runner after 5 days of execution ("Usage limits", docs.github.com/actions/
/// reference/limits; 6 hours on GitHub's own runners, which gatehouse does not manage). The
/// runners of Cirun, Namespace, Blacksmith, Depot and runner groups are self-hosted to GitHub.
pub const HOLD_LIMIT: Duration = Duration::from_secs(5 * 24 * 3600);

/// How long a gate's claim counts before its job's `in_progress` event names the job (GitHub
/// sends it when the runner takes the job, before the gate asks): a claim for a runner no job
/// ran on (a forged or a lost admission) frees its slot after this.
pub const UNMATCHED_LIMIT: Duration = Duration::from_secs(15 * 60);

/// A claim older than this is checked against GitHub's API by the sweep (by default).
pub const SWEEP_AFTER: Duration = Duration::from_secs(3600);

/// How often the sweep runs (by default), and how many claims it asks GitHub about each time.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
const SWEEP_BATCH: i64 = 100;

/// The key of a job's claim: what both its webhook and its gate know of it (a runner runs one
/// job at a time).
pub(crate) fn holder(run_id: i64, attempt: i64, runner: &str) -> String {
    format!("{run_id}:{attempt}:{runner}")
}

/// A claim on `resource` at `now`: for [`HOLD_LIMIT`] when its job is known (`job_id`), else
/// for [`UNMATCHED_LIMIT`] until its `in_progress` event comes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn hold(
    caps: &ResourceCaps,
    holder: String,
    resource: &str,
    project: Option<String>,
    repository: &str,
    run_id: i64,
    job_id: Option<i64>,
    now: Timestamp,
) -> Hold {
    Hold {
        holder,
        resource: resource.to_string(),
        provider: caps.provider.clone(),
        project,
        repository: repository.to_string(),
        run_id,
        job_id,
        limits: caps.limits,
        at: time_text(now),
        expires: time_text(later(
            now,
            if job_id.is_some() {
                HOLD_LIMIT
            } else {
                UNMATCHED_LIMIT
            },
        )),
    }
}

/// The cap that is reached with `held` jobs holding machines (the tightest when several are):
/// which, how many hold it, and its limit. A claim refused in a race another claim won may find
/// no cap full by the time it counts: then the resource's, or the first that applies.
pub(crate) fn reached(limits: &Limits, held: &Held) -> (Cap, u32, u32) {
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    let all = [
        (Cap::Project, limits.project, held.project),
        (Cap::Resource, limits.resource, held.resource),
        (Cap::Provider, limits.provider, held.provider),
    ];
    let applying = all
        .iter()
        .filter_map(|(cap, limit, n)| limit.map(|l| (*cap, count(*n), l)));
    applying
        .clone()
        .find(|(_, n, l)| n >= l)
        .or_else(|| applying.clone().next())
        .unwrap_or((Cap::Resource, 0, 0))
}

/// The cap `holder`'s claim is beyond at `now` ([`reached`]), from the jobs other than it that
/// hold a machine of `resource`, of `project` on it, and of its provider.
pub(crate) async fn reached_now(
    store: &Store,
    caps: &ResourceCaps,
    resource: &str,
    project: Option<&str>,
    now: Timestamp,
    holder: &str,
) -> anyhow::Result<(Cap, u32, u32)> {
    let held = store
        .held(resource, &caps.provider, project, &time_text(now), holder)
        .await?;
    Ok(reached(&caps.limits, &held))
}

/// Drops claims past their limit and asks GitHub about old ones, every
/// [`crate::HoldsSweep::every`] ([`SWEEP_EVERY`] by default); ends when the state is dropped.
pub(crate) fn spawn_sweep(state: &Arc<AppState>) {
    let weak = Arc::downgrade(state);
    let every = state.config.holds_sweep.every;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(state) = weak.upgrade() else { return };
            if let Err(e) = sweep(&state).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the sweep of held machines failed"
                );
            }
        }
    });
}

/// One sweep: claims past [`HOLD_LIMIT`] stop counting; a claim older than
/// [`crate::HoldsSweep::after`] ([`SWEEP_AFTER`] by default)
/// whose job GitHub reports completed (or does not know) is released. Returns how many claims
/// were removed.
pub(crate) async fn sweep(state: &AppState) -> anyhow::Result<u64> {
    let now = Timestamp::now();
    let mut removed = state.store.drop_expired_holds(&time_text(now)).await?;
    let Some(github) = &state.github else {
        return Ok(removed);
    };
    let before = time_text(
        now.checked_sub(jiff::SignedDuration::try_from(
            state.config.holds_sweep.after,
        )?)
        .unwrap_or(now),
    );
    for (holder, repository, job_id) in state.store.old_holds(&before, SWEEP_BATCH).await? {
        match github.job_status(&repository, job_id).await {
            Ok(Some(status)) if status != "completed" => {}
            Ok(_) => {
                state.store.commit(vec![Write::Release { holder }]).await?;
                removed += 1;
            }
            Err(e) => {
                tracing::warn!(repository, job_id, error = %e, "cannot ask GitHub about a job holding a machine");
                break;
            }
        }
    }
    Ok(removed)
}
