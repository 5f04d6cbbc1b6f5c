//! Load generator for the live ledger's usage dashboard (docs/BENCHMARKS.md, "gatehouse site").
//!
//! ```sh
//! cargo run --release -p gatehouse-server --example dashboard_load -- [REQUESTS] [CONCURRENCY] [COLD]
//! ```
//!
//! Writes the generated conda-forge-scale repository (2,000 grants over 30 resources) and a
//! SQLite store holding a month of usage for every grant (one job a day for 30 days: 60,000
//! jobs) and 2,000 denied jobs, starts the guard's router on a loopback socket, and times
//! `GET /dashboard` (and the per-resource and per-project usage pages, and the index) from a
//! client over real HTTP: COLD requests (default 5) 10 s apart, so that each reads the
//! figures from the store; then REQUESTS one at a time; then CONCURRENCY at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_core::fixture::{FixtureSpec, generate};
use gatehouse_server::store::{DecisionRecord, Write};
use gatehouse_server::{AppState, Secret, ServerConfig, router};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut times: Vec<Duration>, wall: Duration) {
    times.sort();
    println!(
        "{what:<44} n={:<5} p50={:>7.2?} p95={:>7.2?} p99={:>7.2?} max={:>7.2?} ({:.0} req/s)",
        times.len(),
        percentile(&times, 0.50),
        percentile(&times, 0.95),
        percentile(&times, 0.99),
        times[times.len() - 1],
        times.len() as f64 / wall.as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map_or(Ok(300), |s| s.parse())?;
    let concurrency: usize = args.next().map_or(Ok(8), |s| s.parse())?;
    let cold_samples: usize = args.next().map_or(Ok(5), |s| s.parse())?;
    let _ = rustls::crypto::ring::default_provider().install_default();

    let tmp = tempfile::tempdir()?;
    let repo_dir = tmp.path().join("repo");
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date();
    let files = generate(FixtureSpec {
        seed: 1,
        scale: 1,
        today,
    });
    for (path, text) in &files {
        let p = repo_dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap())?;
        std::fs::write(p, text)?;
    }
    let repo = gatehouse_core::repo::load_dir(&repo_dir)?;
    let grants: Vec<(String, String)> = repo
        .grants
        .iter()
        .flat_map(|f| {
            f.value.grants.iter().map(|g| {
                (
                    f.value.project.value.to_lowercase(),
                    g.resource.value.clone(),
                )
            })
        })
        .collect();

    let url = format!("sqlite://{}", tmp.path().join("guard.db").display());
    let mut config = ServerConfig::new(&repo_dir, url, Secret::new("load"));
    config.watch_interval = None;
    let state: Arc<AppState> = AppState::new(config).await?;

    // A month of usage: every grant ran one job a day for the last 30 days.
    let seeded = Instant::now();
    let mut job_id = 0i64;
    let mut batch = Vec::new();
    for day_back in 0..30i64 {
        let day = today
            .checked_sub(jiff::Span::new().days(day_back))?
            .to_string();
        for (project, resource) in &grants {
            job_id += 1;
            batch.push(Write::Minutes {
                job_id,
                project: project.clone(),
                resource: resource.clone(),
                day: day.clone(),
                minutes: 5 + job_id % 90,
            });
        }
        state.store().commit(std::mem::take(&mut batch)).await?;
    }
    for (i, (project, resource)) in grants.iter().enumerate() {
        batch.push(Write::Decision {
            decision: DecisionRecord {
                delivery_id: format!("deny-{i}"),
                job_id: 1_000_000 + i as i64,
                run_id: i as i64,
                repository: format!("conda-forge/{project}-feedstock"),
                project: Some(project.clone()),
                resource: Some(resource.clone()),
                outcome: "deny".into(),
                rule: Some("event-not-allowed".into()),
                message: Some("pull requests from forks may not use this resource".into()),
                decided_at: format!("{today}T00:00:{:02}Z", i % 60),
                origin: "webhook".into(),
            },
            context: None,
        });
    }
    state.store().commit(batch).await?;
    println!(
        "seeded {job_id} jobs for {} grants and {} denials in {:.1?}",
        grants.len(),
        grants.len(),
        seeded.elapsed()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = router(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();

    let (project, resource) = grants[0].clone();
    // The first request renders the static site once (then it is cached per policy and day).
    let first = Instant::now();
    let body = http.get(format!("{base}/")).send().await?.bytes().await?;
    println!(
        "first request (renders the static site): {:.1?}, index {} bytes",
        first.elapsed(),
        body.len()
    );

    // Cold: the figures are read from the store again once they are 10 s old.
    let mut cold = Vec::new();
    let wall = Instant::now();
    for _ in 0..cold_samples {
        tokio::time::sleep(Duration::from_millis(10_100)).await;
        let t = Instant::now();
        let r = http.get(format!("{base}/dashboard")).send().await?;
        anyhow::ensure!(r.status().is_success());
        r.bytes().await?;
        cold.push(t.elapsed());
    }
    if !cold.is_empty() {
        report(
            "GET /dashboard, figures read from the store",
            cold,
            wall.elapsed(),
        );
    }

    for path in [
        "/dashboard".to_string(),
        format!("/dashboard/resources/{resource}"),
        format!("/dashboard/projects/{project}"),
        "/".to_string(),
    ] {
        let url = format!("{base}{path}");
        let r = http.get(&url).send().await?;
        anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
        let size = r.bytes().await?.len();
        let mut times = Vec::with_capacity(requests);
        let wall = Instant::now();
        for _ in 0..requests {
            let t = Instant::now();
            let r = http.get(&url).send().await?;
            anyhow::ensure!(r.status().is_success());
            r.bytes().await?;
            times.push(t.elapsed());
        }
        report(
            &format!("GET {path} ({size} B), one at a time"),
            times,
            wall.elapsed(),
        );
    }

    let url = format!("{base}/dashboard");
    let wall = Instant::now();
    let per = requests.div_ceil(concurrency);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                let r = http.get(&url).send().await?;
                anyhow::ensure!(r.status().is_success());
                r.bytes().await?;
                times.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(times)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    report(
        &format!("GET /dashboard, {concurrency} at once"),
        all,
        wall.elapsed(),
    );
    Ok(())
}
