//! Sponsor credit pools in the store ([`crate::credit`]): what running jobs hold reserved,
//! what completed jobs spent, each pool's total, and the alerts claimed. The tables are in
//! [`super::schema::SCHEMA`]; the writes go through [`super::Write`] like every other change.
//!
//! Units are whole numbers: millionths of the pool's currency, or minutes
//! ([`gatehouse_core::pools`]).

use std::collections::HashMap;

use super::write::Lock;
use super::{Param, Pool, Statement, Store};

/// A change to the pools' books.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreditWrite {
    /// A job went in progress: it holds `units` of `pool` until it completes, but only when
    /// the pool has them left after what was spent and what other jobs hold (1 row); else,
    /// or when the job holds a reservation already, nothing changes (0 rows).
    Reserve(Reservation),
    /// A job completed after `minutes`: its pool (the one it reserved on, else `fallback`)
    /// is charged `minutes` × the reservation's (or the fallback's) units per minute, once
    /// per job id. The pool's total follows in the same transaction.
    Settle {
        job_id: i64,
        holder: String,
        project: Option<String>,
        resource: String,
        day: String,
        minutes: i64,
        /// The pool that pays when the job reserved nothing (it started before the guard
        /// knew, say), and its units per minute.
        fallback: Option<(String, i64)>,
    },
    /// A job's reservation ends (it completed; its cost is settled).
    Unreserve { holder: String },
    /// The call that acts on a claimed alert failed: the claim ends at `at`, so that the next
    /// look (on any replica) tries again.
    ReleaseAlert {
        pool: String,
        threshold: i64,
        at: String,
    },
    /// A replica takes alert `threshold` of `pool` to act on it (1 row) until `lease`, unless
    /// it was acted on, or another replica holds it, or another alert of the same pool, until
    /// after `at`: the pool has one issue, and while the call that opens it is in flight its
    /// number is not known yet, so a second alert would open a second issue.
    ClaimAlert {
        pool: String,
        threshold: i64,
        at: String,
        lease: String,
    },
    /// The alert was acted on: said in `issue` (a number in the access repository), or only
    /// logged (`None`).
    AlertDone {
        pool: String,
        threshold: i64,
        issue: Option<i64>,
        at: String,
    },
}

/// What a job holds of a pool while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// `<run id>:<attempt>:<runner>` ([`crate::caps::holder`]).
    pub holder: String,
    pub pool: String,
    pub job_id: i64,
    pub project: Option<String>,
    pub resource: String,
    /// The expected cost.
    pub units: i64,
    /// What a minute of the resource costs in the pool's units.
    pub per_minute: i64,
    /// The pool's credit.
    pub credit: i64,
    /// Now, and when the reservation stops counting if its job never reports completion.
    pub since: String,
    pub expires: String,
}

const RESERVE: &str = "INSERT INTO pool_reservations (holder, pool, job_id, project, resource,
        units, per_minute, since, expires)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
    WHERE COALESCE((SELECT spent FROM pool_totals WHERE pool = $2), 0)
        + COALESCE((SELECT SUM(units) FROM pool_reservations
            WHERE pool = $2 AND expires > $8 AND holder <> $1), 0)
        + $6 <= $10
      AND NOT EXISTS (SELECT 1 FROM jobs WHERE job_id = $3 AND status = 'completed')
    ON CONFLICT (holder) DO NOTHING";
const SETTLE: &str = "INSERT INTO pool_spend (job_id, pool, project, resource, day, units)
    SELECT $1, COALESCE(r.pool, $7), $3, $4, $5, $6 * COALESCE(r.per_minute, $8)
    FROM (SELECT 1 AS one) one LEFT JOIN pool_reservations r ON r.holder = $2
    WHERE COALESCE(r.pool, $7) IS NOT NULL
    ON CONFLICT (job_id) DO NOTHING";
/// After [`SETTLE`] inserted its row: the pool's totals, in all, for the day and for the
/// project.
const ADD_TOTAL: &str = "INSERT INTO pool_totals (pool, spent)
    SELECT pool, units FROM pool_spend WHERE job_id = $1
    ON CONFLICT (pool) DO UPDATE SET spent = pool_totals.spent + excluded.spent";
const ADD_DAY: &str = "INSERT INTO pool_days (pool, day, spent)
    SELECT pool, day, units FROM pool_spend WHERE job_id = $1
    ON CONFLICT (pool, day) DO UPDATE SET spent = pool_days.spent + excluded.spent";
const ADD_PROJECT: &str = "INSERT INTO pool_projects (pool, project, spent)
    SELECT pool, COALESCE(project, ''), units FROM pool_spend WHERE job_id = $1
    ON CONFLICT (pool, project) DO UPDATE SET spent = pool_projects.spent + excluded.spent";
const UNRESERVE: &str = "DELETE FROM pool_reservations WHERE holder = $1";
const CLAIM_ALERT: &str = "INSERT INTO pool_alerts (pool, threshold, lease) SELECT $1, $2, $4
    WHERE NOT EXISTS (SELECT 1 FROM pool_alerts WHERE pool = $1 AND threshold <> $2
        AND done_at IS NULL AND lease > $3)
    ON CONFLICT (pool, threshold) DO UPDATE SET lease = excluded.lease
    WHERE pool_alerts.done_at IS NULL AND (pool_alerts.lease IS NULL OR pool_alerts.lease <= $3)";
const RELEASE_ALERT: &str = "UPDATE pool_alerts SET lease = $3
    WHERE pool = $1 AND threshold = $2 AND done_at IS NULL";
const ALERT_DONE: &str =
    "UPDATE pool_alerts SET done_at = $4, issue = $3 WHERE pool = $1 AND threshold = $2";
impl CreditWrite {
    pub(super) fn statement(&self) -> Statement<'_> {
        use Param::{Int, Text};
        match self {
            CreditWrite::Reserve(r) => (
                RESERVE,
                vec![
                    Text(Some(&r.holder)),
                    Text(Some(&r.pool)),
                    Int(Some(r.job_id)),
                    Text(r.project.as_deref()),
                    Text(Some(&r.resource)),
                    Int(Some(r.units)),
                    Int(Some(r.per_minute)),
                    Text(Some(&r.since)),
                    Text(Some(&r.expires)),
                    Int(Some(r.credit)),
                ],
            ),
            CreditWrite::Settle {
                job_id,
                holder,
                project,
                resource,
                day,
                minutes,
                fallback,
            } => (
                SETTLE,
                vec![
                    Int(Some(*job_id)),
                    Text(Some(holder)),
                    Text(project.as_deref()),
                    Text(Some(resource)),
                    Text(Some(day)),
                    Int(Some(*minutes)),
                    Text(fallback.as_ref().map(|(p, _)| p.as_str())),
                    Int(fallback.as_ref().map(|(_, r)| *r)),
                ],
            ),
            CreditWrite::Unreserve { holder } => (UNRESERVE, vec![Text(Some(holder))]),
            CreditWrite::ReleaseAlert {
                pool,
                threshold,
                at,
            } => (
                RELEASE_ALERT,
                vec![Text(Some(pool)), Int(Some(*threshold)), Text(Some(at))],
            ),
            CreditWrite::ClaimAlert {
                pool,
                threshold,
                at,
                lease,
            } => (
                CLAIM_ALERT,
                vec![
                    Text(Some(pool)),
                    Int(Some(*threshold)),
                    Text(Some(at)),
                    Text(Some(lease)),
                ],
            ),
            CreditWrite::AlertDone {
                pool,
                threshold,
                issue,
                at,
            } => (
                ALERT_DONE,
                vec![
                    Text(Some(pool)),
                    Int(Some(*threshold)),
                    Int(*issue),
                    Text(Some(at)),
                ],
            ),
        }
    }

    /// The locks PostgreSQL takes for this write: a reservation takes its pool's turn and its
    /// job's (never written beside a completion not committed yet).
    pub(super) fn locks_pg(&self) -> Vec<Lock<'_>> {
        match self {
            CreditWrite::Reserve(r) => vec![Lock::Pool(&r.pool), Lock::Job(r.job_id)],
            CreditWrite::ClaimAlert { pool, .. } => vec![Lock::PoolAlerts(pool)],
            _ => Vec::new(),
        }
    }

    pub(super) fn follow_ups(&self) -> Vec<Statement<'_>> {
        match self {
            CreditWrite::Settle { job_id, .. } => [ADD_TOTAL, ADD_DAY, ADD_PROJECT]
                .into_iter()
                .map(|sql| (sql, vec![Param::Int(Some(*job_id))]))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// What a pool's books say: units spent by completed jobs, and held by running ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    pub spent: u64,
    pub reserved: u64,
}

fn units(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// The pool `holder`'s job holds a reservation on, if it does.
    pub async fn reservation_of(&self, holder: &str) -> anyhow::Result<Option<String>> {
        const SQL: &str = "SELECT pool FROM pool_reservations WHERE holder = $1";
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(holder)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(p,)| p))
    }

    /// Whether job `job_id` completed (its completion counted): a job whose `in_progress`
    /// event comes after its completion reserves nothing, since nothing would end the
    /// reservation.
    pub async fn job_completed(&self, job_id: i64) -> anyhow::Result<bool> {
        const SQL: &str = "SELECT job_id FROM jobs WHERE job_id = $1 AND status = 'completed'";
        let row: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(job_id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.is_some())
    }

    /// Every pool's balance at `now` (reservations past their expiry do not count).
    pub async fn pool_balances(&self, now: &str) -> anyhow::Result<HashMap<String, Balance>> {
        const SPENT: &str = "SELECT pool, spent FROM pool_totals";
        const HELD: &str = "SELECT pool, CAST(SUM(units) AS BIGINT) FROM pool_reservations
            WHERE expires > $1 GROUP BY pool";
        let spent: Vec<(String, i64)> = self.read_rows((SPENT, Vec::new())).await?;
        let held: Vec<(String, i64)> = self.read_rows((HELD, vec![Param::Text(Some(now))])).await?;
        let mut all: HashMap<String, Balance> = HashMap::new();
        for (p, n) in spent {
            all.entry(p).or_default().spent = units(n);
        }
        for (p, n) in held {
            all.entry(p).or_default().reserved = units(n);
        }
        Ok(all)
    }

    /// What `pool` spent per day (`YYYY-MM-DD`) and per project (`""`: jobs of no project).
    pub async fn pool_spending(
        &self,
        pool_name: &str,
    ) -> anyhow::Result<(Vec<(String, i64)>, Vec<(String, i64)>)> {
        const BY_DAY: &str = "SELECT day, spent FROM pool_days WHERE pool = $1 ORDER BY day";
        const BY_PROJECT: &str = "SELECT project, spent FROM pool_projects WHERE pool = $1";
        let by_day: Vec<(String, i64)> = on_pool!(self, pool => sqlx::query_as(BY_DAY)
            .bind(pool_name)
            .fetch_all(pool)
            .await)?;
        let by_project: Vec<(String, i64)> = on_pool!(self, pool => sqlx::query_as(BY_PROJECT)
            .bind(pool_name)
            .fetch_all(pool)
            .await)?;
        Ok((by_day, by_project))
    }

    /// The median length in minutes of `resource`'s most recent completed jobs (at most 199),
    /// if any completed.
    pub async fn median_job_minutes(&self, resource: &str) -> anyhow::Result<Option<u64>> {
        const SQL: &str = "SELECT minutes FROM job_minutes WHERE resource = $1
            ORDER BY job_id DESC LIMIT 199";
        let mut rows: Vec<(i64,)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(resource)
            .fetch_all(pool)
            .await)?;
        if rows.is_empty() {
            return Ok(None);
        }
        rows.sort_unstable();
        Ok(Some(units(rows[rows.len() / 2].0)))
    }

    /// The issue the alerts of `pool` are said in, once one was opened.
    pub async fn pool_issue(&self, pool_name: &str) -> anyhow::Result<Option<i64>> {
        const SQL: &str = "SELECT issue FROM pool_alerts WHERE pool = $1 AND issue IS NOT NULL
            ORDER BY threshold DESC LIMIT 1";
        let row: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(pool_name)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(n,)| n))
    }

    /// The alerts of `pool` acted on: `(threshold, issue)`.
    pub async fn pool_alerts_done(
        &self,
        pool_name: &str,
    ) -> anyhow::Result<Vec<(i64, Option<i64>)>> {
        const SQL: &str = "SELECT threshold, issue FROM pool_alerts
            WHERE pool = $1 AND done_at IS NOT NULL ORDER BY threshold";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(pool_name)
            .fetch_all(pool)
            .await)?)
    }
}
