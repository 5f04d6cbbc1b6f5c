//! The store's schema, and the migration that brings a database of any earlier version to it
//! at every start (on both backends).

use sqlx::Connection;

use super::{Pool, Store};

/// The schema, one statement per entry. `{id}`, `{int}` and `{bytes}` are the backend's type
/// names; everything else is shared. `CREATE ... IF NOT EXISTS` makes it safe to run at every
/// start.
const SCHEMA: &[&str] = &[
    // `processed_at` stays NULL until the delivery's effects are stored: a delivery stored
    // but not processed (the process was killed in between) is processed at the next start.
    "CREATE TABLE IF NOT EXISTS deliveries (
        delivery_id TEXT PRIMARY KEY,
        event TEXT NOT NULL,
        received_at TEXT NOT NULL,
        body {bytes} NOT NULL,
        processed_at TEXT,
        outcome TEXT
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
        decided_at TEXT NOT NULL,
        context TEXT
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
    // Totals per month kept as jobs are counted, so that deciding a job reads a few rows
    // instead of summing every job of the month.
    "CREATE TABLE IF NOT EXISTS usage_by_month (
        project TEXT NOT NULL,
        resource TEXT NOT NULL,
        month TEXT NOT NULL,
        minutes {int} NOT NULL,
        PRIMARY KEY (project, resource, month)
    )",
    // Totals per resource and day, and per project, resource and week (its Monday), kept as
    // jobs are counted: the dashboard's charts and months, a project's chart and this week's
    // outliers read these few rows instead of summing months of jobs.
    "CREATE TABLE IF NOT EXISTS usage_by_day (
        day TEXT NOT NULL,
        resource TEXT NOT NULL,
        minutes {int} NOT NULL,
        PRIMARY KEY (day, resource)
    )",
    "CREATE TABLE IF NOT EXISTS usage_by_week (
        project TEXT NOT NULL,
        resource TEXT NOT NULL,
        week TEXT NOT NULL,
        minutes {int} NOT NULL,
        PRIMARY KEY (project, resource, week)
    )",
    // This week's outliers read every project's weeks.
    "CREATE INDEX IF NOT EXISTS usage_by_week_by_week ON usage_by_week (week, project, minutes)",
    // Managed jobs and how far they got (queued, in_progress, completed): concurrency per
    // resource is the count of those not completed.
    "CREATE TABLE IF NOT EXISTS jobs (
        job_id {int} PRIMARY KEY,
        project TEXT,
        resource TEXT NOT NULL,
        status TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, resource)",
    // Jobs that hold a machine of a capped resource, or wait in a gate for one: the counts
    // behind the concurrency caps ([`crate::caps`]). One row per job, keyed by what both the
    // webhook and the gate know of it: `<run id>:<attempt>:<runner>`. `state`: `admitted`
    // (counts), `over` (went in progress beyond a cap: counts, and is cancelled or recorded),
    // `waiting` (in progress on a gated runner whose gate has not admitted it: does not
    // count). A row is removed when its job completes, and stops counting at `expires`.
    "CREATE TABLE IF NOT EXISTS holds (
        holder TEXT PRIMARY KEY,
        resource TEXT NOT NULL,
        provider TEXT NOT NULL,
        project TEXT,
        repository TEXT NOT NULL,
        run_id {int} NOT NULL,
        job_id {int},
        state TEXT NOT NULL,
        since TEXT NOT NULL,
        expires TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS holds_by_resource ON holds (resource, project)",
    "CREATE INDEX IF NOT EXISTS holds_by_provider ON holds (provider)",
    "CREATE INDEX IF NOT EXISTS holds_by_expiry ON holds (expires)",
    // A run's context per attempt: a re-run is a new attempt with its own triggering actor,
    // and an older attempt's events never overwrite a newer one's. (`runs`, keyed by run id
    // alone, is read only to migrate.)
    "CREATE TABLE IF NOT EXISTS run_attempts (
        run_id {int} NOT NULL,
        run_attempt {int} NOT NULL,
        repository TEXT NOT NULL,
        event TEXT NOT NULL,
        head_repository TEXT,
        head_owner_login TEXT,
        head_owner_id {int},
        head_sha TEXT,
        actor_login TEXT NOT NULL,
        actor_id {int} NOT NULL,
        triggering_actor_login TEXT,
        triggering_actor_id {int},
        workflow TEXT,
        git_ref TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (run_id, run_attempt)
    )",
    // Who holds which role on each granted project's repository (the guard's role facts):
    // the repository's whole collaborator list as GitHub last gave it (`people`, JSON), when
    // that fetch started, and when something (a webhook) made it stale. Fresh when
    // `fetched_at` is after `invalidated_at` and within the time to live. `changed_at` lets
    // every replica read what another changed.
    "CREATE TABLE IF NOT EXISTS role_facts (
        repository TEXT PRIMARY KEY,
        people TEXT,
        etag TEXT,
        fetched_at TEXT,
        invalidated_at TEXT,
        changed_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS role_facts_by_change ON role_facts (changed_at)",
    // Who is in each team a grant names (the guard's team facts, [`crate::team_facts`]), kept
    // like the role facts: the member list (`members`, JSON), when its fetch started, when a
    // webhook made it stale, and `changed_at` for the other replicas.
    "CREATE TABLE IF NOT EXISTS team_facts (
        team TEXT PRIMARY KEY,
        members TEXT,
        fetched_at TEXT,
        invalidated_at TEXT,
        changed_at TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS team_facts_by_change ON team_facts (changed_at)",
    // Run approvals (`/gatehouse run <sha>`, [`crate::run_approvals`]): one row per approving
    // comment or review (`source`: `comment:<id>` or `review:<id>`), the runs that used it
    // (`by_guard`: re-run by the guard after the approval, not counted against `runs`), and
    // the guard's one reply per pull request.
    "CREATE TABLE IF NOT EXISTS run_approvals (
        id {id},
        source TEXT NOT NULL,
        repository TEXT NOT NULL,
        pull_number {int} NOT NULL,
        head_sha TEXT NOT NULL,
        head_repository TEXT NOT NULL,
        resources TEXT NOT NULL,
        approver_login TEXT NOT NULL,
        approver_id {int} NOT NULL,
        approved_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        runs {int} NOT NULL
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS run_approvals_by_source ON run_approvals (source)",
    "CREATE INDEX IF NOT EXISTS run_approvals_by_commit ON run_approvals (head_sha)",
    "CREATE TABLE IF NOT EXISTS run_approval_runs (
        approval_id {int} NOT NULL,
        run_id {int} NOT NULL,
        run_attempt {int} NOT NULL,
        by_guard {int} NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (approval_id, run_id, run_attempt)
    )",
    "CREATE INDEX IF NOT EXISTS run_approval_runs_by_run ON run_approval_runs (run_id)",
    // The jobs a run approval let run: one row per job whose decision used it (the decision
    // records the approval it stood on), for the pages, the API, history and audit.
    "CREATE TABLE IF NOT EXISTS run_approval_jobs (
        approval_id {int} NOT NULL,
        job_id {int} NOT NULL,
        run_id {int} NOT NULL,
        run_attempt {int} NOT NULL,
        delivery_id TEXT NOT NULL,
        decided_at TEXT NOT NULL,
        PRIMARY KEY (approval_id, job_id)
    )",
    "CREATE INDEX IF NOT EXISTS run_approval_jobs_by_job ON run_approval_jobs (job_id)",
    "CREATE TABLE IF NOT EXISTS run_approval_replies (
        repository TEXT NOT NULL,
        pull_number {int} NOT NULL,
        comment_id {int} NOT NULL,
        PRIMARY KEY (repository, pull_number)
    )",
    // Jobs running on a resource with a time limit (`max_job_minutes`): the guard cancels the
    // run of one still running at `deadline` ([`crate::time_limits`]). A replica takes a due
    // timer (`lease`: until then no other replica acts on it) before it calls GitHub, and
    // marks it `fired_at` once it acted; a lease that ends unfired (a crash, an error) lets
    // the next replica try. A row is removed when its job completes first.
    "CREATE TABLE IF NOT EXISTS job_timers (
        job_id {int} PRIMARY KEY,
        run_id {int} NOT NULL,
        run_attempt {int} NOT NULL,
        repository TEXT NOT NULL,
        project TEXT,
        resource TEXT NOT NULL,
        job_name TEXT,
        head_sha TEXT,
        started TEXT NOT NULL,
        deadline TEXT NOT NULL,
        lease TEXT,
        fired_at TEXT
    )",
    "CREATE INDEX IF NOT EXISTS job_timers_by_deadline ON job_timers (deadline)",
    // Sponsor credit pools ([`crate::credit`], `store/credit.rs`). What each running job of a
    // funded resource holds of its pool (its expected cost, in the pool's units), keyed like
    // `holds`; removed when the job completes, not counted after `expires`.
    "CREATE TABLE IF NOT EXISTS pool_reservations (
        holder TEXT PRIMARY KEY,
        pool TEXT NOT NULL,
        job_id {int},
        project TEXT,
        resource TEXT NOT NULL,
        units {int} NOT NULL,
        per_minute {int} NOT NULL,
        since TEXT NOT NULL,
        expires TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS pool_reservations_by_pool ON pool_reservations (pool, expires)",
    // What each completed job cost its pool, once per job.
    "CREATE TABLE IF NOT EXISTS pool_spend (
        job_id {int} PRIMARY KEY,
        pool TEXT NOT NULL,
        project TEXT,
        resource TEXT NOT NULL,
        day TEXT NOT NULL,
        units {int} NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS pool_spend_by_pool ON pool_spend (pool, day)",
    // Each pool's spending so far, in all, per day and per project (sums of `pool_spend`,
    // kept with it, so that a reservation and the pool's page read a few rows, not every job).
    "CREATE TABLE IF NOT EXISTS pool_totals (
        pool TEXT PRIMARY KEY,
        spent {int} NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS pool_days (
        pool TEXT NOT NULL,
        day TEXT NOT NULL,
        spent {int} NOT NULL,
        PRIMARY KEY (pool, day)
    )",
    "CREATE TABLE IF NOT EXISTS pool_projects (
        pool TEXT NOT NULL,
        project TEXT NOT NULL,
        spent {int} NOT NULL,
        PRIMARY KEY (pool, project)
    )",
    // Alert thresholds reached: a replica takes one (`lease`) before it calls GitHub, and
    // marks it `done_at` once it opened or edited the pool's issue (`issue`).
    "CREATE TABLE IF NOT EXISTS pool_alerts (
        pool TEXT NOT NULL,
        threshold {int} NOT NULL,
        lease TEXT,
        done_at TEXT,
        issue {int},
        PRIMARY KEY (pool, threshold)
    )",
];

/// Run after [`SCHEMA`] and after the columns added since the first schema exist.
/// `{monday_of_day}` is the backend's expression of the Monday of the week of `day`.
const SCHEMA_LATE: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS deliveries_unprocessed ON deliveries (received_at)
        WHERE processed_at IS NULL",
    // One decision per delivery: a delivery processed again (after a crash, or by a second
    // replica) records nothing new.
    "CREATE UNIQUE INDEX IF NOT EXISTS decisions_by_delivery ON decisions (delivery_id)",
    // An admission is matched with its job's webhook decision by job id.
    "CREATE INDEX IF NOT EXISTS decisions_by_job ON decisions (job_id)",
    // A run approval finds the denied runs of its commit.
    "CREATE INDEX IF NOT EXISTS run_attempts_by_head ON run_attempts (head_sha)",
    // `gatehouse why` reads a run's decisions.
    "CREATE INDEX IF NOT EXISTS decisions_by_run ON decisions (run_id)",
    // A project's page reads its latest decisions: newest first from the index, without
    // reading (or sorting) the project's older ones or the other projects'.
    "CREATE INDEX IF NOT EXISTS decisions_by_project_newest ON decisions (project, id)",
    // A resource's heaviest users of one month, without reading the other months.
    "CREATE INDEX IF NOT EXISTS usage_by_month_by_month ON usage_by_month (month, resource, minutes)",
    // A month's every row in the order `/api/v1/usage` answers them (project, resource), read
    // from the index alone: no sort, no lookup of the table (a fifth of the time of either).
    // Also one project's month.
    "CREATE INDEX IF NOT EXISTS usage_by_month_by_project ON usage_by_month
        (month, project, resource, minutes)",
    // Usage charts read job minutes by day range.
    "CREATE INDEX IF NOT EXISTS job_minutes_by_day ON job_minutes (day, resource)",
    // A database from before `usage_by_month` existed: total what was counted.
    "INSERT INTO usage_by_month (project, resource, month, minutes)
        SELECT project, resource, SUBSTR(day, 1, 7), SUM(minutes) FROM job_minutes
        WHERE NOT EXISTS (SELECT 1 FROM usage_by_month)
        GROUP BY project, resource, SUBSTR(day, 1, 7)",
    // A database from before the daily and weekly totals existed: total what was counted.
    "INSERT INTO usage_by_day (day, resource, minutes)
        SELECT day, resource, SUM(minutes) FROM job_minutes
        WHERE NOT EXISTS (SELECT 1 FROM usage_by_day)
        GROUP BY day, resource",
    "INSERT INTO usage_by_week (project, resource, week, minutes)
        SELECT project, resource, {monday_of_day}, SUM(minutes) FROM job_minutes
        WHERE NOT EXISTS (SELECT 1 FROM usage_by_week)
        GROUP BY project, resource, {monday_of_day}",
    // A database from before runs were kept per attempt: what it knew was the first attempt.
    "INSERT INTO run_attempts (run_id, run_attempt, repository, event, head_repository,
            actor_login, actor_id, triggering_actor_login, triggering_actor_id, workflow,
            git_ref, updated_at)
        SELECT run_id, 1, repository, event, head_repository, actor_login, actor_id,
            triggering_actor_login, triggering_actor_id, workflow, git_ref, updated_at
        FROM runs WHERE NOT EXISTS (SELECT 1 FROM run_attempts)",
];

/// The Monday of the week of `day` (`YYYY-MM-DD`), as `YYYY-MM-DD`: `%w` counts from Sunday
/// (0), so Monday is `(%w + 6) % 7` days back.
const SQLITE_MONDAY_OF_DAY: &str =
    "date(day, '-' || ((CAST(strftime('%w', day) AS INTEGER) + 6) % 7) || ' days')";
/// The same for PostgreSQL: ISO weeks start on Monday.
const POSTGRES_MONDAY_OF_DAY: &str = "to_char(date_trunc('week', CAST(day AS DATE)), 'YYYY-MM-DD')";

/// Columns added after the first schema: (table, column, type, what to fill old rows with).
const ADDED_COLUMNS: &[(&str, &str, &str, Option<&str>)] = &[
    // Deliveries stored before this column existed were processed when they arrived.
    (
        "deliveries",
        "processed_at",
        "TEXT",
        Some("UPDATE deliveries SET processed_at = received_at"),
    ),
    ("deliveries", "outcome", "TEXT", None),
    ("decisions", "context", "TEXT", None),
    // For `bots: trusted`: whether a run's push is to the default branch.
    ("run_attempts", "default_branch", "TEXT", None),
    // Decisions made before admissions existed were the webhook path's.
    (
        "decisions",
        "origin",
        "TEXT",
        Some("UPDATE decisions SET origin = 'webhook'"),
    ),
];

impl Store {
    pub(super) async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                for stmt in SCHEMA {
                    let sql = stmt
                        .replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT")
                        .replace("{int}", "INTEGER")
                        .replace("{bytes}", "BLOB");
                    sqlx::query(&sql).execute(&mut *conn).await?;
                }
                for (table, column, ty, fill) in ADDED_COLUMNS {
                    let (n,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM pragma_table_info($1) WHERE name = $2",
                    )
                    .bind(table)
                    .bind(column)
                    .fetch_one(&mut *conn)
                    .await?;
                    if n == 0 {
                        let mut tx = conn.begin().await?;
                        sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))
                            .execute(&mut *tx)
                            .await?;
                        if let Some(fill) = fill {
                            sqlx::query(fill).execute(&mut *tx).await?;
                        }
                        tx.commit().await?;
                    }
                }
                for stmt in SCHEMA_LATE {
                    let sql = stmt.replace("{monday_of_day}", SQLITE_MONDAY_OF_DAY);
                    sqlx::query(&sql).execute(&mut *conn).await?;
                }
            }
            Pool::Postgres(pool) => {
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
                for (table, column, ty, fill) in ADDED_COLUMNS {
                    let (n,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM information_schema.columns
                         WHERE table_schema = current_schema() AND table_name = $1
                           AND column_name = $2",
                    )
                    .bind(table)
                    .bind(column)
                    .fetch_one(&mut *tx)
                    .await?;
                    if n == 0 {
                        sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))
                            .execute(&mut *tx)
                            .await?;
                        if let Some(fill) = fill {
                            sqlx::query(fill).execute(&mut *tx).await?;
                        }
                    }
                }
                for stmt in SCHEMA_LATE {
                    let sql = stmt.replace("{monday_of_day}", POSTGRES_MONDAY_OF_DAY);
                    sqlx::query(&sql).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }
}
