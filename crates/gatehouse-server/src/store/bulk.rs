//! Large reads: a month's every usage row (`/api/v1/usage`), nine weeks of every project's
//! totals (this week's outliers). On SQLite they go through a read connection of the store's
//! own ([`super::sqlite_reader`]) on a blocking thread, read with rusqlite: sqlx's SQLite driver copies every value of every row
//! (`sqlite3_value_dup`) and hands each row to the async side across threads, and a profile of
//! `/api/v1/usage` at 150,000 rows put most of its time there and in the allocator's lock
//! between the two threads. On PostgreSQL they use the pool like every other read.

use anyhow::Context;

use super::{Param, Pool, Store};

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
                let readers = self
                    .readers
                    .clone()
                    .context("the SQLite store has no readers")?;
                tokio::task::spawn_blocking(move || {
                    let params = args.iter().map(|a| Param::Text(Some(a))).collect();
                    readers.rows((sql, params), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                })
                .await
                .context("a read of the SQLite database panicked")?
                .context("cannot read the SQLite database")
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
