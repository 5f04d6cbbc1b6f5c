//! The SQLite reads a delivery makes (a run's context, a month's minutes, the pools'
//! balances), on the calling thread: each takes an idle connection of its own (opened read-only
//! on first need), runs its statement, and gives the connection back.
//!
//! sqlx's SQLite driver hands every statement to a worker thread of its connection and waits
//! for the answer: two thread switches per read, which a profile of the caps mix put at a fifth
//! of the guard's time. A point read through the B-tree takes microseconds, less than those
//! switches, so it runs where it is asked for. In WAL mode a reader never waits for the writer.
//! The large reads of [`super::bulk`] use these connections too, on a blocking thread; the
//! other reads (the dashboards, the pages) stay on sqlx's pool.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub(crate) use rusqlite::Row;
use rusqlite::{Connection, OpenFlags};

use super::Statement;
use super::sqlite_writer::numbered;

/// How many idle connections are kept (one per thread that reads at once, at most).
const IDLE: usize = 8;
/// How many prepared statements each connection keeps: more than the reads here have.
const STATEMENTS: usize = 64;

/// The read connections of one database file.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: &Path) -> Readers {
        Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The rows of `statement`, each read by `row`.
    pub(crate) fn rows<T>(
        &self,
        (sql, params): Statement<'_>,
        row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let conn = self.take()?;
        let rows = conn.prepare_cached(&numbered(sql)).and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(params), row)?
                .collect()
        });
        self.give_back(conn);
        rows
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => open(&self.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE {
            idle.push(conn);
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    Ok(conn)
}
