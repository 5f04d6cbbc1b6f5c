//! The SQLite writer: one OS thread owns the only writing connection and commits, in one
//! transaction, every unit of writes waiting for it (group commit: one disk sync serves many
//! deliveries). Each unit is answered once the transaction holding it is durable.
//!
//! The writer talks to SQLite directly (rusqlite, on the same bundled library sqlx uses)
//! rather than through sqlx's async driver: that driver hands every statement to a worker
//! thread of its own and waits for the answer, two thread switches per statement. Here a
//! batch costs one wake-up of this thread, whatever it holds, so each unit can keep its own
//! savepoint: a unit whose write fails is rolled back alone and the others are committed.
//! Reads never wait for the writer (WAL mode): a delivery's own on the thread that asks
//! ([`super::sqlite_reader`]), the others on sqlx's pool.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::types::{ToSql, ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::needs::{Applied, Need, unmet_beyond, unmet_change};
use super::totals::Totals;
use super::write::{Param, Statement, Write};

/// How many units the writer commits together at most.
pub(crate) const MAX_BATCH: usize = 512;

/// A batch that takes this long (its statements and its commit) is logged: every delivery in
/// it waited as long.
const SLOW_BATCH: Duration = Duration::from_millis(50);

/// How many prepared statements the writer keeps: more than every write, need and total has.
const STATEMENTS: usize = 256;

/// A unit of writes on its way to the writer, and where to send the result.
pub(crate) struct Unit {
    pub writes: Vec<Write>,
    /// Roll the unit back (answering which) when one of these is not met.
    pub needs: Vec<Need>,
    pub reply: oneshot::Sender<Result<Applied, String>>,
}

/// Opens the writer's connection to the database file at `path` (already created and migrated
/// by the store) and starts the writer thread. It ends when every sender of `rx` is dropped.
pub(crate) fn start(path: &Path, rx: mpsc::Receiver<Unit>) -> anyhow::Result<()> {
    let conn = open(path)?;
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || run(conn, rx))?;
    Ok(())
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    pragma(&conn, "journal_mode", "WAL")?;
    // A delivery is acknowledged only once it is on disk: FULL syncs the WAL at every
    // commit, so even a power cut loses nothing that was answered 2xx.
    pragma(&conn, "synchronous", "FULL")?;
    // Each unit's savepoint copies the pages it changes to a statement journal, a temporary
    // file by default: in memory it costs no system call.
    pragma(&conn, "temp_store", "MEMORY")?;
    // Every statement a write, a need or a total runs stays prepared (rusqlite keeps 16 by
    // default, fewer than the writes have: each miss parsed its SQL again, a fifth of this
    // thread's time).
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    // The WAL is copied back into the database by this connection, at SQLite's default of
    // every 1,000 pages. (A checkpointer on a connection of its own was tried: its disk
    // syncs competing with the writer's made the slowest answers 3–4 times slower.)
    Ok(conn)
}

/// `PRAGMA name = value`, whatever rows it answers.
fn pragma(conn: &Connection, name: &str, value: &str) -> rusqlite::Result<()> {
    let mut statement = conn.prepare(&format!("PRAGMA {name} = {value}"))?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

fn run(mut conn: Connection, mut rx: mpsc::Receiver<Unit>) {
    let mut batch: Vec<Unit> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(unit) => batch.push(unit),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        match apply_batch(&mut conn, &batch) {
            Ok((results, committing)) => {
                let took = started.elapsed();
                if took >= SLOW_BATCH {
                    tracing::warn!(
                        units = batch.len(),
                        statements_ms = (took - committing).as_millis(),
                        commit_ms = committing.as_millis(),
                        "a slow group commit: the deliveries in it waited as long (a commit \
                         syncs the WAL to disk, and every 1,000 pages copies it back)"
                    );
                }
                for (unit, result) in batch.drain(..).zip(results) {
                    let _ = unit.reply.send(result);
                }
            }
            Err(e) => {
                let message = format!("cannot commit to the SQLite database: {e}");
                tracing::error!(error = message, "group commit failed");
                for unit in batch.drain(..) {
                    let _ = unit.reply.send(Err(message.clone()));
                }
            }
        }
    }
}

/// Applies a batch in one transaction, each unit under a savepoint of its own: a unit whose
/// write fails, or one of whose needs is not met ([`Need`]), is rolled back alone. The usage
/// totals of the units committed are added once for the whole batch, just before the commit
/// ([`Totals`]). Also says how long the commit took. `Err` when the transaction itself fails
/// (nothing is committed).
fn apply_batch(
    conn: &mut Connection,
    batch: &[Unit],
) -> rusqlite::Result<(Vec<Result<Applied, String>>, Duration)> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(batch.len());
    let mut totals = Totals::default();
    for u in batch {
        // Dropped without `commit`, a savepoint rolls back.
        let unit = tx.savepoint()?;
        let mut counted = Totals::default();
        results.push(match apply_unit(&unit, u, &mut counted) {
            Err(e) => Err(e.to_string()),
            Ok(Err(unmet)) => Ok(Err(unmet)),
            Ok(Ok(rows)) => {
                unit.commit()?;
                totals.merge(counted);
                Ok(Ok(rows))
            }
        });
    }
    for statement in totals.statements() {
        execute(&tx, statement)?;
    }
    let committing = Instant::now();
    tx.commit()?;
    Ok((results, committing.elapsed()))
}

/// Applies a unit's writes and checks its needs: the rows each write changed, or the first
/// need not met (the caller rolls the unit back then).
fn apply_unit(conn: &Connection, u: &Unit, counted: &mut Totals) -> rusqlite::Result<Applied> {
    let mut rows = Vec::with_capacity(u.writes.len());
    for w in &u.writes {
        rows.push(write(conn, w, counted)?);
        if let Some(unmet) = unmet_change(&u.needs, &rows) {
            return Ok(Err(unmet));
        }
    }
    if let Some(unmet) = unmet_beyond(&u.needs, rows.len()) {
        return Ok(Err(unmet));
    }
    for (i, need) in u.needs.iter().enumerate() {
        if let Some((sql, params)) = need.query() {
            let mut statement = conn.prepare_cached(&numbered(sql))?;
            let met: i64 =
                statement.query_row(rusqlite::params_from_iter(params), |row| row.get(0))?;
            if met != 1 {
                return Ok(Err(i));
            }
        }
    }
    Ok(Ok(rows))
}

/// `sql` with the store's `$N` placeholders as SQLite's numbered `?N` (SQLite reads `$1` as
/// a *named* parameter, numbered in order of first appearance).
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Param::Int(Some(v)) => ToSqlOutput::Owned(Value::Integer(v)),
            Param::Blob(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
            Param::Date(v) => ToSqlOutput::Owned(Value::Text(v.to_string())),
            Param::Text(None) | Param::Int(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

fn execute(conn: &Connection, (sql, params): Statement<'_>) -> rusqlite::Result<u64> {
    let mut statement = conn.prepare_cached(&numbered(sql))?;
    Ok(statement.execute(rusqlite::params_from_iter(params))? as u64)
}

/// Applies one write, and adds what it counts to `totals`; how many rows it changed (0 for a
/// duplicate).
fn write(conn: &Connection, w: &Write, totals: &mut Totals) -> rusqlite::Result<u64> {
    let rows = execute(conn, w.statement())?;
    if rows == 1 {
        for next in w.follow_ups() {
            execute(conn, next)?;
        }
        w.count(totals);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered() {
        assert_eq!(
            numbered("UPDATE d SET a = $2, b = $10 WHERE id = $1 AND c = '$'"),
            "UPDATE d SET a = ?2, b = ?10 WHERE id = ?1 AND c = '$'"
        );
    }
}
