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

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// The schema, one statement per entry. `{id}`, `{int}` and `{bytes}` are the backend's type
/// names; everything else is shared. `CREATE ... IF NOT EXISTS` makes it safe to run at every
/// start.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS deliveries (
        delivery_id TEXT PRIMARY KEY,
        event TEXT NOT NULL,
        received_at TEXT NOT NULL,
        body {bytes} NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS runs (
        run_id {int} PRIMARY KEY,
        repository TEXT NOT NULL,
        event TEXT NOT NULL,
        head_repository TEXT,
        actor_login TEXT NOT NULL,
        actor_id {int} NOT NULL,
        triggering_actor_login TEXT,
        triggering_actor_id {int},
        workflow TEXT,
        git_ref TEXT,
        updated_at TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS decisions (
        id {id},
        delivery_id TEXT NOT NULL,
        job_id {int} NOT NULL,
        run_id {int} NOT NULL,
        repository TEXT NOT NULL,
        project TEXT,
        resource TEXT,
        outcome TEXT NOT NULL,
        rule TEXT,
        message TEXT,
        decided_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS decisions_by_project ON decisions (project, resource)",
    "CREATE TABLE IF NOT EXISTS job_minutes (
        job_id {int} PRIMARY KEY,
        project TEXT NOT NULL,
        resource TEXT NOT NULL,
        day TEXT NOT NULL,
        minutes {int} NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS job_minutes_by_month ON job_minutes (resource, day)",
];

/// The storage, on one of its two backends.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same query code on whichever pool the store holds (the pools have different
/// types, so each arm is compiled for its own backend).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// What a `workflow_run` event says about a run, kept by run id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub run_id: i64,
    pub repository: String,
    pub event: String,
    pub head_repository: Option<String>,
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
}

/// Filters of `GET /api/v1/decisions`.
#[derive(Clone, Debug, Default)]
pub struct DecisionFilter {
    pub project: Option<String>,
    pub resource: Option<String>,
    pub outcome: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Minutes of one project on one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    pub project: String,
    pub resource: String,
    pub minutes: i64,
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
);

impl Store {
    /// Opens `sqlite://path` (created when missing) or `postgres://...`, and migrates it.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| {
                    format!("`{url}` is not a SQLite URL such as sqlite://gatehouse.db")
                })?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // A delivery is acknowledged only once it is on disk: FULL syncs the WAL at
                // every commit, so even a power cut loses nothing that was answered 2xx.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10));
            // Each connection to `sqlite::memory:` would be a database of its own.
            let connections = if url.contains(":memory:") { 1 } else { 4 };
            let pool = SqlitePoolOptions::new()
                .max_connections(connections)
                .connect_with(options)
                .await
                .with_context(|| format!("cannot open the SQLite database `{url}`"))?;
            Store::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                // The URL may hold a password: name only the backend.
                .context("cannot connect to the PostgreSQL database given with --db")?;
            Store::Postgres(pool)
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

    async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Store::Sqlite(pool) => {
                for stmt in SCHEMA {
                    let sql = stmt
                        .replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT")
                        .replace("{int}", "INTEGER")
                        .replace("{bytes}", "BLOB");
                    sqlx::query(&sql).execute(pool).await?;
                }
            }
            Store::Postgres(pool) => {
                // Replicas starting together would race on `CREATE TABLE IF NOT EXISTS`
                // (it is not atomic in PostgreSQL); a transaction-scoped advisory lock makes
                // them take turns.
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(7140531)")
                    .execute(&mut *tx)
                    .await?;
                for stmt in SCHEMA {
                    let sql = stmt
                        .replace("{id}", "BIGSERIAL PRIMARY KEY")
                        .replace("{int}", "BIGINT")
                        .replace("{bytes}", "BYTEA");
                    sqlx::query(&sql).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
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
        const SQL: &str = "INSERT INTO deliveries (delivery_id, event, received_at, body)
            VALUES ($1, $2, $3, $4) ON CONFLICT (delivery_id) DO NOTHING";
        let done = on_pool!(self, pool => sqlx::query(SQL)
            .bind(delivery_id)
            .bind(event)
            .bind(received_at)
            .bind(body)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Remembers a run's context; a later event about the same run replaces it.
    pub async fn upsert_run(&self, run: &RunRecord, now: &str) -> anyhow::Result<()> {
        const SQL: &str = "INSERT INTO runs (run_id, repository, event, head_repository,
                actor_login, actor_id, triggering_actor_login, triggering_actor_id, workflow,
                git_ref, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (run_id) DO UPDATE SET repository = excluded.repository,
                event = excluded.event, head_repository = excluded.head_repository,
                actor_login = excluded.actor_login, actor_id = excluded.actor_id,
                triggering_actor_login = excluded.triggering_actor_login,
                triggering_actor_id = excluded.triggering_actor_id,
                workflow = excluded.workflow, git_ref = excluded.git_ref,
                updated_at = excluded.updated_at";
        let triggering = run.triggering_actor.as_ref();
        on_pool!(self, pool => sqlx::query(SQL)
            .bind(run.run_id)
            .bind(&run.repository)
            .bind(&run.event)
            .bind(run.head_repository.as_deref())
            .bind(&run.actor.0)
            .bind(run.actor.1)
            .bind(triggering.map(|a| a.0.as_str()))
            .bind(triggering.map(|a| a.1))
            .bind(run.workflow.as_deref())
            .bind(run.git_ref.as_deref())
            .bind(now)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    pub async fn get_run(&self, run_id: i64) -> anyhow::Result<Option<RunRecord>> {
        type Row = (
            i64,
            String,
            String,
            Option<String>,
            String,
            i64,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        const SQL: &str = "SELECT run_id, repository, event, head_repository, actor_login,
                actor_id, triggering_actor_login, triggering_actor_id, workflow, git_ref
            FROM runs WHERE run_id = $1";
        let row: Option<Row> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(run_id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|r| RunRecord {
            run_id: r.0,
            repository: r.1,
            event: r.2,
            head_repository: r.3,
            actor: (r.4, r.5),
            triggering_actor: r.6.zip(r.7),
            workflow: r.8,
            git_ref: r.9,
        }))
    }

    pub async fn record_decision(&self, d: &DecisionRecord) -> anyhow::Result<()> {
        const SQL: &str = "INSERT INTO decisions (delivery_id, job_id, run_id, repository,
                project, resource, outcome, rule, message, decided_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        on_pool!(self, pool => sqlx::query(SQL)
            .bind(&d.delivery_id)
            .bind(d.job_id)
            .bind(d.run_id)
            .bind(&d.repository)
            .bind(d.project.as_deref())
            .bind(d.resource.as_deref())
            .bind(&d.outcome)
            .bind(d.rule.as_deref())
            .bind(d.message.as_deref())
            .bind(&d.decided_at)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Newest first.
    pub async fn decisions(&self, f: &DecisionFilter) -> anyhow::Result<Vec<DecisionRecord>> {
        // `CAST($n AS TEXT) IS NULL` lets one statement serve every combination of filters
        // (PostgreSQL needs the cast to know the parameter's type).
        const SQL: &str = "SELECT delivery_id, job_id, run_id, repository, project, resource,
                outcome, rule, message, decided_at
            FROM decisions
            WHERE (CAST($1 AS TEXT) IS NULL OR project = $1)
              AND (CAST($2 AS TEXT) IS NULL OR resource = $2)
              AND (CAST($3 AS TEXT) IS NULL OR outcome = $3)
            ORDER BY id DESC LIMIT $4 OFFSET $5";
        let rows: Vec<DecisionRow> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(f.project.as_deref())
            .bind(f.resource.as_deref())
            .bind(f.outcome.as_deref())
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|r| DecisionRecord {
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
            })
            .collect())
    }

    /// Counts a finished job's minutes; `false` when this job was counted before.
    pub async fn add_job_minutes(
        &self,
        job_id: i64,
        project: &str,
        resource: &str,
        day: &str,
        minutes: i64,
    ) -> anyhow::Result<bool> {
        const SQL: &str = "INSERT INTO job_minutes (job_id, project, resource, day, minutes)
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO NOTHING";
        let done = on_pool!(self, pool => sqlx::query(SQL)
            .bind(job_id)
            .bind(project)
            .bind(resource)
            .bind(day)
            .bind(minutes)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Minutes used on `resource` by `project` and by everyone, on days in `[from, until)`
    /// (`YYYY-MM-DD`, which sorts as text).
    pub async fn minutes_used(
        &self,
        project: &str,
        resource: &str,
        from: &str,
        until: &str,
    ) -> anyhow::Result<(u64, u64)> {
        const SQL: &str = "SELECT
                CAST(COALESCE(SUM(CASE WHEN project = $1 THEN minutes ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(minutes), 0) AS BIGINT)
            FROM job_minutes WHERE resource = $2 AND day >= $3 AND day < $4";
        let (project_minutes, resource_minutes): (i64, i64) = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(project)
            .bind(resource)
            .bind(from)
            .bind(until)
            .fetch_one(pool)
            .await)?;
        Ok((
            project_minutes.max(0) as u64,
            resource_minutes.max(0) as u64,
        ))
    }

    /// Minutes per project and resource on days in `[from, until)`.
    pub async fn usage(&self, from: &str, until: &str) -> anyhow::Result<Vec<UsageRow>> {
        const SQL: &str = "SELECT project, resource, CAST(SUM(minutes) AS BIGINT)
            FROM job_minutes WHERE day >= $1 AND day < $2
            GROUP BY project, resource ORDER BY project, resource";
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(from)
            .bind(until)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(project, resource, minutes)| UsageRow {
                project,
                resource,
                minutes,
            })
            .collect())
    }
}

/// The part of a database URL before `://`: enough to say what was wrong without repeating
/// a password that may follow.
fn scheme_of(url: &str) -> &str {
    url.split_once("://").map_or("(no scheme)", |(s, _)| s)
}
