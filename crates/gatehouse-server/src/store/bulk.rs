//! Large reads: a month's every usage row (`/api/v1/usage`), nine weeks of every project's
//! totals (this week's outliers). On SQLite they go through a connection of their own on a
//! blocking thread, read with rusqlite: sqlx's SQLite driver copies every value of every row
//! (`sqlite3_value_dup`) and hands each row to the async side across threads, and a profile of
//! `/api/v1/usage` at 150,000 rows put most of its time there and in the allocator's lock
//! between the two threads. On PostgreSQL they use the pool like every other read.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

use super::sqlite_writer::numbered;
use super::{Pool, Store};

/// A row of `(text, text, integer)`: what every large read answers.
pub(super) type Row = (String, String, i64);

impl Store {
    /// The rows of `sql`, whose arguments (`$1`, `$2`, ...) are `args`, all text.
    pub(super) async fn bulk_rows(
        &self,
        sql: &'static str,
        args: Vec<String>,
    ) -> anyhow::Result<Vec<Row>> {
        match &self.pool {
            Pool::Sqlite(_) => {
                let path = self
                    .sqlite_path
                    .clone()
                    .context("the SQLite store has no file to read")?;
                tokio::task::spawn_blocking(move || read(&path, sql, &args))
                    .await
                    .context("a read of the SQLite database panicked")?
            }
            Pool::Postgres(pool) => {
                let mut q = sqlx::query_as(sql);
                for a in &args {
                    q = q.bind(a);
                }
                Ok(q.fetch_all(pool).await?)
            }
        }
    }
}

fn read(path: &Path, sql: &str, args: &[String]) -> anyhow::Result<Vec<Row>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| {
        format!(
            "cannot open the SQLite database `{}` to read",
            path.display()
        )
    })?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mut statement = conn.prepare(&numbered(sql))?;
    let rows = statement.query_map(rusqlite::params_from_iter(args), |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
