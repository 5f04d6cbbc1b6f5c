//! Where the guard keeps what it must not forget: deliveries, runs, decisions and minutes.
//!
//! Two backends behind one enum: a SQLite file (the default, one process) and PostgreSQL
//! (several replicas behind a load balancer). Both run the same SQL text; only the schema's
//! type names differ. `$N` placeholders work on both (sqlx's SQLite driver reads `$N` as the
//! N-th argument).
//!
//! Deduplication rests on unique keys, not on memory: a delivery id or a job id is inserted
//! with `ON CONFLICT DO NOTHING`, and whoever inserts it first owns it. That holds across
//! replicas sharing one PostgreSQL.
//!
//! Every change goes through [`Store::commit`] as a unit of [`Write`]s applied all or nothing.
//! On SQLite one writer thread ([`sqlite_writer`]) owns the only writing connection and
//! commits the units it has received together in one transaction (group commit): one disk
//! sync serves many deliveries, and each caller is answered only once its unit is durable. On
//! PostgreSQL each unit is its own transaction on the pool (the server does the grouping).
//!
//! The rooms: this file opens the store and holds what the guard itself reads (runs, role
//! facts, holds, timers, deliveries); [`schema`] the tables and their migration; [`write`]
//! every change and its SQL; [`sqlite_writer`] the thread that commits them on SQLite;
//! [`dashboard`] what the pages, the API and `/metrics` read ([`Store::usage_of_month`],
//! [`Store::weekly_usage`], [`Store::project_usage`], [`Store::recent_denials`],
//! [`Store::active_jobs`], ...); [`credit`] and [`run_approvals`] the books of sponsor pools
//! and run approvals.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use jiff::Timestamp;
use serde::Serialize;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

use run_waiters::RunWaiters;
use sqlite_writer::Unit;
use write::apply_pg;

/// The storage, on one of its two backends.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// SQLite only: the writer thread's queue.
    writer: Option<mpsc::Sender<Unit>>,
    /// SQLite only: the read connections of the reads a delivery makes and of the large reads
    /// ([`sqlite_reader`], [`bulk`]).
    readers: Option<Arc<sqlite_reader::Readers>>,
    /// `sqlite::memory:` only: the temporary folder of the file standing in for it (held,
    /// never read: dropping the last clone removes it).
    #[cfg_attr(not(test), allow(dead_code))]
    temporary: Option<Arc<tempfile::TempDir>>,
    /// Who waits for a run's context to be stored ([`Store::wait_run`]).
    run_waiters: Arc<RunWaiters>,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same query code on whichever pool the store holds (the pools have different
/// types, so each arm is compiled for its own backend).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

// After `on_pool!`, which they use.
mod bulk;
mod credit;
mod dashboard;
mod facts;
mod needs;
mod run_approvals;
mod run_waiters;
mod schema;
mod sqlite_reader;
mod sqlite_writer;
mod totals;
mod write;
pub use credit::{Balance, CreditWrite, Reservation};
pub use dashboard::{ActiveJobs, DecisionFilter, HoldRow, UsageRow, WeekUsage};
pub use facts::{FactRow, FactTable, TeamFactsWrite};
pub use needs::{Applied, Need};
pub use run_approvals::{ApprovedJob, ApprovedRun, RunApprovalRecord, StoredRunApproval};
pub use write::{Hold, JobStatus, Limits, Write};
use write::{Param, Statement};

/// A running job's time limit ([`crate::time_limits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobTimer {
    pub job_id: i64,
    pub run_id: i64,
    pub run_attempt: i64,
    pub repository: String,
    pub project: Option<String>,
    pub resource: String,
    pub job_name: Option<String>,
    pub head_sha: Option<String>,
    /// When the job started, as [`time_text`] writes it.
    pub started: String,
    /// When it has run too long.
    pub deadline: String,
}

/// How many jobs hold a machine, per cap ([`Store::held`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Held {
    pub resource: i64,
    pub project: i64,
    pub provider: i64,
}

/// What a `workflow_run` event (or GitHub's API) says about one attempt of a run, kept by
/// run id and attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub run_id: i64,
    pub run_attempt: i64,
    pub repository: String,
    pub event: String,
    pub head_repository: Option<String>,
    /// The head repository's owner (login, id): for a fork, whose code runs.
    pub head_owner: Option<(String, i64)>,
    pub head_sha: Option<String>,
    /// The repository's default branch, when the event (or the API) said.
    pub default_branch: Option<String>,
    pub actor: (String, i64),
    pub triggering_actor: Option<(String, i64)>,
    pub workflow: Option<String>,
    pub git_ref: Option<String>,
}

/// One decision as recorded and as the JSON API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    pub delivery_id: String,
    pub job_id: i64,
    pub run_id: i64,
    pub repository: String,
    pub project: Option<String>,
    pub resource: Option<String>,
    pub outcome: String,
    pub rule: Option<String>,
    pub message: Option<String>,
    pub decided_at: String,
    /// `webhook` (the guard decided the queued job) or `gate` (a runner's gate asked before
    /// the job's first step; `delivery_id` is then `gate:<run>:<attempt>:<runner>`).
    pub origin: String,
}

/// A delivery as stored.
#[derive(Clone, Debug)]
pub struct StoredDelivery {
    pub delivery_id: String,
    pub event: String,
    pub received_at: String,
    pub body: Vec<u8>,
}

/// A stored `workflow_job` delivery with the decision recorded for it, if any (for `replay`).
#[derive(Clone, Debug)]
pub struct JobDelivery {
    pub delivery: StoredDelivery,
    /// `allow` or `deny`; `None` when no decision was recorded (the job was not managed, or
    /// it was not a `queued` event).
    pub outcome: Option<String>,
    pub rule: Option<String>,
    pub resource: Option<String>,
    /// The job context the decision was made on, as JSON.
    pub context: Option<String>,
    /// What processing the delivery said (`error: ...` when it failed); `None` while it
    /// is not processed.
    pub processed: Option<String>,
}

type DecisionRow = (
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// A decision as [`DecisionRow`] reads it.
fn decision_record(r: DecisionRow) -> DecisionRecord {
    DecisionRecord {
        delivery_id: r.0,
        job_id: r.1,
        run_id: r.2,
        repository: r.3,
        project: r.4,
        resource: r.5,
        outcome: r.6,
        rule: r.7,
        message: r.8,
        decided_at: r.9,
        origin: r.10,
    }
}

/// The present moment as the store writes it: fixed width, so text order is time order.
pub fn now_text() -> String {
    time_text(Timestamp::now())
}

/// `t` as the store writes times (`2026-01-02T03:04:05.000000000Z`).
pub fn time_text(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

impl Store {
    /// Opens `sqlite://path` (created when missing) or `postgres://...`, and migrates it.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url).with_context(|| {
                format!("`{url}` is not a SQLite URL such as sqlite://gatehouse.db")
            })?;
            // An in-memory database could not be shared between the pool and the writer's
            // connection: it is a file in a temporary folder instead, removed with the last
            // clone of the store.
            let (options, temporary) = if url.contains(":memory:") {
                let dir = tempfile::Builder::new()
                    .prefix("gatehouse-memory-")
                    .tempdir()
                    .context("cannot create a temporary folder for sqlite::memory:")?;
                let options = SqliteConnectOptions::new().filename(dir.path().join("guard.db"));
                (options, Some(Arc::new(dir)))
            } else {
                (options, None)
            };
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.clone())
                .await
                .with_context(|| format!("cannot open the SQLite database `{url}`"))?;
            let store = Store {
                pool: Pool::Sqlite(pool.clone()),
                writer: None,
                readers: Some(Arc::new(sqlite_reader::Readers::new(
                    options.get_filename(),
                ))),
                temporary,
                run_waiters: Arc::default(),
            };
            store
                .migrate()
                .await
                .context("cannot create the database tables")?;
            let (tx, rx) = mpsc::channel(4 * sqlite_writer::MAX_BATCH);
            sqlite_writer::start(options.get_filename(), rx)
                .with_context(|| format!("cannot open the SQLite database `{url}` for writing"))?;
            return Ok(Store {
                writer: Some(tx),
                ..store
            });
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                // The URL may hold a password: name only the backend.
                .context("cannot connect to the PostgreSQL database given with --db")?;
            Store {
                pool: Pool::Postgres(pool),
                writer: None,
                readers: None,
                temporary: None,
                run_waiters: Arc::default(),
            }
        } else {
            anyhow::bail!(
                "--db must start with sqlite:// or postgres://, got `{}`",
                scheme_of(url)
            );
        };
        store
            .migrate()
            .await
            .context("cannot create the database tables")?;
        Ok(store)
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// The rows of a read a delivery makes, each a tuple: on SQLite read on the calling thread
    /// ([`sqlite_reader`]), on PostgreSQL through the pool.
    async fn read_rows<T>(&self, statement: Statement<'_>) -> anyhow::Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'a> TryFrom<&'a sqlite_reader::Row<'a>, Error = rusqlite::Error>
            + Send
            + Unpin,
    {
        match (&self.pool, &self.readers) {
            (Pool::Postgres(pool), _) => {
                let (sql, params) = statement;
                let arguments = write::pg_arguments(params).map_err(anyhow::Error::from_boxed)?;
                Ok(sqlx::query_as_with(sql, arguments).fetch_all(pool).await?)
            }
            (Pool::Sqlite(_), Some(readers)) => {
                Ok(readers.rows(statement, |row| T::try_from(row))?)
            }
            (Pool::Sqlite(_), None) => anyhow::bail!("the SQLite store has no readers"),
        }
    }

    /// Which of `ids` are stored deliveries.
    pub async fn known_deliveries(
        &self,
        ids: &[String],
    ) -> anyhow::Result<std::collections::HashSet<String>> {
        let mut known = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let rows: Vec<(String,)> = on_pool!(self, pool => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT delivery_id FROM deliveries WHERE delivery_id IN (",
                );
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                list.push_unseparated(")");
                q.build_query_as().fetch_all(pool).await?
            });
            known.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(known)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        if self.writer.as_ref().is_some_and(mpsc::Sender::is_closed) {
            anyhow::bail!("the SQLite writer has stopped: restart the guard");
        }
        Ok(())
    }

    /// Applies `writes` all or nothing and returns, for each, how many rows it changed. Returns
    /// once they are durable.
    pub async fn commit(&self, writes: Vec<Write>) -> anyhow::Result<Vec<u64>> {
        match self.apply(writes, Vec::new()).await? {
            Ok(rows) => Ok(rows),
            Err(_) => anyhow::bail!("a commit that needs nothing was refused"),
        }
    }

    /// [`Store::commit`], except that when the first write changes nothing (a delivery stored
    /// before) the rest is not applied and `None` is returned. Stores a delivery and its
    /// effects in one step.
    pub async fn commit_if_new(&self, writes: Vec<Write>) -> anyhow::Result<Option<Vec<u64>>> {
        Ok(self.apply(writes, vec![Need::Changed(0)]).await?.ok())
    }

    /// [`Store::commit`] when every one of `needs` is met ([`Need`]); else nothing is applied
    /// and the answer is the position in `needs` of the first one not met.
    pub async fn commit_needing(
        &self,
        writes: Vec<Write>,
        needs: Vec<Need>,
    ) -> anyhow::Result<Applied> {
        self.apply(writes, needs).await
    }

    async fn apply(&self, writes: Vec<Write>, needs: Vec<Need>) -> anyhow::Result<Applied> {
        let runs: Vec<(i64, i64)> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Run { run, .. } => Some((run.run_id, run.run_attempt)),
                _ => None,
            })
            .collect();
        let rows = self.apply_now(writes, needs).await?;
        if !runs.is_empty() && rows.is_ok() {
            self.run_waiters.stored(runs);
        }
        Ok(rows)
    }

    async fn apply_now(&self, writes: Vec<Write>, needs: Vec<Need>) -> anyhow::Result<Applied> {
        if writes.is_empty() {
            return Ok(needs::unmet_beyond(&needs, 0).map_or(Ok(Vec::new()), Err));
        }
        if let Some(writer) = &self.writer {
            let (tx, rx) = oneshot::channel();
            writer
                .send(Unit {
                    writes,
                    needs,
                    reply: tx,
                })
                .await
                .map_err(|_| anyhow::anyhow!("the database writer has stopped"))?;
            return rx
                .await
                .map_err(|_| anyhow::anyhow!("the database writer has stopped"))?
                .map_err(anyhow::Error::msg);
        }
        match &self.pool {
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let rows = match apply_pg(&mut tx, &writes, &needs).await? {
                    Ok(rows) => rows,
                    Err(unmet) => {
                        tx.rollback().await?;
                        return Ok(Err(unmet));
                    }
                };
                tx.commit().await?;
                Ok(Ok(rows))
            }
            Pool::Sqlite(_) => anyhow::bail!("the SQLite store has no writer"),
        }
    }

    /// Stores a delivery; `false` when one with this id was stored before (by this process or
    /// by another replica), in which case it must not be processed again.
    pub async fn insert_delivery(
        &self,
        delivery_id: &str,
        event: &str,
        received_at: &str,
        body: &[u8],
    ) -> anyhow::Result<bool> {
        let rows = self
            .commit(vec![Write::Delivery {
                delivery_id: delivery_id.to_string(),
                event: event.to_string(),
                received_at: received_at.to_string(),
                body: Bytes::copy_from_slice(body),
                processed: None,
            }])
            .await?;
        Ok(rows.first() == Some(&1))
    }

    /// Remembers a run's context; a later event about the same run replaces it.
    pub async fn upsert_run(&self, run: &RunRecord, now: &str) -> anyhow::Result<()> {
        self.commit(vec![Write::Run {
            run: run.clone(),
            now: now.to_string(),
        }])
        .await
        .map(drop)
    }

    /// [`Store::get_run`], waiting until `until` for the attempt to be stored: looked at again
    /// as soon as this store commits that attempt's context, and every `poll` for one that another
    /// replica stored. (A job's `queued` event often comes before its run's `workflow_run`:
    /// the job waits only as long as the run's event takes, not a poll's period.)
    pub async fn wait_run(
        &self,
        run_id: i64,
        attempt: i64,
        until: tokio::time::Instant,
        poll: Duration,
    ) -> anyhow::Result<Option<RunRecord>> {
        let waiting = self.run_waiters.wait_for((run_id, attempt));
        loop {
            // Registered before the look, so a run stored in between still wakes it.
            let stored = waiting.notify.notified();
            tokio::pin!(stored);
            stored.as_mut().enable();
            if let Some(run) = self.get_run(run_id, attempt).await? {
                return Ok(Some(run));
            }
            let now = tokio::time::Instant::now();
            if now >= until {
                return Ok(None);
            }
            let _ = tokio::time::timeout_at(until.min(now + poll), stored).await;
        }
    }

    /// The context of one attempt of a run, if a `workflow_run` event (or GitHub's API) told
    /// it.
    pub async fn get_run(&self, run_id: i64, attempt: i64) -> anyhow::Result<Option<RunRecord>> {
        type Row = (
            i64,
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
            String,
            i64,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        const SQL: &str = "SELECT run_id, run_attempt, repository, event, head_repository,
                head_owner_login, head_owner_id, head_sha, actor_login, actor_id,
                triggering_actor_login, triggering_actor_id, workflow, git_ref, default_branch
            FROM run_attempts WHERE run_id = $1 AND run_attempt = $2";
        let row: Option<Row> = self
            .read_rows((
                SQL,
                vec![Param::Int(Some(run_id)), Param::Int(Some(attempt))],
            ))
            .await?
            .pop();
        Ok(row.map(|r| RunRecord {
            run_id: r.0,
            run_attempt: r.1,
            repository: r.2,
            event: r.3,
            head_repository: r.4,
            head_owner: r.5.zip(r.6),
            head_sha: r.7,
            actor: (r.8, r.9),
            triggering_actor: r.10.zip(r.11),
            workflow: r.12,
            git_ref: r.13,
            default_branch: r.14,
        }))
    }

    /// The outcomes of an admission (by its delivery id) and of its job's webhook decision
    /// (by job id), when recorded: for telling when the two disagree.
    pub async fn admission_and_decision(
        &self,
        admission: &str,
        job_id: i64,
    ) -> anyhow::Result<(Option<String>, Option<String>)> {
        const SQL: &str = "SELECT delivery_id, outcome, COALESCE(origin, 'webhook') FROM decisions
            WHERE delivery_id = $1 OR (job_id = $2 AND COALESCE(origin, 'webhook') = 'webhook')";
        let rows: Vec<(String, String, String)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(admission)
            .bind(job_id)
            .fetch_all(pool)
            .await)?;
        let gate = rows.iter().find(|r| r.0 == admission).map(|r| r.1.clone());
        let webhook = rows
            .iter()
            .find(|r| r.2 == "webhook" && r.0 != admission)
            .map(|r| r.1.clone());
        Ok((gate, webhook))
    }

    /// Minutes used on `resource` in `month` (`YYYY-MM`) by `project` and by every project.
    pub async fn minutes_used(
        &self,
        project: &str,
        resource: &str,
        month: &str,
    ) -> anyhow::Result<(u64, u64)> {
        const SQL: &str = "SELECT
                CAST(COALESCE(SUM(CASE WHEN project = $1 THEN minutes ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(minutes), 0) AS BIGINT)
            FROM usage_by_month WHERE resource = $2 AND month = $3";
        let params = vec![
            Param::Text(Some(project)),
            Param::Text(Some(resource)),
            Param::Text(Some(month)),
        ];
        let (project_minutes, resource_minutes) = self
            .read_rows::<(i64, i64)>((SQL, params))
            .await?
            .pop()
            .unwrap_or_default();
        Ok((
            project_minutes.max(0) as u64,
            resource_minutes.max(0) as u64,
        ))
    }

    /// The state of `holder`'s claim (`admitted`, `over`, `waiting`), if it holds one.
    pub async fn hold_state(&self, holder: &str) -> anyhow::Result<Option<String>> {
        const SQL: &str = "SELECT state FROM holds WHERE holder = $1";
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(holder)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(s,)| s))
    }

    /// How many jobs other than `holder`'s hold a machine at `now` (as [`time_text`] writes
    /// it): of `resource`, of `project` on it, of `provider`.
    pub async fn held(
        &self,
        resource: &str,
        provider: &str,
        project: Option<&str>,
        now: &str,
        holder: &str,
    ) -> anyhow::Result<Held> {
        const SQL: &str = "SELECT
            (SELECT COUNT(*) FROM holds WHERE resource = $1 AND state <> 'waiting'
                AND expires > $4 AND holder <> $5),
            (SELECT COUNT(*) FROM holds WHERE resource = $1 AND project = $3
                AND state <> 'waiting' AND expires > $4 AND holder <> $5),
            (SELECT COUNT(*) FROM holds WHERE provider = $2 AND state <> 'waiting'
                AND expires > $4 AND holder <> $5)";
        let (resource, project, provider): (i64, i64, i64) = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(resource)
            .bind(provider)
            .bind(project)
            .bind(now)
            .bind(holder)
            .fetch_one(pool)
            .await)?;
        Ok(Held {
            resource,
            project,
            provider,
        })
    }

    /// Removes the claims and pool reservations past their `expires` at `now`; how many
    /// claims.
    pub async fn drop_expired_holds(&self, now: &str) -> anyhow::Result<u64> {
        const SQL: &str = "DELETE FROM holds WHERE expires <= $1";
        const RESERVATIONS: &str = "DELETE FROM pool_reservations WHERE expires <= $1";
        on_pool!(self, pool => sqlx::query(RESERVATIONS)
            .bind(now)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(on_pool!(self, pool => sqlx::query(SQL)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }

    /// Claims held since before `before` that name their job: the sweep asks GitHub whether
    /// those jobs are still running. At most `limit`, oldest first.
    pub async fn old_holds(
        &self,
        before: &str,
        limit: i64,
    ) -> anyhow::Result<Vec<(String, String, i64)>> {
        const SQL: &str = "SELECT holder, repository, job_id FROM holds
            WHERE since < $1 AND job_id IS NOT NULL ORDER BY since LIMIT $2";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// Time limits due at `now` that no replica holds a lease on: at most `limit`, the
    /// earliest first.
    pub async fn due_timers(&self, now: &str, limit: i64) -> anyhow::Result<Vec<JobTimer>> {
        const SQL: &str = "SELECT job_id, run_id, run_attempt, repository, project, resource,
                job_name, head_sha, started, deadline
            FROM job_timers WHERE fired_at IS NULL AND deadline <= $1
                AND (lease IS NULL OR lease <= $1)
            ORDER BY deadline LIMIT $2";
        type Row = (
            i64,
            i64,
            i64,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
        );
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|r| JobTimer {
                job_id: r.0,
                run_id: r.1,
                run_attempt: r.2,
                repository: r.3,
                project: r.4,
                resource: r.5,
                job_name: r.6,
                head_sha: r.7,
                started: r.8,
                deadline: r.9,
            })
            .collect())
    }

    /// Takes job `job_id`'s due time limit until `until`: `true` for the one replica that
    /// got it (no other holds a lease at `now` and it has not fired), which then acts on it.
    pub async fn lease_timer(&self, job_id: i64, now: &str, until: &str) -> anyhow::Result<bool> {
        const SQL: &str = "UPDATE job_timers SET lease = $3
            WHERE job_id = $1 AND fired_at IS NULL AND deadline <= $2
                AND (lease IS NULL OR lease <= $2)";
        let rows = on_pool!(self, pool => sqlx::query(SQL)
            .bind(job_id)
            .bind(now)
            .bind(until)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(rows == 1)
    }

    /// Moves job `job_id`'s unfired time limit to `deadline` (the resource's limit changed),
    /// or removes it (`None`: the resource has none any more).
    pub async fn move_timer(&self, job_id: i64, deadline: Option<&str>) -> anyhow::Result<()> {
        match deadline {
            Some(deadline) => {
                const SQL: &str = "UPDATE job_timers SET deadline = $2, lease = NULL
                    WHERE job_id = $1 AND fired_at IS NULL";
                on_pool!(self, pool => sqlx::query(SQL)
                    .bind(job_id)
                    .bind(deadline)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
            None => {
                on_pool!(self, pool => sqlx::query(write::DISARM_TIMER)
                    .bind(job_id)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
        }
        Ok(())
    }

    /// Deliveries stored but not processed, oldest first, at most `limit`.
    pub async fn unprocessed(&self, limit: i64) -> anyhow::Result<Vec<StoredDelivery>> {
        const SQL: &str = "SELECT delivery_id, event, received_at, body FROM deliveries
            WHERE processed_at IS NULL ORDER BY received_at, delivery_id LIMIT $1";
        let rows: Vec<(String, String, String, Vec<u8>)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(delivery_id, event, received_at, body)| StoredDelivery {
                delivery_id,
                event,
                received_at,
                body,
            })
            .collect())
    }

    /// `workflow_job` deliveries received at or after `since` (as [`time_text`] writes it),
    /// oldest first, each with the decision recorded for it.
    pub async fn job_deliveries_since(&self, since: &str) -> anyhow::Result<Vec<JobDelivery>> {
        type Row = (
            String,
            String,
            String,
            Vec<u8>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        const SQL: &str = "SELECT d.delivery_id, d.event, d.received_at, d.body, c.outcome,
                c.rule, c.resource, c.context, d.outcome
            FROM deliveries d LEFT JOIN decisions c ON c.delivery_id = d.delivery_id
            WHERE d.event = 'workflow_job' AND d.received_at >= $1
            ORDER BY d.received_at, d.delivery_id";
        let rows: Vec<Row> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(since)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|r| JobDelivery {
                delivery: StoredDelivery {
                    delivery_id: r.0,
                    event: r.1,
                    received_at: r.2,
                    body: r.3,
                },
                outcome: r.4,
                rule: r.5,
                resource: r.6,
                context: r.7,
                processed: r.8,
            })
            .collect())
    }
}

/// Totals over the whole store, for checks after a load or crash test.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoredCounts {
    pub deliveries: i64,
    pub unprocessed: i64,
    pub decisions: i64,
    /// Sum of `job_minutes`.
    pub job_minutes: i64,
    /// Sum of the monthly totals (must equal `job_minutes`).
    pub month_minutes: i64,
    /// Sum of the daily totals per resource (must equal `job_minutes`).
    pub day_minutes: i64,
    /// Sum of the weekly totals per project (must equal `job_minutes`).
    pub week_minutes: i64,
}

impl StoredCounts {
    /// Whether every total of minutes (per month, day and week) adds up to the minutes of
    /// the jobs counted.
    pub fn totals_agree(&self) -> bool {
        [self.month_minutes, self.day_minutes, self.week_minutes]
            .iter()
            .all(|&t| t == self.job_minutes)
    }
}

impl Store {
    /// Totals over the whole store (see [`StoredCounts`]).
    pub async fn counts(&self) -> anyhow::Result<StoredCounts> {
        const SQL: &str = "SELECT
            (SELECT COUNT(*) FROM deliveries),
            (SELECT COUNT(*) FROM deliveries WHERE processed_at IS NULL),
            (SELECT COUNT(*) FROM decisions),
            (SELECT CAST(COALESCE(SUM(minutes), 0) AS BIGINT) FROM job_minutes),
            (SELECT CAST(COALESCE(SUM(minutes), 0) AS BIGINT) FROM usage_by_month),
            (SELECT CAST(COALESCE(SUM(minutes), 0) AS BIGINT) FROM usage_by_day),
            (SELECT CAST(COALESCE(SUM(minutes), 0) AS BIGINT) FROM usage_by_week)";
        let r: (i64, i64, i64, i64, i64, i64, i64) =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_one(pool).await)?;
        Ok(StoredCounts {
            deliveries: r.0,
            unprocessed: r.1,
            decisions: r.2,
            job_minutes: r.3,
            month_minutes: r.4,
            day_minutes: r.5,
            week_minutes: r.6,
        })
    }

    /// Every stored delivery id.
    pub async fn delivery_ids(&self) -> anyhow::Result<Vec<String>> {
        let rows: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT delivery_id FROM deliveries").fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

/// The part of a database URL before `://`: enough to say what was wrong without repeating
/// a password that may follow.
fn scheme_of(url: &str) -> &str {
    url.split_once("://").map_or("(no scheme)", |(s, _)| s)
}

/// The file of a SQLite URL (`sqlite://guard.db`, `sqlite:guard.db?mode=rwc`), `None` for
/// another database or SQLite in memory.
pub(crate) fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.contains(":memory:")).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str) -> Write {
        Write::Delivery {
            delivery_id: id.into(),
            event: "ping".into(),
            received_at: now_text(),
            body: Bytes::from_static(b"{}"),
            processed: None,
        }
    }

    /// `sqlite::memory:` works as users expect (each store its own, empty at start) although
    /// the writer needs a file: one in a temporary folder, removed with the store.
    #[tokio::test]
    async fn an_in_memory_store_is_its_own_and_leaves_nothing_behind() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let folder = store.temporary.as_ref().unwrap().path().to_path_buf();
        assert_eq!(store.commit(vec![delivery("m")]).await.unwrap(), vec![1]);
        assert_eq!(store.delivery_ids().await.unwrap(), vec!["m".to_string()]);
        let other = Store::connect("sqlite::memory:").await.unwrap();
        assert!(other.delivery_ids().await.unwrap().is_empty());
        assert!(folder.join("guard.db").exists());
        drop(store);
        assert!(!folder.exists(), "{} is left behind", folder.display());
    }

    /// A unit whose write fails is left out whole; the units committed with it are not.
    #[tokio::test]
    async fn a_failing_unit_does_not_take_its_batch_down() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        // Break one table under the store's feet.
        on_pool!(store, pool => sqlx::query("DROP TABLE jobs").execute(pool).await.map(drop))
            .unwrap();
        let failing = vec![
            delivery("a"),
            Write::JobStatus {
                job_id: 1,
                project: None,
                resource: "gpu".into(),
                status: JobStatus::Queued,
                at: now_text(),
            },
        ];
        let (bad, good, dup) = tokio::join!(
            store.commit(failing),
            store.commit(vec![delivery("b")]),
            store.commit_if_new(vec![delivery("b"), delivery("c")]),
        );
        assert!(bad.is_err());
        assert_eq!(good.unwrap(), vec![1]);
        // `b` is stored by one of the two units; the other's rest is not applied.
        let ids = store.delivery_ids().await.unwrap();
        assert!(!ids.contains(&"a".to_string()), "{ids:?}");
        assert!(ids.contains(&"b".to_string()), "{ids:?}");
        match dup.unwrap() {
            Some(rows) => assert_eq!(rows, vec![1, 1]),
            None => assert!(!ids.contains(&"c".to_string()), "{ids:?}"),
        }
    }

    /// SQLite's writer adds a batch's usage totals at its end: the minutes of a unit that
    /// failed after counting its job are not in them, those of every unit committed are.
    #[tokio::test]
    async fn the_totals_hold_only_the_minutes_of_units_committed() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        on_pool!(store, pool => sqlx::query("DROP TABLE jobs").execute(pool).await.map(drop))
            .unwrap();
        let minutes = |job_id: i64, project: &str, minutes: i64| Write::Minutes {
            job_id,
            project: project.into(),
            resource: "gpu".into(),
            day: "2026-12-07".into(),
            minutes,
        };
        let failing = vec![
            minutes(1, "numpy", 1000),
            Write::JobStatus {
                job_id: 1,
                project: None,
                resource: "gpu".into(),
                status: JobStatus::Completed,
                at: now_text(),
            },
        ];
        let (bad, a, b, again) = tokio::join!(
            store.commit(failing),
            store.commit(vec![minutes(2, "numpy", 10)]),
            store.commit(vec![minutes(3, "numpy", 5), minutes(4, "scipy", 7)]),
            store.commit(vec![minutes(2, "numpy", 10)]),
        );
        assert!(bad.is_err());
        assert_eq!(b.unwrap(), vec![1, 1]);
        // Job 2 is counted once, whichever of its two units came first.
        let mut twice = [a.unwrap(), again.unwrap()];
        twice.sort();
        assert_eq!(twice, [vec![0], vec![1]]);
        let counts = store.counts().await.unwrap();
        assert_eq!(counts.job_minutes, 22);
        assert!(counts.totals_agree(), "{counts:?}");
    }

    /// A job waiting for its run's context is woken when the run is stored, not at its next
    /// look (here a minute away): a `queued` event that beats its `workflow_run` waits only
    /// as long as the run's event takes.
    #[tokio::test]
    async fn a_run_stored_wakes_whoever_waits_for_it() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let run = RunRecord {
            run_id: 7,
            run_attempt: 2,
            repository: "conda-forge/numpy-feedstock".into(),
            event: "push".into(),
            head_repository: None,
            head_owner: None,
            head_sha: None,
            default_branch: None,
            actor: ("alice".into(), 1),
            triggering_actor: None,
            workflow: None,
            git_ref: None,
        };
        let minute = Duration::from_secs(60);
        let until = tokio::time::Instant::now() + minute;
        // Another attempt of the run does not end the wait.
        let other = RunRecord {
            run_attempt: 1,
            ..run.clone()
        };
        let writer = store.clone();
        let stored = run.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer.upsert_run(&other, &now_text()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer.upsert_run(&stored, &now_text()).await.unwrap();
        });
        let started = std::time::Instant::now();
        let found = store.wait_run(7, 2, until, minute).await.unwrap();
        assert_eq!(found, Some(run));
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        // Nothing stored: the wait ends at `until` with nothing.
        let soon = tokio::time::Instant::now() + Duration::from_millis(100);
        assert_eq!(store.wait_run(8, 1, soon, minute).await.unwrap(), None);
    }

    #[test]
    fn the_file_of_a_sqlite_url() {
        assert_eq!(sqlite_file("sqlite://guard.db"), Some("guard.db"));
        assert_eq!(
            sqlite_file("sqlite:///var/lib/g.db?mode=ro"),
            Some("/var/lib/g.db")
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/test"), None);
    }
}
