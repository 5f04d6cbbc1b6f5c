//! Sponsor credit pools at run time (`pools/<name>.yml`; the pure rules are in
//! [`gatehouse_core::pools`], the books in `store/credit.rs`).
//!
//! - **Queued**: a job that pools fund, all of them without credit left for it, is denied
//!   `budget-exhausted` ([`exhausted`]) like any other denial, before it takes a machine.
//! - **In progress**: the job reserves its expected cost on the first pool that funds it and
//!   has it left ([`reserve`]), in one statement that counts what was spent and what other
//!   running jobs hold (on PostgreSQL under a per-pool lock), so jobs already running can never
//!   spend more than the credit, whichever replica saw them. When no pool has it left, the run
//!   is cancelled (`budget-exhausted`), as a job over a concurrency cap is.
//!   A job already completed (its `in_progress` event came late) reserves nothing.
//! - **Completed**: the job's real cost is charged to the pool it reserved on (or, when it
//!   reserved nothing, the first that funds it) and its reservation ends ([`settle`]).
//! - **Alerts**: a task ([`spawn`]) looks at each pool's spending; at each alert threshold
//!   (80% and 100% by default) a replica claims the alert in the database first, then opens
//!   the pool's one issue in `guard.issues_repository`, or edits it at the next threshold.
//!   While one alert of a pool is claimed, no other of that pool can be (the issue's number
//!   is known only once the call that opens it returns); a failed call ends the claim, so the
//!   next look tries again. With no number recorded, an open issue under the pool's title
//!   (opened by a replica that stopped before recording it, or whose answer was lost) is
//!   edited rather than a second one opened.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::pools::{Terms, alert_reached, expected_minutes, funding};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::clock::later;
use crate::source::CreditPools;
use crate::state::AppState;
use crate::store::{Balance, CreditWrite, Reservation, Write, time_text};

/// How long a job's reservation counts when its job never reports completion: as long as its
/// claim on a machine would ([`crate::caps::HOLD_LIMIT`]).
const RESERVATION_LIMIT: Duration = crate::caps::HOLD_LIMIT;

/// How often the alert task looks at the pools, and how long a replica holds an alert before
/// another may act on it.
pub const ALERT_EVERY: Duration = Duration::from_secs(60);
const ALERT_LEASE: Duration = Duration::from_secs(120);

/// What became of a job's reservation.
pub(crate) enum Reserved {
    /// No pool funds the job.
    NotFunded,
    /// It holds a reservation (made now, or before).
    Held,
    /// Its job completed already (its `in_progress` event came after its completion, which
    /// GitHub's order of deliveries allows): it holds nothing, and owes what it was charged.
    Completed,
    /// Pools fund it, and none has its expected cost left: what to say of them.
    Exhausted(String),
}

fn today(now: Timestamp) -> Date {
    jiff::tz::TimeZone::UTC.to_datetime(now).date()
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What is said of a pool that cannot cover a job: "pool `cloud` (Example Cloud: 500.00 USD of
/// 500.00 USD spent or held by running jobs)".
fn describe(p: &Terms, b: Balance) -> String {
    let used = b.spent.saturating_add(b.reserved);
    format!(
        "pool `{}` ({}: {} of {} spent or held by running jobs)",
        p.name,
        p.sponsor,
        p.show(used.min(p.credit)),
        p.show(p.credit)
    )
}

/// How many minutes a job of `resource` is expected to run (its limit is the one the time
/// limits of the same load hold).
async fn expected(state: &AppState, credit: &CreditPools, resource: &str) -> anyhow::Result<u64> {
    let limit = state.source.load().time_limits.of(resource);
    if limit.is_some() {
        return Ok(expected_minutes(limit, None));
    }
    let median = match credit.cached_median(resource) {
        Some(m) => m,
        None => {
            let m = state.store.median_job_minutes(resource).await?;
            credit.remember_median(resource, m);
            m
        }
    };
    Ok(expected_minutes(None, median))
}

/// For a queued job: `Some(words)` when pools fund it and none has its expected cost left.
pub(crate) async fn exhausted(
    state: &AppState,
    resource: &str,
    project: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let source = state.source.load_full();
    let credit = &source.credit;
    if !credit.funds(resource) {
        return Ok(None);
    }
    let now = Timestamp::now();
    let payers = funding(credit.all(), resource, project, today(now));
    if payers.is_empty() {
        return Ok(None);
    }
    let minutes = expected(state, credit, resource).await?;
    let balances = state.store.pool_balances(&time_text(now)).await?;
    let mut said = Vec::new();
    for p in payers {
        let b = balances.get(&p.name).copied().unwrap_or_default();
        let need = minutes.saturating_mul(p.per_minute.get(resource).copied().unwrap_or(0));
        let used = b.spent.saturating_add(b.reserved);
        if used.saturating_add(need) <= p.credit {
            return Ok(None);
        }
        said.push(describe(p, b));
    }
    Ok(Some(said.join(" and ")))
}

/// For a job going in progress: one reservation of its expected cost on each pool that funds
/// it, in the order they pay (none when no pool funds it). Committed in order, the first pool
/// with the cost left takes it; the others then change nothing (a job holds one reservation).
pub(crate) async fn reservations(
    state: &AppState,
    holder: &str,
    job_id: i64,
    project: Option<&str>,
    resource: &str,
) -> anyhow::Result<Vec<Write>> {
    let source = state.source.load_full();
    let credit = &source.credit;
    if !credit.funds(resource) {
        return Ok(Vec::new());
    }
    let now = Timestamp::now();
    let payers = funding(credit.all(), resource, project, today(now));
    if payers.is_empty() {
        return Ok(Vec::new());
    }
    let minutes = expected(state, credit, resource).await?;
    Ok(payers
        .iter()
        .map(|p| {
            let per_minute = p.per_minute.get(resource).copied().unwrap_or(0);
            Write::Credit(CreditWrite::Reserve(Reservation {
                holder: holder.to_string(),
                pool: p.name.clone(),
                job_id,
                project: project.map(str::to_string),
                resource: resource.to_string(),
                units: to_i64(minutes.saturating_mul(per_minute)),
                per_minute: to_i64(per_minute),
                credit: to_i64(p.credit),
                since: time_text(now),
                expires: time_text(later(now, RESERVATION_LIMIT)),
            }))
        })
        .collect())
}

/// For a job going in progress, on its own ([`crate::guard::Mode::Refused`]): reserves its
/// expected cost on the first pool that funds it and has it left, and says what became of it.
pub(crate) async fn reserve(
    state: &AppState,
    holder: &str,
    job_id: i64,
    project: Option<&str>,
    resource: &str,
) -> anyhow::Result<Reserved> {
    let writes = reservations(state, holder, job_id, project, resource).await?;
    if writes.is_empty() {
        return Ok(Reserved::NotFunded);
    }
    if state.store.reservation_of(holder).await?.is_some() {
        return Ok(Reserved::Held);
    }
    for write in writes {
        if state.store.commit(vec![write]).await?.first() == Some(&1) {
            return Ok(Reserved::Held);
        }
    }
    // A redelivery racing this one may have reserved in between: it holds one then.
    if state.store.reservation_of(holder).await?.is_some() {
        return Ok(Reserved::Held);
    }
    // A reservation is refused for a completed job (nothing would end it).
    if state.store.job_completed(job_id).await? {
        return Ok(Reserved::Completed);
    }
    let source = state.source.load_full();
    let now = Timestamp::now();
    let payers = funding(source.credit.all(), resource, project, today(now));
    let balances = state.store.pool_balances(&time_text(now)).await?;
    let said: Vec<String> = payers
        .iter()
        .map(|p| describe(p, balances.get(&p.name).copied().unwrap_or_default()))
        .collect();
    Ok(Reserved::Exhausted(said.join(" and ")))
}

/// For a completed job: charges its real cost to its pool, and ends its reservation.
#[allow(clippy::too_many_arguments)]
pub(crate) fn settle(
    state: &AppState,
    holder: Option<String>,
    job_id: i64,
    project: &str,
    resource: &str,
    day: &str,
    minutes: i64,
    writes: &mut Vec<Write>,
) {
    let source = state.source.load();
    let credit = &source.credit;
    if !credit.funds(resource) {
        return;
    }
    let fallback = day.parse::<Date>().ok().and_then(|d| {
        let p = *funding(credit.all(), resource, Some(project), d).first()?;
        Some((p.name.clone(), to_i64(*p.per_minute.get(resource)?)))
    });
    writes.push(Write::Credit(CreditWrite::Settle {
        job_id,
        holder: holder.clone().unwrap_or_default(),
        project: Some(project.to_string()),
        resource: resource.to_string(),
        day: day.to_string(),
        minutes,
        fallback,
    }));
    if let Some(holder) = holder {
        writes.push(Write::Credit(CreditWrite::Unreserve { holder }));
    }
}

/// Looks at the pools' spending every [`ALERT_EVERY`] and acts on the alerts reached; ends
/// when the state is dropped.
pub(crate) fn spawn(state: &Arc<AppState>, every: Duration) {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(state) = weak.upgrade() else { return };
            if let Err(e) = alert_pass(&state).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the look at sponsor pools' alerts failed"
                );
            }
        }
    });
}

/// One look: for each pool whose spending reached an alert threshold not acted on yet, claims
/// the highest such threshold and opens (or edits) the pool's issue. Returns how many alerts
/// were acted on.
pub(crate) async fn alert_pass(state: &AppState) -> anyhow::Result<usize> {
    let source = state.source.load_full();
    let credit = &source.credit;
    if credit.all().is_empty() {
        return Ok(0);
    }
    let now = Timestamp::now();
    let balances = state.store.pool_balances(&time_text(now)).await?;
    let mut acted = 0;
    for p in credit.all() {
        let spent = balances.get(&p.name).map_or(0, |b| b.spent);
        let Some(threshold) = alert_reached(&p.alerts, p.credit, spent) else {
            continue;
        };
        let done = state.store.pool_alerts_done(&p.name).await?;
        if done.iter().any(|(t, _)| *t >= i64::from(threshold)) {
            continue;
        }
        let rows = state
            .store
            .commit(vec![Write::Credit(CreditWrite::ClaimAlert {
                pool: p.name.clone(),
                threshold: i64::from(threshold),
                at: time_text(now),
                lease: time_text(later(now, ALERT_LEASE)),
            })])
            .await?;
        if rows.first() != Some(&1) {
            continue;
        }
        let (title, body) = alert_text(p, threshold, spent, now);
        tracing::warn!(
            pool = p.name,
            threshold,
            spent = p.show(spent),
            "sponsor pool alert"
        );
        let issue = match (&state.github, credit.issues_repository()) {
            (Some(github), Some(repository)) => {
                let call = async {
                    let existing = match state.store.pool_issue(&p.name).await? {
                        Some(n) => u64::try_from(n).ok(),
                        // None recorded: a replica may have opened it and not recorded it
                        // (it stopped before, or GitHub's answer was lost): it is open under
                        // the pool's title.
                        None => {
                            github
                                .find_open_issue(repository, &title_prefix(&p.name))
                                .await?
                        }
                    };
                    let n = github
                        .write_issue(repository, existing, &title, &body)
                        .await?;
                    anyhow::Ok(n)
                };
                match call.await {
                    Ok(n) => Some(i64::try_from(n).unwrap_or(i64::MAX)),
                    Err(e) => {
                        // The claim ends now, so the next look tries again (had this write
                        // failed too, its lease ends it).
                        state
                            .store
                            .commit(vec![Write::Credit(CreditWrite::ReleaseAlert {
                                pool: p.name.clone(),
                                threshold: i64::from(threshold),
                                at: time_text(Timestamp::now()),
                            })])
                            .await?;
                        return Err(e);
                    }
                }
            }
            _ => None,
        };
        state
            .store
            .commit(vec![Write::Credit(CreditWrite::AlertDone {
                pool: p.name.clone(),
                threshold: i64::from(threshold),
                issue,
                at: time_text(now),
            })])
            .await?;
        state.metrics.pool_alert();
        acted += 1;
    }
    Ok(acted)
}

/// How the title of pool `name`'s issue begins, whatever the threshold.
fn title_prefix(name: &str) -> String {
    format!("gatehouse: sponsor pool `{name}` has used ")
}

/// The issue's title and body for a pool at `threshold` percent.
fn alert_text(p: &Terms, threshold: u32, spent: u64, now: Timestamp) -> (String, String) {
    let title = format!("{}{threshold}% of its credit", title_prefix(&p.name));
    let after = if threshold >= 100 {
        format!(
            "Jobs that only this pool funds are now refused (`budget-exhausted`). To go on, the \
             sponsor can top it up (raise `amount` or `minutes` in `pools/{}.yml`), or another \
             pool can fund its resources.",
            p.name
        )
    } else {
        "Jobs still run; when the credit is used up, jobs that only this pool funds are \
         refused (`budget-exhausted`)."
            .to_string()
    };
    let body = format!(
        "The pool `{}`, given by {}, has spent {} of its {} (at least {threshold}%) as of {}. It \
         runs from {} to {} and funds {}.\n\n{after}\n\nThe pool's page on the guard shows its \
         burn-down and what each project spent. gatehouse edits this issue at the next alert \
         threshold.\n",
        p.name,
        p.sponsor,
        p.show(spent),
        p.show(p.credit),
        time_text(now),
        p.start,
        p.end,
        p.resources
            .iter()
            .map(|r| format!("`{r}`"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    (title, body)
}
