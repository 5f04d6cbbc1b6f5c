//! The guard's pages and API answers at conda-forge's scale: 25,000 projects and 2 million
//! completed jobs over 12 months in the store, the generated 30-resource access repository
//! (`gatehouse gen-fixture`'s), a real `gatehouse serve` process, and every page and answer
//! that reads usage, cost, the queue, decisions or sponsor pools timed from a client. The figures in
//! docs/BENCHMARKS.md ("Pages and API at conda-forge scale") come from here.
//!
//! ```sh
//! cargo build --release -p gatehouse -p gatehouse-loadgen --example pages
//! target/release/examples/pages --gatehouse target/release/gatehouse               # SQLite
//! target/release/examples/pages --gatehouse target/release/gatehouse \
//!     --db postgres://postgres@127.0.0.1:5432/test                                  # PostgreSQL
//! ```
//!
//! `--settle` seconds (10) after the guard is ready, each answer is asked once ("first") and
//! then `--repeat` times in a row; the first, the median and the slowest are printed, with the
//! answer's size. The guard reads the dashboard's figures ahead at start, then answers them
//! while reading them again every 10 s; `--settle 0` measures a reader arriving at once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use gatehouse_core::fixture::{FixtureSpec, generate};
use gatehouse_loadgen::{self as loadgen, ServerProcess, free_addr};

const PROJECTS: usize = 25_000;
const JOBS: usize = 2_000_000;
/// Rows per INSERT statement (6 values each: within both databases' parameter limits).
const BATCH: usize = 1_000;

struct Args {
    gatehouse: PathBuf,
    db: Option<String>,
    repeat: usize,
    jobs: usize,
    /// Seconds between the guard's start and the first request.
    settle: u64,
}

fn parse() -> anyhow::Result<Args> {
    let mut args = Args {
        gatehouse: PathBuf::from("target/release/gatehouse"),
        db: None,
        repeat: 30,
        jobs: JOBS,
        settle: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--gatehouse" => args.gatehouse = value()?.into(),
            "--db" => args.db = Some(value()?),
            "--repeat" => args.repeat = value()?.parse()?,
            "--jobs" => args.jobs = value()?.parse()?,
            "--settle" => args.settle = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

/// Fills the store: `jobs` completed jobs spread over the 12 months before `today` (minutes
/// per job and their monthly totals, as the guard counts them), 100,000 decisions, and 3,000
/// jobs queued or in progress.
async fn fill(
    db: &str,
    projects: &[String],
    resources: &[String],
    jobs: usize,
    today: jiff::civil::Date,
) -> anyhow::Result<()> {
    // The guard's own schema first.
    drop(gatehouse_server::Store::connect(db).await?);
    let days: Vec<String> = (0..365)
        .filter_map(|d| today.checked_sub(jiff::Span::new().days(d)).ok())
        .map(|d| d.to_string())
        .collect();
    let minutes_rows = minutes_rows_again(projects, resources, &days, jobs);
    let decided = |i: usize| format!("{}T12:00:00Z", days[i % days.len()]);
    let now = jiff::Timestamp::now().to_string();
    macro_rules! insert_all {
        ($pool:expr) => {{
            let pool = $pool;
            let mut rows = minutes_rows.peekable();
            while rows.peek().is_some() {
                let chunk: Vec<_> = rows.by_ref().take(BATCH).collect();
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO job_minutes (job_id, project, resource, day, minutes) ",
                );
                q.push_values(chunk, |mut b, (id, p, r, d, m)| {
                    b.push_bind(id)
                        .push_bind(p)
                        .push_bind(r)
                        .push_bind(d)
                        .push_bind(m);
                });
                q.build().execute(&pool).await?;
            }
            sqlx::query(
                "INSERT INTO usage_by_month (project, resource, month, minutes)
                 SELECT project, resource, SUBSTR(day, 1, 7), SUM(minutes) FROM job_minutes
                 GROUP BY project, resource, SUBSTR(day, 1, 7)",
            )
            .execute(&pool)
            .await?;
            for start in (0..100_000).step_by(BATCH) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO decisions (delivery_id, job_id, run_id, repository, project,
                        resource, outcome, rule, message, decided_at, origin) ",
                );
                q.push_values(start..start + BATCH, |mut b, i| {
                    let project = &projects[(i * 7919) % projects.len()];
                    let deny = i % 10 == 0;
                    b.push_bind(format!("bench-{i}"))
                        .push_bind(i as i64)
                        .push_bind(10_000_000 + (i / 4) as i64)
                        .push_bind(format!("conda-forge/{project}-feedstock"))
                        .push_bind(project.clone())
                        .push_bind(resources[i % resources.len()].clone())
                        .push_bind(if deny { "deny" } else { "allow" })
                        .push_bind(deny.then_some("user-not-allowed"))
                        .push_bind(deny.then_some("someone without a role triggered the job"))
                        .push_bind(decided(i))
                        .push_bind("webhook");
                });
                q.build().execute(&pool).await?;
            }
            // Two sponsor pools pay for the first two resources' jobs (minutes): each job
            // costs its pool once, with the totals per pool, day and project kept beside.
            let mut spend = minutes_rows_again(projects, resources, &days, jobs)
                .filter(|(_, _, r, _, _)| *r == resources[0] || *r == resources[1])
                .peekable();
            while spend.peek().is_some() {
                let chunk: Vec<_> = spend.by_ref().take(BATCH).collect();
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO pool_spend (job_id, pool, project, resource, day, units) ",
                );
                q.push_values(chunk, |mut b, (id, p, r, d, m)| {
                    b.push_bind(id)
                        .push_bind(pool_of(r, resources))
                        .push_bind(p)
                        .push_bind(r)
                        .push_bind(d)
                        .push_bind(m);
                });
                q.build().execute(&pool).await?;
            }
            for sql in [
                "INSERT INTO pool_totals (pool, spent) SELECT pool, SUM(units) FROM pool_spend GROUP BY pool",
                "INSERT INTO pool_days (pool, day, spent) SELECT pool, day, SUM(units) FROM pool_spend GROUP BY pool, day",
                "INSERT INTO pool_projects (pool, project, spent) SELECT pool, project, SUM(units) FROM pool_spend GROUP BY pool, project",
            ] {
                sqlx::query(sql).execute(&pool).await?;
            }
            for start in (0..3_000).step_by(BATCH) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO jobs (job_id, project, resource, status, updated_at) ",
                );
                q.push_values(start..start + BATCH, |mut b, i| {
                    b.push_bind(50_000_000 + i as i64)
                        .push_bind(projects[i % projects.len()].clone())
                        .push_bind(resources[i % resources.len()].clone())
                        .push_bind(if i % 3 == 0 { "in_progress" } else { "queued" })
                        .push_bind(now.clone());
                });
                q.build().execute(&pool).await?;
            }
            pool.close().await;
        }};
    }
    if db.starts_with("postgres") {
        insert_all!(sqlx::PgPool::connect(db).await?);
    } else {
        insert_all!(sqlx::SqlitePool::connect(db).await?);
    }
    // The guard's start totals the jobs per day and week (a database from before those
    // totals existed); do it here, so that PostgreSQL's statistics and visibility map can be
    // brought up to date after it, as autovacuum does in a database that has run for a while
    // (a table filled a minute ago and never vacuumed is read through its heap).
    drop(gatehouse_server::Store::connect(db).await?);
    if db.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(db).await?;
        sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
        pool.close().await;
    }
    Ok(())
}

/// The completed jobs: (job id, project, resource, day, minutes).
fn minutes_rows_again<'a>(
    projects: &'a [String],
    resources: &'a [String],
    days: &'a [String],
    jobs: usize,
) -> impl Iterator<Item = (i64, &'a str, &'a str, &'a str, i64)> + 'a {
    (0..jobs).map(move |i| {
        (
            i as i64,
            projects[(i * 7919) % projects.len()].as_str(),
            resources[i % resources.len()].as_str(),
            days[(i * 31) % days.len()].as_str(),
            1 + (i % 180) as i64,
        )
    })
}

/// The pool that pays for `resource`'s jobs (the first two resources have one each).
fn pool_of(resource: &str, resources: &[String]) -> &'static str {
    if resource == resources[0] {
        "sponsor-a"
    } else {
        "sponsor-b"
    }
}

/// The pools' files: a sponsor's minutes for each of the first two resources, over the year.
fn pool_files(resources: &[String], today: jiff::civil::Date) -> Vec<(String, String)> {
    let start = today
        .checked_sub(jiff::Span::new().days(364))
        .unwrap_or(today);
    let end = today
        .checked_add(jiff::Span::new().days(90))
        .unwrap_or(today);
    ["sponsor-a", "sponsor-b"]
        .iter()
        .zip(resources)
        .map(|(name, resource)| {
            (
                format!("pools/{name}.yml"),
                format!(
                    "sponsor: {name}\nminutes: 10000000\nstart: {start}\nend: {end}\nresources: [{resource}]\n"
                ),
            )
        })
        .collect()
}

/// Asks `path` once, then `repeat` times: (first, median, slowest, bytes).
async fn time(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    repeat: usize,
) -> anyhow::Result<(Duration, Duration, Duration, usize)> {
    let ask = || async {
        let started = Instant::now();
        let resp = http.get(format!("{base}{path}")).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        anyhow::ensure!(status.is_success(), "{path} answered {status}");
        anyhow::Ok((started.elapsed(), body.len()))
    };
    let (first, bytes) = ask().await?;
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        times.push(ask().await?.0);
    }
    times.sort();
    Ok((
        first,
        times[times.len() / 2],
        *times.last().unwrap_or(&first),
        bytes,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse()?;
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("access");
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date();
    for (path, text) in generate(FixtureSpec {
        seed: 42,
        scale: 1,
        today,
    }) {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().context("a file in a folder")?)?;
        std::fs::write(path, text)?;
    }
    let loaded = gatehouse_core::repo::load_dir(&repo)?;
    let resources: Vec<String> = loaded
        .resources
        .iter()
        .map(|r| r.value.name.value.clone())
        .collect();
    for (path, text) in pool_files(&resources, today) {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().context("a file in a folder")?)?;
        std::fs::write(path, text)?;
    }
    let loaded = gatehouse_core::repo::load_dir(&repo)?;
    anyhow::ensure!(
        gatehouse_core::pools::terms(&loaded).len() == 2,
        "the two sponsor pools read"
    );
    // The ledger's projects first (their pages exist), then more to 25,000.
    let mut projects: Vec<String> = loaded
        .grants
        .iter()
        .map(|g| g.value.project.value.to_lowercase())
        .collect();
    projects.sort();
    projects.dedup();
    let ledger_projects = projects.len();
    projects.extend((ledger_projects..PROJECTS).map(|i| format!("bench-project-{i}")));

    let db = match &args.db {
        Some(url) if url.starts_with("postgres") => loadgen::fresh_postgres(url).await?,
        Some(url) => url.clone(),
        None => format!("sqlite://{}", dir.path().join("gatehouse.db").display()),
    };
    let backend = if db.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let started = Instant::now();
    fill(&db, &projects, &resources, args.jobs, today).await?;
    println!(
        "{backend}: {} jobs of {} projects on {} resources over 12 months (those of 2 resources paid by 2 sponsor pools), 100,000 decisions, 3,000 active jobs: filled in {:.1} s",
        args.jobs,
        projects.len(),
        resources.len(),
        started.elapsed().as_secs_f64()
    );
    let fake = loadgen::fake_github().await?;
    let log = dir.path().join("server.log");
    let server =
        ServerProcess::start(&args.gatehouse, &repo, &db, &fake.url, free_addr()?, &log).await?;
    let base = server.base();
    let http = loadgen::http_client();
    // The guard reads the dashboard's figures ahead at start; give it the time a real start
    // has before its first reader (`--settle 0` measures a reader arriving at once).
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let last_month = today
        .first_of_month()
        .yesterday()
        .unwrap_or(today)
        .strftime("%Y-%m")
        .to_string();
    let project = &projects[0];
    // The static site first: the guard renders it on first use (and after each reload or
    // midnight), which the other pages then share.
    let paths = [
        "/".to_string(),
        "/dashboard".to_string(),
        "/dashboard.json".to_string(),
        format!("/dashboard/resources/{}", resources[0]),
        format!("/dashboard/projects/{project}"),
        "/queue".to_string(),
        "/queue.json".to_string(),
        "/api/v1/usage".to_string(),
        format!("/api/v1/usage?month={last_month}"),
        "/api/v1/decisions?limit=100".to_string(),
        format!("/api/v1/runs/10000000?repository=conda-forge/{project}-feedstock"),
        format!("/api/v1/usage?project={project}"),
        format!("/api/v1/usage?resource={}", resources[0]),
        "/v1/costs.json".to_string(),
        "/metrics".to_string(),
        "/pools".to_string(),
        "/pools/sponsor-a".to_string(),
        "/api/v1/pools".to_string(),
    ];
    println!(
        "| answer | first | median of {} | slowest | bytes |",
        args.repeat
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for path in &paths {
        let (first, median, slowest, bytes) = time(&http, &base, path, args.repeat).await?;
        println!(
            "| `{path}` | {:.1} ms | {:.1} ms | {:.1} ms | {bytes} |",
            first.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
            slowest.as_secs_f64() * 1e3,
        );
    }
    Ok(())
}
