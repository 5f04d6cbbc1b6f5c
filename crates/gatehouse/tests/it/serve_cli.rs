//! `gatehouse serve` on the bundled example starts with no other set-up.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Plain HTTP/1.1 GET over a socket, so the test needs no client library.
fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn serve_starts_on_the_example_with_no_set_up_and_stays_closed_to_unsigned_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "serve",
            example.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(dir.path())
        .env_remove("GATEHOUSE_WEBHOOK_SECRET")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GATEHOUSE_DB")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Some(r) = get(port, "/healthz") {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not answer within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    assert!(
        dir.path().join("gatehouse.db").exists(),
        "the embedded SQLite store is created"
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("GATEHOUSE_WEBHOOK_SECRET is not set"), "{log}");
}

#[test]
fn exit_after_stops_the_guard_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
    let port = free_port();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "serve",
            example.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--exit-after",
            "2s",
        ])
        .current_dir(dir.path())
        .env_remove("GATEHOUSE_DB")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(dir.path().join("gatehouse.db").exists());
    let bad = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", example.to_str().unwrap(), "--exit-after", "soon"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--exit-after `soon`"), "{err}");
    // Catching up: a zero interval is refused (it would spin), and so is an interval without
    // the webhook to catch up on.
    for (args, says) in [
        (
            &["--catch-up-hook", "42", "--catch-up-every", "0s"][..],
            "--catch-up-every must be longer than zero",
        ),
        (
            &["--catch-up-hook", "42", "--catch-up-every", "often"][..],
            "--catch-up-every `often`",
        ),
        (&["--catch-up-every", "5m"][..], "--catch-up-hook"),
    ] {
        let bad = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["serve", example.to_str().unwrap()])
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// The crash test at a small scale (the full one is in docs/BENCHMARKS.md): the real binary,
/// SIGKILLed once while signed deliveries (10% repeated) pour in, then restarted; every send is
/// retried until acknowledged, as GitHub redelivers. Afterwards each acknowledged delivery is
/// stored exactly once and processed, one decision per queued managed job, and the minutes
/// equal those of the acknowledged completed jobs.
#[test]
fn a_guard_killed_midway_loses_nothing_and_counts_nothing_twice() {
    use gatehouse_loadgen::{self as loadgen, ServerProcess, Traffic, free_addr};
    use std::sync::Arc;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("access");
        loadgen::write_repo(&repo).unwrap();
        let github = loadgen::fake_github().await.unwrap().url;
        let db = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
        let log = dir.path().join("server.log");
        let mut server = ServerProcess::start(
            Path::new(env!("CARGO_BIN_EXE_gatehouse")),
            &repo,
            &db,
            &github,
            free_addr().unwrap(),
            &log,
        )
        .await
        .unwrap();
        let traffic = Arc::new(Traffic::new(3000, 10, "kill").unwrap());
        let result = loadgen::run_with_kills(&mut server, traffic.clone(), 16, 1)
            .await
            .unwrap();
        assert_eq!(result.sends, 3000);
        assert!(result.retries > 0, "the kill interrupted nothing");
        // Deliveries stored but not processed when the process died are processed at start.
        server.restart().await.unwrap();
        let counts = loadgen::verify(&db, &traffic, &result.acked)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{e:#}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        assert_eq!(counts.deliveries as usize, traffic.distinct());
        assert!(counts.decisions > 0 && counts.job_minutes > 0, "{counts:?}");
    });
}

/// The mix of issues 17 and 18 at a small scale (the full one is in docs/BENCHMARKS.md): the
/// real binary with concurrency caps, a time limit, a price and a sponsor pool on the resource,
/// each job going in progress between queued and completed (its `in_progress` and completion
/// sent together, so that the guard often sees them out of order), and pull requests of a fork
/// contributor without a role, half of them approved by a maintainer's `/gatehouse run <sha>`
/// comment before their run; SIGKILLed once midway. Afterwards, besides the plain check: every
/// queued managed job decided as its run calls for (approved forks allowed, the others denied
/// `user-not-allowed`, projects without a grant `no-grant`), each approval recorded once and
/// none coming after its run (nothing re-run), the pool's spending exactly the completed jobs'
/// minutes at the price, and no machine or credit held but by jobs still running.
#[test]
fn caps_pools_and_run_approvals_in_the_mix_count_exactly() {
    the_mix_counts_exactly(None);
}

/// The same on PostgreSQL, where a job's claim and its completion written at the same moment
/// each saw nothing of the other before they took turns (296 machines and 14 reservations of
/// about 450 jobs were left held).
#[test]
fn caps_pools_and_run_approvals_in_the_mix_count_exactly_on_postgres() {
    let admin = std::env::var("GATEHOUSE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    the_mix_counts_exactly(Some(&admin));
}

/// The mix against a fresh store: SQLite in a temporary folder, or (`postgres`: the admin URL)
/// a fresh database on that server, dropped afterwards.
fn the_mix_counts_exactly(postgres: Option<&str>) {
    use gatehouse_loadgen::{self as loadgen, Mix, ServerProcess, Traffic, free_addr};
    use std::sync::Arc;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mix = Mix {
            capacity: true,
            approvals: 20,
        };
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("access");
        loadgen::write_repo_for(&repo, mix).unwrap();
        let fake = loadgen::fake_github().await.unwrap();
        let traffic = Arc::new(Traffic::with_mix(3000, 10, "mix", mix).unwrap());
        traffic.prepare(&fake.fake).unwrap();
        let db = match postgres {
            Some(admin) => loadgen::fresh_postgres(admin).await.unwrap(),
            None => format!("sqlite://{}", dir.path().join("gatehouse.db").display()),
        };
        let log = dir.path().join("server.log");
        let mut server = ServerProcess::start(
            Path::new(env!("CARGO_BIN_EXE_gatehouse")),
            &repo,
            &db,
            &fake.url,
            free_addr().unwrap(),
            &log,
        )
        .await
        .unwrap();
        let result = loadgen::run_with_kills(&mut server, traffic.clone(), 16, 1)
            .await
            .unwrap();
        assert_eq!(result.sends, 3000);
        server.restart().await.unwrap();
        let (counts, mixed) = loadgen::verify_mix(&db, &traffic, &result.acked)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{e:#}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        assert_eq!(counts.deliveries as usize, traffic.distinct());
        // Every kind of run was there.
        for said in ["allow", "deny (no-grant)", "deny (user-not-allowed)"] {
            assert!(
                mixed.outcomes.get(said).is_some_and(|n| *n > 0),
                "{mixed:?}"
            );
        }
        assert!(mixed.approvals >= 5, "{mixed:?}");
        assert!(mixed.pool_spent > 0, "{mixed:?}");
        let reruns = fake.fake.state.lock().unwrap().reruns.clone();
        assert!(reruns.is_empty(), "approved after their run: {reruns:?}");
        drop(server);
        if let Some(admin) = postgres {
            let name = db.rsplit('/').next().unwrap();
            let pool = sqlx::PgPool::connect(admin).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&pool)
                .await
                .unwrap();
        }
    });
}

/// The guard judges every job by the clock: a day given to `serve`, on the command line (before
/// or after the subcommand) or through `GATEHOUSE_TODAY`, is refused instead of ignored, and the
/// guard does not start.
#[test]
fn serve_refuses_a_day_to_judge_by() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
    let example = example.to_str().unwrap();
    let cases: [(Vec<&str>, Option<&str>, &str); 3] = [
        (
            vec!["serve", example, "--today", "2026-11-28"],
            None,
            "serve does not take --today",
        ),
        (
            vec!["--today=2026-11-28", "serve", example],
            None,
            "serve does not take --today",
        ),
        (
            vec!["serve", example],
            Some("2026-11-28"),
            "GATEHOUSE_TODAY is set, and serve does not take it",
        ),
    ];
    for (args, env, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.args(&args)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--exit-after",
                "5s",
            ])
            .current_dir(dir.path())
            .env_remove("GATEHOUSE_DB")
            .env_remove("GATEHOUSE_TODAY");
        if let Some(day) = env {
            cmd.env("GATEHOUSE_TODAY", day);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            err.contains("the guard judges every job by the clock"),
            "{args:?}: {err}"
        );
        assert!(err.contains("offline commands"), "{args:?}: {err}");
        assert!(
            !dir.path().join("gatehouse.db").exists(),
            "{args:?}: the guard started"
        );
    }
}
