//! What the guard's pages, its JSON API, `/queue` and `/metrics` read: decisions, usage by
//! month, week and day, the jobs not finished yet, and the queue.

use std::collections::HashMap;

use serde::Serialize;

use super::{DecisionRecord, DecisionRow, Pool, Store, decision_record};

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

impl From<(String, String, i64)> for UsageRow {
    /// A `(project, resource, minutes)` row as the usage queries select it.
    fn from((project, resource, minutes): (String, String, i64)) -> Self {
        UsageRow {
            project,
            resource,
            minutes,
        }
    }
}

/// Minutes on one resource in one week.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WeekUsage {
    /// The week's Monday, `YYYY-MM-DD`.
    pub week: String,
    pub resource: String,
    pub minutes: i64,
}

/// Managed jobs not finished yet on one resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ActiveJobs {
    pub resource: String,
    pub queued: i64,
    pub in_progress: i64,
}

/// [`Store::decisions_of_project`]'s statement.
const PROJECT_DECISIONS: &str = "SELECT delivery_id, job_id, run_id, repository, project,
        resource, outcome, rule, message, decided_at, COALESCE(origin, 'webhook')
    FROM decisions WHERE project = $1 ORDER BY id DESC LIMIT $2";

/// A row of [`Store::holds_of_project`].
pub type HoldRow = (String, String, i64, Option<i64>, String, String);

impl Store {
    /// How many deliveries are stored but not processed (waiting for a fact, or for a
    /// cancel to go through), and when the oldest of them was received.
    pub async fn pending(&self) -> anyhow::Result<(i64, Option<String>)> {
        const SQL: &str =
            "SELECT COUNT(*), MIN(received_at) FROM deliveries WHERE processed_at IS NULL";
        let row: (i64, Option<String>) =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_one(pool).await)?;
        Ok(row)
    }

    /// Newest first.
    pub async fn decisions(&self, f: &DecisionFilter) -> anyhow::Result<Vec<DecisionRecord>> {
        // `CAST($n AS TEXT) IS NULL` lets one statement serve every combination of filters
        // (PostgreSQL needs the cast to know the parameter's type).
        const SQL: &str = "SELECT delivery_id, job_id, run_id, repository, project, resource,
                outcome, rule, message, decided_at, COALESCE(origin, 'webhook')
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
        Ok(rows.into_iter().map(decision_record).collect())
    }

    /// The `limit` latest decisions about `project`'s jobs (its name lower-cased, as the
    /// store keeps it), newest first: what its page lists. Read from
    /// `decisions_by_project_newest` (project, id) in order, so a project with few decisions
    /// among millions costs as little as one with many.
    pub async fn decisions_of_project(
        &self,
        project: &str,
        limit: i64,
    ) -> anyhow::Result<Vec<DecisionRecord>> {
        let rows: Vec<DecisionRow> = on_pool!(self, pool => sqlx::query_as(PROJECT_DECISIONS)
            .bind(project)
            .bind(limit.max(0))
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(decision_record).collect())
    }

    /// The `limit` most recent denials, newest first: what a dashboard lists as "recently
    /// refused", each with its rule and the message the person saw.
    pub async fn recent_denials(&self, limit: i64) -> anyhow::Result<Vec<DecisionRecord>> {
        self.decisions(&DecisionFilter {
            outcome: Some("deny".into()),
            limit: limit.max(0),
            ..DecisionFilter::default()
        })
        .await
    }

    /// Minutes per project and resource in `month` (`YYYY-MM`), sorted by project and
    /// resource. The figures quotas are judged on.
    pub async fn usage_of_month(&self, month: &str) -> anyhow::Result<Vec<UsageRow>> {
        self.usage_of_month_where(month, None, None).await
    }

    /// Minutes per project and week in weeks starting on days in `[from, until)`
    /// (`YYYY-MM-DD`): `(project, the week's Monday, minutes)`, from the weekly totals.
    pub async fn project_week_minutes(
        &self,
        from: &str,
        until: &str,
    ) -> anyhow::Result<Vec<(String, String, i64)>> {
        // Served by `usage_by_week_by_week` (week, project, minutes) alone.
        const SQL: &str = "SELECT project, week, CAST(SUM(minutes) AS BIGINT) FROM usage_by_week
            WHERE week >= $1 AND week < $2 GROUP BY week, project";
        self.bulk_rows(SQL, vec![from.into(), until.into()]).await
    }

    /// Minutes per resource and month from `from` (`YYYY-MM`) on: `(resource, month,
    /// minutes)`, by resource and month.
    pub async fn monthly_usage(&self, from: &str) -> anyhow::Result<Vec<(String, String, u64)>> {
        // From the daily totals: `day >= 'YYYY-MM'` holds from the month's first day on.
        const SQL: &str = "SELECT resource, SUBSTR(day, 1, 7), CAST(SUM(minutes) AS BIGINT)
            FROM usage_by_day WHERE day >= $1
            GROUP BY resource, SUBSTR(day, 1, 7) ORDER BY resource, SUBSTR(day, 1, 7)";
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(from)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(r, m, n)| (r, m, n.max(0) as u64))
            .collect())
    }

    /// One project's (lower-cased) minutes per resource and month from `from` (`YYYY-MM`)
    /// on: `(resource, month, minutes)`, by resource and month; served by the monthly totals'
    /// key.
    pub async fn project_months(
        &self,
        project: &str,
        from: &str,
    ) -> anyhow::Result<Vec<(String, String, u64)>> {
        const SQL: &str = "SELECT resource, month, minutes FROM usage_by_month
            WHERE project = $1 AND month >= $2 ORDER BY resource, month";
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(project)
            .bind(from)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(r, m, n)| (r, m, n.max(0) as u64))
            .collect())
    }

    /// [`Store::project_months`] of every project at once, keyed by project: one read of the
    /// months from `from` on (served by `usage_by_month_by_project`) for a site that shows
    /// every project's.
    pub async fn months_by_project(
        &self,
        from: &str,
    ) -> anyhow::Result<HashMap<String, Vec<(String, String, u64)>>> {
        const SQL: &str = "SELECT project, resource, month, minutes FROM usage_by_month
            WHERE month >= $1 ORDER BY project, resource, month";
        let rows: Vec<(String, String, String, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(from)
            .fetch_all(pool)
            .await)?;
        let mut by_project: HashMap<String, Vec<(String, String, u64)>> = HashMap::new();
        for (project, resource, month, minutes) in rows {
            by_project
                .entry(project)
                .or_default()
                .push((resource, month, minutes.max(0) as u64));
        }
        Ok(by_project)
    }

    /// [`Store::usage_of_month`] narrowed to one project (lower-cased) or one resource, or
    /// both: each combination has its own statement, so that SQLite's planner sees which
    /// index serves it (`usage_by_month_by_project`, or the table's key for both).
    pub async fn usage_of_month_where(
        &self,
        month: &str,
        project: Option<&str>,
        resource: Option<&str>,
    ) -> anyhow::Result<Vec<UsageRow>> {
        const ALL: &str = "SELECT project, resource, minutes FROM usage_by_month
            WHERE month = $1 ORDER BY project, resource";
        const PROJECT: &str = "SELECT project, resource, minutes FROM usage_by_month
            WHERE project = $2 AND month = $1 ORDER BY resource";
        const RESOURCE: &str = "SELECT project, resource, minutes FROM usage_by_month
            WHERE month = $1 AND resource = $2 ORDER BY project";
        const BOTH: &str = "SELECT project, resource, minutes FROM usage_by_month
            WHERE project = $2 AND resource = $3 AND month = $1";
        let sql = match (project, resource) {
            (None, None) => ALL,
            (Some(_), None) => PROJECT,
            (None, Some(_)) => RESOURCE,
            (Some(_), Some(_)) => BOTH,
        };
        let args = std::iter::once(month)
            .chain(project)
            .chain(resource)
            .map(str::to_string)
            .collect();
        let rows = self.bulk_rows(sql, args).await?;
        Ok(rows.into_iter().map(UsageRow::from).collect())
    }

    /// The `n` projects that used `resource` most in `month` (`YYYY-MM`), most minutes
    /// first (ties by name): a dashboard's heaviest users, read from the month's index
    /// without the rest of the month's rows.
    pub async fn top_projects_of_month(
        &self,
        month: &str,
        resource: &str,
        n: i64,
    ) -> anyhow::Result<Vec<UsageRow>> {
        // Every row at least as large as the n-th largest (ties included), then ordered by
        // name too; no n-th row (fewer projects) means every row.
        const SQL: &str = "SELECT project, resource, minutes FROM usage_by_month
            WHERE month = $1 AND resource = $2 AND minutes >= COALESCE(
                (SELECT minutes FROM usage_by_month WHERE month = $1 AND resource = $2
                 ORDER BY minutes DESC LIMIT 1 OFFSET $3), -1)";
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(month)
            .bind(resource)
            .bind((n - 1).max(0))
            .fetch_all(pool)
            .await)?;
        let mut rows: Vec<UsageRow> = rows.into_iter().map(UsageRow::from).collect();
        rows.sort_by(|a, b| b.minutes.cmp(&a.minutes).then(a.project.cmp(&b.project)));
        rows.truncate(usize::try_from(n).unwrap_or(0));
        Ok(rows)
    }

    /// Minutes per resource in `month` (`YYYY-MM`), every project together.
    pub async fn month_minutes_by_resource(
        &self,
        month: &str,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        // A range of the key's first column (days are `YYYY-MM-DD`), so only the month's
        // rows are read.
        const SQL: &str = "SELECT resource, CAST(SUM(minutes) AS BIGINT) FROM usage_by_day
            WHERE day >= $1 AND day < $2 GROUP BY resource";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(format!("{month}-01"))
            .bind(format!("{month}-32"))
            .fetch_all(pool)
            .await)?)
    }

    /// Minutes per resource per week (weeks start on Monday) of jobs that finished on days in
    /// `[from, until)` (`YYYY-MM-DD`), sorted by week then resource: the data of a usage chart.
    pub async fn weekly_usage(&self, from: &str, until: &str) -> anyhow::Result<Vec<WeekUsage>> {
        self.weekly_usage_where(None, from, until).await
    }

    /// [`Store::weekly_usage`] of one project (the lower-cased project name), from its weekly
    /// totals: weeks starting on days in `[from, until)`. The data of a project's own usage
    /// charts.
    pub async fn weekly_usage_of_project(
        &self,
        project: &str,
        from: &str,
        until: &str,
    ) -> anyhow::Result<Vec<WeekUsage>> {
        self.weekly_usage_where(Some(project), from, until).await
    }

    async fn weekly_usage_where(
        &self,
        project: Option<&str>,
        from: &str,
        until: &str,
    ) -> anyhow::Result<Vec<WeekUsage>> {
        // Every project's from the daily totals; one project's from its weekly totals (each
        // week's Monday stands for its days).
        const ALL: &str = "SELECT day, resource, minutes FROM usage_by_day
            WHERE day >= $1 AND day < $2";
        const PROJECT: &str = "SELECT week, resource, minutes FROM usage_by_week
            WHERE project = $3 AND week >= $1 AND week < $2";
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => match project {
            None => sqlx::query_as(ALL).bind(from).bind(until).fetch_all(pool).await,
            Some(p) => sqlx::query_as(PROJECT)
                .bind(from)
                .bind(until)
                .bind(p)
                .fetch_all(pool)
                .await,
        })?;
        let mut weeks = std::collections::BTreeMap::<(String, String), i64>::new();
        for (day, resource, minutes) in rows {
            let Ok(date) = day.parse::<jiff::civil::Date>() else {
                continue;
            };
            let monday = gatehouse_core::outliers::week_start(date);
            *weeks.entry((monday.to_string(), resource)).or_default() += minutes;
        }
        Ok(weeks
            .into_iter()
            .map(|((week, resource), minutes)| WeekUsage {
                week,
                resource,
                minutes,
            })
            .collect())
    }

    /// Managed jobs queued or running, per resource (resources with none are left out).
    pub async fn active_jobs(&self) -> anyhow::Result<Vec<ActiveJobs>> {
        const SQL: &str = "SELECT resource, status, COUNT(*) FROM jobs
            WHERE status IN ('queued', 'in_progress') GROUP BY resource, status";
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(SQL)
            .fetch_all(pool)
            .await)?;
        let mut by = std::collections::BTreeMap::<String, ActiveJobs>::new();
        for (resource, status, n) in rows {
            let e = by.entry(resource.clone()).or_insert_with(|| ActiveJobs {
                resource,
                ..ActiveJobs::default()
            });
            if status == "queued" {
                e.queued = n;
            } else {
                e.in_progress = n;
            }
        }
        Ok(by.into_values().collect())
    }

    /// Managed jobs queued or in progress: `(resource, status, how many, the earliest
    /// `updated_at`)` (for queued jobs, when the oldest was queued).
    pub async fn queue_jobs(&self) -> anyhow::Result<Vec<(String, String, i64, String)>> {
        const SQL: &str = "SELECT resource, status, COUNT(*), MIN(updated_at) FROM jobs
            WHERE status IN ('queued', 'in_progress') GROUP BY resource, status";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL).fetch_all(pool).await)?)
    }

    /// Claims on capped machines that count at `now`: `(resource, provider, state, how
    /// many)`.
    pub async fn queue_holds(
        &self,
        now: &str,
    ) -> anyhow::Result<Vec<(String, String, String, i64)>> {
        const SQL: &str = "SELECT resource, provider, state, COUNT(*) FROM holds
            WHERE expires > $1 GROUP BY resource, provider, state";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(now)
            .fetch_all(pool)
            .await)?)
    }

    /// The jobs of `project` (lower-cased) holding a machine or waiting for one against a cap
    /// at `now`, oldest first: `(resource, repository, run_id, job_id, state, since)`. The
    /// holds table keeps only such jobs (a job's row goes when it completes), so it is small.
    pub async fn holds_of_project(&self, project: &str, now: &str) -> anyhow::Result<Vec<HoldRow>> {
        const SQL: &str = "SELECT resource, repository, run_id, job_id, state, since FROM holds
            WHERE project = $1 AND expires > $2 ORDER BY since, holder";
        Ok(on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(project)
            .bind(now)
            .fetch_all(pool)
            .await)?)
    }

    /// Every decision about the jobs of run `run_id` of `repository` (lower-cased or not),
    /// oldest first.
    pub async fn decisions_of_run(
        &self,
        repository: &str,
        run_id: i64,
    ) -> anyhow::Result<Vec<DecisionRecord>> {
        const SQL: &str = "SELECT delivery_id, job_id, run_id, repository, project, resource,
                outcome, rule, message, decided_at, COALESCE(origin, 'webhook')
            FROM decisions WHERE run_id = $1 AND LOWER(repository) = LOWER($2)
            ORDER BY id";
        let rows: Vec<DecisionRow> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(run_id)
            .bind(repository)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(decision_record).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project's page reads its latest decisions from the index, in order: no scan of the
    /// table and no sort, however many decisions other projects have.
    #[tokio::test]
    async fn a_projects_decisions_are_read_from_the_index_newest_first() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let Pool::Sqlite(pool) = &store.pool else {
            unreachable!()
        };
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {PROJECT_DECISIONS}"))
                .bind("tinygrad")
                .bind(50)
                .fetch_all(pool)
                .await
                .unwrap();
        let plan: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
        assert_eq!(
            plan,
            ["SEARCH decisions USING INDEX decisions_by_project_newest (project=?)"],
            "{plan:?}"
        );
    }
}
