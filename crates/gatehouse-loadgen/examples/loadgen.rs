//! Load, crash and replica runs against a real `gatehouse serve` process. The figures in
//! docs/BENCHMARKS.md come from here.
//!
//! ```sh
//! cargo build --release -p gatehouse -p gatehouse-loadgen --example loadgen
//! L=target/release/examples/loadgen G=target/release/gatehouse
//! $L throughput --gatehouse $G --sends 100000 --concurrency 32       # SQLite
//! $L throughput --gatehouse $G --sends 100000 --concurrency 32 --with caps,approvals
//! $L kill-test  --gatehouse $G --sends 200000 --kills 2              # SQLite, SIGKILL twice
//! $L replicas   --gatehouse $G --sends 100000 --db postgres://postgres@127.0.0.1:5432/test
//! $L cancel-latency --gatehouse $G --sends 100000 --concurrency 32  # one denial a second
//! $L admission-latency --gatehouse $G --sends 150000 --rate 5000 --admissions 200
//! $L admission-latency --gatehouse $G --sends 150000 --rate 5000 --admissions 200 \
//!     --db postgres://postgres@127.0.0.1:5432/test                 # the same on PostgreSQL
//! ```
//!
//! `--with caps`, `--with approvals` (`approvals=N`) or both (`throughput`, `kill-test`): the
//! mix of issues 17 and 18 (see the `gatehouse_loadgen` crate): caps, a time limit, a price
//! and a sponsor pool on the resource, each job going in progress between queued and
//! completed; one in `N` runs (500 by default) from a pull request of a fork contributor
//! without a role, and one in `N` more approved by a maintainer's `/gatehouse run <sha>`
//! comment before their run. The store check then also covers decisions by kind of run, the
//! approvals recorded, the pool's spending, and that no machine or credit is held but by jobs
//! still running.
//!
//! `admission-latency`: webhook deliveries paced at `--rate` a second and, beside them,
//! `--admissions` runner gates a second asking `POST /api/v1/admission` about runs the
//! deliveries announced.
//!
//! Each run writes an access repository and a store in a fresh temporary folder (PostgreSQL:
//! a fresh database on the server given), starts a loopback fake of GitHub's REST API, runs
//! the servers, sends the traffic (see the `gatehouse_loadgen` crate) and checks the store.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use anyhow::Context;
use gatehouse_loadgen::{
    self as loadgen, LoadResult, ServerProcess, Targets, Traffic, free_addr, metric_sum,
};

struct Args {
    mode: String,
    gatehouse: PathBuf,
    sends: usize,
    concurrency: usize,
    kills: usize,
    db: Option<String>,
    /// Webhook deliveries a second (`admission-latency`).
    rate: f64,
    /// Admissions a second (`admission-latency`).
    admissions: f64,
    /// What the traffic holds beyond runs and jobs (`--with caps,approvals`).
    mix: loadgen::Mix,
}

fn parse() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .context("usage: loadgen throughput|kill-test|replicas|cancel-latency|admission-latency --gatehouse BIN [--sends N] [--concurrency N] [--kills N] [--db URL] [--rate N] [--admissions N] [--with caps,approvals]")?;
    let mut args = Args {
        mode,
        gatehouse: PathBuf::from("target/release/gatehouse"),
        sends: 100_000,
        concurrency: 32,
        kills: 2,
        db: None,
        rate: 5000.0,
        admissions: 200.0,
        mix: loadgen::Mix::PLAIN,
    };
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--gatehouse" => args.gatehouse = value.into(),
            "--sends" => args.sends = value.parse()?,
            "--concurrency" => args.concurrency = value.parse()?,
            "--kills" => args.kills = value.parse()?,
            "--db" => args.db = Some(value),
            "--rate" => args.rate = value.parse()?,
            "--admissions" => args.admissions = value.parse()?,
            "--with" => args.mix = loadgen::Mix::parse(&value)?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    anyhow::ensure!(
        args.mix == loadgen::Mix::PLAIN || matches!(args.mode.as_str(), "throughput" | "kill-test"),
        "--with is for throughput and kill-test"
    );
    Ok(args)
}

/// Prints a run's throughput and latencies; how many sends took over 50 ms shows stalls
/// that the p99 hides while they stay under 1% of the sends.
fn report(what: &str, r: &LoadResult) {
    let ms = |q: f64| r.quantile(q).as_secs_f64() * 1e3;
    let slow = r.latencies.iter().filter(|l| l.as_millis() > 50).count();
    println!(
        "{what}: {} sends in {:.2} s = {:.0} deliveries/s; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms, {slow} over 50 ms; {} retried attempts",
        r.sends,
        r.elapsed.as_secs_f64(),
        r.per_second(),
        ms(0.5),
        ms(0.99),
        ms(0.999),
        ms(1.0),
        r.retries,
    );
}

/// What the mix left, once verified; with approvals, that every approval came before its run
/// (no denied run had to be re-run) and was answered with a reaction.
fn mix_report(
    mix: &loadgen::Mix,
    mixed: &loadgen::MixCounts,
    result: &LoadResult,
    fake: &loadgen::FakeGitHub,
) -> anyhow::Result<()> {
    println!("verified decisions by outcome: {:?}", mixed.outcomes);
    if mix.approvals > 0 {
        let (reruns, reactions) = {
            let s = fake.fake.state.lock().unwrap_or_else(|e| e.into_inner());
            (s.reruns.len(), s.reactions.len())
        };
        println!(
            "verified run approvals: {} recorded once each, {} reactions, {} denied runs re-run; {} sends waited for their approval",
            mixed.approvals, reactions, reruns, result.waited
        );
        anyhow::ensure!(
            reruns == 0,
            "{reruns} runs were re-run: their approval came after their job"
        );
    }
    if mix.capacity {
        println!(
            "verified pool: {:.2} USD spent = the completed jobs' minutes at 0.01 USD; {} held by running jobs; {} machines held",
            mixed.pool_spent as f64 / 1e6,
            mixed.pool_reserved,
            mixed.holds
        );
    }
    Ok(())
}

fn decide_share(page: &str) {
    let decide = metric_sum(page, "gatehouse_decide_duration_seconds_sum");
    let webhook = metric_sum(page, "gatehouse_webhook_duration_seconds_sum");
    let decided = metric_sum(page, "gatehouse_decide_duration_seconds_count");
    println!(
        "decision cost: {:.3} s deciding of {:.1} s answering webhooks = {:.3}% of request time ({:.1} µs per decision over {decided} decisions)",
        decide,
        webhook,
        100.0 * decide / webhook.max(1e-9),
        1e6 * decide / decided.max(1.0),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse()?;
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("access");
    loadgen::write_repo_for(&repo, args.mix)?;
    let fake = loadgen::fake_github().await?;
    let github = fake.url.clone();
    let log = dir.path().join("server.log");
    let traffic = Traffic::with_mix(args.sends, 10, "load", args.mix)?;
    traffic.prepare(&fake.fake)?;
    // Denials come from their own sender in cancel-latency, one a second.
    let traffic = Arc::new(if args.mode == "cancel-latency" {
        traffic.all_granted()
    } else {
        traffic
    });
    let approvals = format!(
        "; 2 in {} runs of granted projects from a fork contributor without a role, half of them approved by a comment",
        args.mix.approvals
    );
    if args.mix == loadgen::Mix::PLAIN {
        println!(
            "{} sends of {} distinct deliveries (workflow_run, queued, completed; ~10% repeats), {} connections",
            traffic.sends.len(),
            traffic.distinct(),
            args.concurrency
        );
    } else {
        println!(
            "{} sends of {} distinct deliveries (workflow_run, queued, {}completed{}; ~10% repeats), {} connections{}{}",
            traffic.sends.len(),
            traffic.distinct(),
            if args.mix.capacity {
                "in_progress, "
            } else {
                ""
            },
            if args.mix.approvals > 0 {
                ", issue_comment"
            } else {
                ""
            },
            args.concurrency,
            if args.mix.capacity {
                "; caps, time limit, price and sponsor pool on gpu"
            } else {
                ""
            },
            if args.mix.approvals > 0 {
                &approvals
            } else {
                ""
            },
        );
    }
    match args.mode.as_str() {
        "throughput" | "kill-test" => {
            let db = match &args.db {
                Some(url) if url.starts_with("postgres") => loadgen::fresh_postgres(url).await?,
                Some(url) => url.clone(),
                None => format!("sqlite://{}", dir.path().join("gatehouse.db").display()),
            };
            let mut server =
                ServerProcess::start(&args.gatehouse, &repo, &db, &github, free_addr()?, &log)
                    .await?;
            let kills = if args.mode == "kill-test" {
                args.kills
            } else {
                0
            };
            let result =
                loadgen::run_with_kills(&mut server, traffic.clone(), args.concurrency, kills)
                    .await?;
            report(&args.mode, &result);
            if kills == 0 {
                decide_share(&server.metrics().await?);
                if let Some(cpu) = server.cpu_seconds() {
                    println!(
                        "server CPU: {cpu:.1} s for {} sends = {:.0} µs per delivery (the load generator shares the machine)",
                        result.sends,
                        1e6 * cpu / result.sends as f64
                    );
                }
                slow_commits(&log);
            }
            // Restart once more so that anything stored but not processed is processed.
            server.restart().await?;
            let (counts, mixed) = loadgen::verify_mix(&db, &traffic, &result.acked).await?;
            println!(
                "verified after {kills} SIGKILL(s): {} deliveries stored once each, {} decisions, {} minutes = the acknowledged completed jobs' minutes",
                counts.deliveries, counts.decisions, counts.job_minutes
            );
            if args.mix != loadgen::Mix::PLAIN {
                mix_report(&args.mix, &mixed, &result, &fake)?;
            }
        }
        "replicas" => {
            let admin = args
                .db
                .clone()
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
            let db = loadgen::fresh_postgres(&admin).await?;
            let a = ServerProcess::start(&args.gatehouse, &repo, &db, &github, free_addr()?, &log)
                .await?;
            let b = ServerProcess::start(&args.gatehouse, &repo, &db, &github, free_addr()?, &log)
                .await?;
            let targets = Arc::new(Targets {
                bases: vec![a.base(), b.base()],
            });
            let result = loadgen::send_all(
                traffic.clone(),
                targets,
                args.concurrency,
                Arc::new(AtomicUsize::new(0)),
            )
            .await?;
            report("two replicas", &result);
            let (pa, pb) = (a.metrics().await?, b.metrics().await?);
            let processed = |p: &str| {
                metric_sum(
                    p,
                    "gatehouse_deliveries_total{event=\"workflow_run\",outcome=\"processed\"}",
                ) + metric_sum(
                    p,
                    "gatehouse_deliveries_total{event=\"workflow_job\",outcome=\"processed\"}",
                ) + metric_sum(
                    p,
                    "gatehouse_deliveries_total{event=\"workflow_job\",outcome=\"not-processed\"}",
                ) + metric_sum(
                    p,
                    "gatehouse_deliveries_total{event=\"workflow_run\",outcome=\"not-processed\"}",
                ) + metric_sum(
                    p,
                    "gatehouse_deliveries_total{event=\"workflow_job\",outcome=\"waiting\"}",
                )
            };
            let (na, nb) = (processed(&pa), processed(&pb));
            println!(
                "replica A processed {na}, replica B {nb}: {} in all for {} distinct deliveries",
                na + nb,
                traffic.distinct()
            );
            anyhow::ensure!(
                (na + nb) as usize == traffic.distinct(),
                "some delivery was processed twice, or not at all"
            );
            decide_share(&pa);
            let counts = loadgen::verify(&db, &traffic, &result.acked).await?;
            println!(
                "verified: {} deliveries stored once each, {} decisions, {} minutes",
                counts.deliveries, counts.decisions, counts.job_minutes
            );
            drop((a, b));
            let name = db.rsplit('/').next().unwrap_or_default();
            let pool = sqlx::PgPool::connect(&admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&pool)
                .await?;
        }
        "cancel-latency" => {
            let db = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
            let server =
                ServerProcess::start(&args.gatehouse, &repo, &db, &github, free_addr()?, &log)
                    .await?;
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let denials = tokio::spawn(loadgen::send_denials(
                server.base(),
                Duration::from_secs(1),
                stop.clone(),
            ));
            let targets = Arc::new(Targets {
                bases: vec![server.base()],
            });
            let result = loadgen::send_all(
                traffic.clone(),
                targets,
                args.concurrency,
                Arc::new(AtomicUsize::new(0)),
            )
            .await?;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let sent = denials.await.context("the denial sender panicked")??;
            tokio::time::sleep(Duration::from_millis(500)).await;
            report("deliveries", &result);
            let cancels = fake.cancels();
            let mut delays: Vec<Duration> = sent
                .iter()
                .filter_map(|(run, at)| Some(cancels.get(run)?.duration_since(*at)))
                .collect();
            anyhow::ensure!(
                delays.len() == sent.len(),
                "{} of {} denied runs were cancelled",
                delays.len(),
                sent.len()
            );
            delays.sort_unstable();
            let q = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
            println!(
                "denied job's delivery sent -> its cancel request at GitHub: {} denials, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                delays.len(),
                q(0.5).as_secs_f64() * 1e3,
                q(0.99).as_secs_f64() * 1e3,
                q(1.0).as_secs_f64() * 1e3,
            );
        }
        "admission-latency" => {
            // SQLite by default; with `--db postgres://...`, a fresh database on that server.
            let db = match &args.db {
                Some(url) if url.starts_with("postgres") => loadgen::fresh_postgres(url).await?,
                Some(url) => url.clone(),
                None => format!("sqlite://{}", dir.path().join("gatehouse.db").display()),
            };
            let tokens = dir.path().join("gate-tokens");
            std::fs::create_dir_all(&tokens)?;
            std::fs::write(tokens.join("gpu-pool"), loadgen::POOL_TOKEN)?;
            let extra = vec!["--gate-tokens".to_string(), tokens.display().to_string()];
            let server = ServerProcess::start_with(
                &args.gatehouse,
                &repo,
                &db,
                &github,
                free_addr()?,
                &log,
                &extra,
            )
            .await?;
            let progress = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let admissions = tokio::spawn(loadgen::send_admissions(
                server.base(),
                traffic.clone(),
                progress.clone(),
                args.admissions,
                stop.clone(),
            ));
            let targets = Arc::new(Targets {
                bases: vec![server.base()],
            });
            let result = loadgen::send_paced(
                traffic.clone(),
                targets,
                args.concurrency,
                progress,
                Some(args.rate),
            )
            .await?;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let asked = admissions
                .await
                .context("the admission sender panicked")??;
            report("deliveries", &result);
            let mut latencies: Vec<Duration> = asked.iter().map(|(d, _)| *d).collect();
            anyhow::ensure!(!latencies.is_empty(), "no admission was asked");
            latencies.sort_unstable();
            let q = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
            let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
            for (_, o) in &asked {
                *outcomes.entry(o.as_str()).or_default() += 1;
            }
            println!(
                "admissions: {} in {:.1} s ({:.0}/s); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; outcomes {outcomes:?}",
                asked.len(),
                result.elapsed.as_secs_f64(),
                asked.len() as f64 / result.elapsed.as_secs_f64(),
                q(0.5).as_secs_f64() * 1e3,
                q(0.99).as_secs_f64() * 1e3,
                q(1.0).as_secs_f64() * 1e3,
            );
            anyhow::ensure!(
                outcomes.keys().all(|o| *o == "allow" || *o == "deny"),
                "some admissions were not answered: {outcomes:?}"
            );
        }
        other => {
            anyhow::bail!(
                "unknown mode {other}: throughput, kill-test, replicas, cancel-latency or admission-latency"
            )
        }
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// The guard's slow group commits during the run (it logs each at `warn`), for what made
/// answers slow.
fn slow_commits(log: &std::path::Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let slow: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("a slow group commit"))
        .collect();
    println!("slow group commits (50 ms or more): {}", slow.len());
    for line in slow.iter().take(5) {
        println!("  {line}");
    }
}
