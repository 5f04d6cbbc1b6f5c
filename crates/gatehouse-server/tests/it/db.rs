//! The databases of the guard's tests: a fresh SQLite file or a fresh PostgreSQL database per
//! test (shared by `serve.rs` and `capacity.rs`, the dashboard's tests in `site_routes.rs`,
//! and `gatehouse`'s tests of `audit --db` and `site --db`).
//!
//! PostgreSQL is expected at 127.0.0.1:5432 (user `postgres`, database `test`), or wherever
//! `GATEHOUSE_TEST_POSTGRES` points; each test creates its own database and drops it after.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database for one test; a PostgreSQL one is dropped when this is.
pub struct Db {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

pub fn admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl Db {
    pub async fn new(backend: Backend) -> Db {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
                Db {
                    url,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                static N: AtomicU32 = AtomicU32::new(0);
                let name = format!(
                    "gatehouse_test_{}_{}_{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed),
                    fastrand_suffix()
                );
                let admin = admin_url();
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {admin} ({e}). The server's storage tests \
                         run on PostgreSQL too: start it (e.g. `service postgresql start`, or \
                         `pg_ctlcluster 15 main start`) with trust auth for user postgres and a \
                         database `test`, or point GATEHOUSE_TEST_POSTGRES at one"
                    )
                });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                let (base, _) = admin
                    .rsplit_once('/')
                    .expect("the admin URL names a database");
                Db {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }
}

fn fastrand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

impl Drop for Db {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside any runtime we may block; a thread with its own does the work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                }
            });
        })
        .join();
    }
}
