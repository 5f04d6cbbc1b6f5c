//! A bounded load generator for the guard, and the crash and replica tests built on it.
//!
//! Not part of the guard (a crate of its own, so that the guard's build holds none of it nor
//! of the fake GitHub): it drives a `gatehouse serve` process (or several) over real sockets
//! the way GitHub does, with signed deliveries built from GitHub's own example payloads,
//! against the loopback GitHub of `gatehouse-fake`. Used by `examples/loadgen.rs` (the figures
//! in docs/BENCHMARKS.md) and, at a small scale, by the test suite.
//!
//! The traffic is a realistic mix: each CI run brings a `workflow_run` event, a `queued` job
//! and, later, its `completed` job; a third of the jobs ask for GitHub's own runners (not
//! managed), most of the rest for a granted resource, some from projects with no grant
//! (denied, so the run is cancelled). About one send in ten repeats an earlier delivery, as
//! GitHub's redeliveries do. Every send is retried until it is answered 2xx (as GitHub's
//! redelivery would), so afterwards the store must hold each delivery exactly once and the
//! counted minutes must equal those of the acknowledged completed jobs.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use gatehouse_server::store::{Store, StoredCounts};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const RUN_TEMPLATE: &str =
    include_str!("../../gatehouse-server/tests/fixtures/workflow_run.requested.json");
const QUEUED_TEMPLATE: &str =
    include_str!("../../gatehouse-server/tests/fixtures/workflow_job.queued.json");
const COMPLETED_TEMPLATE: &str =
    include_str!("../../gatehouse-server/tests/fixtures/workflow_job.completed.json");

/// Placeholders put into the templates, replaced per delivery.
const REPO_MARK: &str = "octo-org/loadgen-placeholder-feedstock";
const RUN_MARK: &str = "777000000001";
const JOB_MARK: &str = "777000000002";
const LABEL_MARK: &str = "loadgen-label-placeholder";
const STARTED_MARK: &str = "2001-01-01T00:00:01Z";
const COMPLETED_MARK: &str = "2001-01-01T00:00:02Z";

/// Projects holding a grant of `gpu`; runs also come from this many more without one.
pub const GRANTED_PROJECTS: u64 = 50;
const UNGRANTED_PROJECTS: u64 = 5;
pub const SECRET: &str = "loadgen webhook secret";

/// Writes an access repository for the traffic: one resource (`gpu`, label `gpu-large`, no
/// quota) granted to projects `proj0` .. `proj49` of `octo-org`, served by the runner pool
/// `gpu-pool` (for admissions; inert unless the guard is started with `--gate-tokens`).
pub fn write_repo(dir: &Path) -> anyhow::Result<()> {
    let mut files = vec![
        (
            "gatehouse.yml".to_string(),
            "org: octo-org\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\n\
             guard: { mode: enforce }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n\
             gate:\n  pools:\n    gpu-pool: { resource: gpu }\n"
                .to_string(),
        ),
        (
            "resources/gpu.yml".to_string(),
            "name: gpu\nprovider: cirun\nlabels: [gpu-large]\n\
             users: { roles: [admin, maintain, write] }\n"
                .to_string(),
        ),
    ];
    for p in 0..GRANTED_PROJECTS {
        files.push((
            format!("grants/proj{p}.yml"),
            format!(
                "project: proj{p}\ngrants:\n  - resource: gpu\n    pull_request: true\n    granted: 2026-01-01\n"
            ),
        ));
    }
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The token the guard is given (`GITHUB_TOKEN`), which the fake GitHub accepts.
pub const GITHUB_TOKEN: &str = "loadgen-token";
/// The actor of GitHub's example payloads, who may write to every repository.
const ACTOR: (&str, i64) = ("Codertocat", 15669918);

/// The loopback GitHub of [`fake_github`]: where it listens, and the fake itself.
pub struct FakeGitHub {
    pub url: String,
    pub fake: Arc<gatehouse_fake::FakeGitHub>,
}

impl FakeGitHub {
    /// Run id -> when its first cancel request arrived.
    pub fn cancels(&self) -> std::collections::BTreeMap<i64, Instant> {
        self.fake
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cancels
            .clone()
    }
}

/// The loopback GitHub (`gatehouse-fake`) the guard runs against: every repository's
/// collaborator is the example payloads' actor (`Codertocat`, who may write), every run's
/// attempt exists (pushed by them), cancels and check runs succeed (and the arrival of each
/// run's first cancel is noted). It runs until the process ends.
pub async fn fake_github() -> anyhow::Result<FakeGitHub> {
    let fake = gatehouse_fake::FakeGitHub::with_token(GITHUB_TOKEN);
    fake.role(ACTOR, "write");
    fake.state.lock().unwrap_or_else(|e| e.into_inner()).runs_by =
        Some((ACTOR.0.to_string(), ACTOR.1));
    let (url, fake) = gatehouse_fake::serve_github(fake);
    Ok(FakeGitHub { url, fake })
}

/// One delivery of the traffic.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: String,
    pub event: &'static str,
    pub body: Vec<u8>,
    /// For a `completed` job on a managed resource: its minutes.
    pub counted_minutes: Option<i64>,
    /// A `queued` job on a managed resource (so one decision is recorded).
    pub decided: bool,
}

/// The traffic: delivery `d` belongs to run `d / 3`; `d % 3` is its `workflow_run` event, its
/// queued job, its completed job.
pub struct Traffic {
    /// Each template cut at its marks, so that a body is built in one pass.
    templates: [Vec<Piece>; 3],
    /// The send order: indices of deliveries, about one in ten repeating an earlier one.
    pub sends: Vec<u32>,
    completed_at: jiff::Timestamp,
    /// Delivery ids start with it, so runs of several tests do not collide.
    prefix: String,
    /// How many projects without a grant runs also come from (their jobs are denied).
    ungranted: u64,
}

/// A stretch of a template: text as it is, or the index in [`MARKS`] of what replaces it.
#[derive(Debug)]
enum Piece {
    Text(String),
    Mark(usize),
}

const MARKS: [&str; 6] = [
    REPO_MARK,
    RUN_MARK,
    JOB_MARK,
    LABEL_MARK,
    STARTED_MARK,
    COMPLETED_MARK,
];

/// `text` cut at every occurrence of the [`MARKS`].
fn pieces(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((at, mark)) = MARKS
        .iter()
        .enumerate()
        .filter_map(|(m, mark)| rest.find(mark).map(|at| (at, m)))
        .min()
    {
        out.push(Piece::Text(rest[..at].to_string()));
        out.push(Piece::Mark(mark));
        rest = &rest[at + MARKS[mark].len()..];
    }
    out.push(Piece::Text(rest.to_string()));
    out
}

fn mix(mut x: u64) -> u64 {
    // splitmix64: a fixed, well-spread sequence without a random-number crate.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Traffic {
    /// `sends` sends, with `duplicate_percent` of them repeating an earlier delivery.
    pub fn new(sends: usize, duplicate_percent: u64, prefix: &str) -> anyhow::Result<Traffic> {
        let mut order = Vec::with_capacity(sends);
        let mut fresh = 0u32;
        for s in 0..sends as u64 {
            if fresh > 0 && mix(s) % 100 < duplicate_percent {
                order.push((mix(s ^ 0xD0B1E) % u64::from(fresh)) as u32);
            } else {
                order.push(fresh);
                fresh += 1;
            }
        }
        let template = |text: &str, f: &dyn Fn(&mut Value)| -> anyhow::Result<String> {
            let mut v: Value = serde_json::from_str(text)?;
            f(&mut v);
            Ok(serde_json::to_string(&v)?)
        };
        let run = template(RUN_TEMPLATE, &|v| {
            v["repository"]["full_name"] = json!(REPO_MARK);
            v["workflow_run"]["id"] = json!(RUN_MARK.parse::<i64>().unwrap_or_default());
            v["workflow_run"]["event"] = json!("push");
            v["workflow_run"]["repository"]["full_name"] = json!(REPO_MARK);
            v["workflow_run"]["head_repository"]["full_name"] = json!(REPO_MARK);
        })?;
        let job = |text: &str| {
            template(text, &|v| {
                v["repository"]["full_name"] = json!(REPO_MARK);
                v["workflow_job"]["id"] = json!(JOB_MARK.parse::<i64>().unwrap_or_default());
                v["workflow_job"]["run_id"] = json!(RUN_MARK.parse::<i64>().unwrap_or_default());
                v["workflow_job"]["labels"] = json!([LABEL_MARK, "linux"]);
                v["workflow_job"]["started_at"] = json!(STARTED_MARK);
                v["workflow_job"]["completed_at"] = json!(COMPLETED_MARK);
            })
        };
        Ok(Traffic {
            templates: [
                pieces(&run),
                pieces(&job(QUEUED_TEMPLATE)?),
                pieces(&job(COMPLETED_TEMPLATE)?),
            ],
            sends: order,
            completed_at: jiff::Timestamp::now(),
            ungranted: UNGRANTED_PROJECTS,
            prefix: prefix.to_string(),
        })
    }

    /// How many different deliveries the sends hold.
    /// The same traffic from granted projects only: no job of it is denied.
    pub fn all_granted(mut self) -> Traffic {
        self.ungranted = 0;
        self
    }

    pub fn distinct(&self) -> usize {
        self.sends
            .iter()
            .map(|&d| d as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// The repository and run id of the traffic's run `run` (deliveries `3 run` to `3 run + 2`).
    pub fn run_of(&self, run: u64) -> (String, i64) {
        let project = mix(run) % (GRANTED_PROJECTS + self.ungranted);
        (
            format!("octo-org/proj{project}-feedstock"),
            1_000_000_000 + run as i64,
        )
    }

    pub fn delivery(&self, d: u32) -> Delivery {
        let run = u64::from(d / 3);
        let phase = d % 3;
        let project = mix(run) % (GRANTED_PROJECTS + self.ungranted);
        let repo = format!("octo-org/proj{project}-feedstock");
        // A third of the jobs run on GitHub's own runners.
        let managed = !mix(run ^ 0xA11).is_multiple_of(3);
        let label = if managed {
            format!("gpu-large--{run}-linux_64")
        } else {
            "ubuntu-latest".to_string()
        };
        let minutes = 1 + (mix(run ^ 0x3) % 30) as i64;
        let started = self.completed_at - jiff::SignedDuration::from_mins(minutes);
        let values = [
            repo,
            (1_000_000_000 + run).to_string(),
            (2_000_000_000 + run).to_string(),
            label,
            started.to_string(),
            self.completed_at.to_string(),
        ];
        let template = &self.templates[phase as usize];
        let mut text = String::with_capacity(
            template
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.len(),
                    Piece::Mark(m) => values[*m].len(),
                })
                .sum(),
        );
        for piece in template {
            text.push_str(match piece {
                Piece::Text(t) => t,
                Piece::Mark(m) => &values[*m],
            });
        }
        Delivery {
            id: format!("{}-{d}", self.prefix),
            event: if phase == 0 {
                "workflow_run"
            } else {
                "workflow_job"
            },
            body: text.into_bytes(),
            counted_minutes: (phase == 2 && managed).then_some(minutes),
            decided: phase == 1 && managed,
        }
    }
}

/// An HTTP client (reqwest is built without a default TLS provider: install one first).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct LoadResult {
    pub sends: usize,
    /// Time of each send's successful attempt (retries not included).
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
    /// Attempts that failed (connection refused or cut, 5xx) and were retried.
    pub retries: usize,
    /// Distinct deliveries answered 2xx.
    pub acked: HashSet<u32>,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.sends as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile (0..=1) of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        if l.is_empty() {
            return Duration::ZERO;
        }
        l[((l.len() - 1) as f64 * q).round() as usize]
    }
}

/// Where sends go: one base URL per replica; send `s` goes to `bases[s % len]`.
pub struct Targets {
    pub bases: Vec<String>,
}

/// Sends the traffic with `concurrency` connections at once, each send retried until it is
/// answered 2xx. `progress` counts finished sends (for a caller that kills servers midway).
pub async fn send_all(
    traffic: Arc<Traffic>,
    targets: Arc<Targets>,
    concurrency: usize,
    progress: Arc<AtomicUsize>,
) -> anyhow::Result<LoadResult> {
    send_paced(traffic, targets, concurrency, progress, None).await
}

/// [`send_all`], at most `per_second` sends a second when given (send `s` starts no earlier
/// than `s / per_second` after the first).
pub async fn send_paced(
    traffic: Arc<Traffic>,
    targets: Arc<Targets>,
    concurrency: usize,
    progress: Arc<AtomicUsize>,
    per_second: Option<f64>,
) -> anyhow::Result<LoadResult> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (traffic, targets, http, next, progress) = (
            traffic.clone(),
            targets.clone(),
            http.clone(),
            next.clone(),
            progress.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut result = LoadResult::default();
            loop {
                let s = next.fetch_add(1, Ordering::Relaxed);
                let Some(&d) = traffic.sends.get(s) else {
                    return result;
                };
                if let Some(rate) = per_second {
                    let due = started + Duration::from_secs_f64(s as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let delivery = traffic.delivery(d);
                let signature = sign(SECRET, &delivery.body);
                let mut attempt = 0usize;
                loop {
                    let base = &targets.bases[(s + attempt) % targets.bases.len()];
                    let t = Instant::now();
                    let answer = http
                        .post(format!("{base}/webhook"))
                        .header("content-type", "application/json")
                        .header("x-github-event", delivery.event)
                        .header("x-github-delivery", &delivery.id)
                        .header("x-hub-signature-256", &signature)
                        .body(delivery.body.clone())
                        .send()
                        .await;
                    let ok = match answer {
                        Ok(r) => {
                            let ok = r.status().is_success();
                            let _ = r.bytes().await;
                            ok
                        }
                        Err(_) => false,
                    };
                    if ok {
                        result.latencies.push(t.elapsed());
                        result.acked.insert(d);
                        break;
                    }
                    attempt += 1;
                    result.retries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                result.sends += 1;
                progress.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut total = LoadResult::default();
    for w in workers {
        let r = w.await.context("a load worker panicked")?;
        total.sends += r.sends;
        total.retries += r.retries;
        total.latencies.extend(r.latencies);
        total.acked.extend(r.acked);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Sends, every `every`, one queued job of a project without a grant (denied on the ledger
/// alone, so its run is cancelled at once), until `stop` is set; returns each job's run id and
/// when its delivery started. For the time from a denial's delivery to its cancel request.
pub async fn send_denials(
    base: String,
    every: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Vec<(i64, Instant)>> {
    let http = http_client();
    let mut sent = Vec::new();
    let mut tick = tokio::time::interval(every);
    for n in 0i64.. {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let run_id = 5_000_000_000 + n;
        let mut v: Value = serde_json::from_str(QUEUED_TEMPLATE)?;
        v["repository"]["full_name"] = json!(format!("octo-org/denied{n}-feedstock"));
        v["workflow_job"]["id"] = json!(6_000_000_000 + n);
        v["workflow_job"]["run_id"] = json!(run_id);
        v["workflow_job"]["labels"] = json!(["gpu-large", "linux"]);
        let body = serde_json::to_vec(&v)?;
        let started = Instant::now();
        let resp = http
            .post(format!("{base}/webhook"))
            .header("content-type", "application/json")
            .header("x-github-event", "workflow_job")
            .header("x-github-delivery", format!("denial-{n}"))
            .header("x-hub-signature-256", sign(SECRET, &body))
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "a denial was answered {}",
            resp.status()
        );
        sent.push((run_id, started));
    }
    Ok(sent)
}

/// The pool token the admission load uses (`--gate-tokens` holds it as `gpu-pool`).
pub const POOL_TOKEN: &str = "loadgen pool token, long enough to be accepted";

/// Asks the guard for `per_second` admissions a second, until `stop` is set, each about a run
/// the webhook traffic announced a little earlier (`progress`: sends finished so far); returns
/// each admission's latency and its outcome (`allow`, `deny`, or the status when not 200).
pub async fn send_admissions(
    base: String,
    traffic: Arc<Traffic>,
    progress: Arc<AtomicUsize>,
    per_second: f64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Vec<(Duration, String)>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut asked = Vec::new();
    for n in 0u64.. {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // A run announced at least 300 sends ago (a runner picks a job up after its run began).
        let done = progress.load(Ordering::Relaxed) as u64;
        let Some(announced) = (done / 3).checked_sub(100) else {
            continue;
        };
        let (repository, run_id) = traffic.run_of(mix(n) % (announced + 1));
        let http = http.clone();
        let url = format!("{base}/api/v1/admission");
        asked.push(tokio::spawn(async move {
            let started = Instant::now();
            let resp = http
                .post(url)
                .bearer_auth(POOL_TOKEN)
                .json(&json!({
                    "repository": repository, "run_id": run_id, "run_attempt": 1,
                    "job": "build", "runner_name": format!("gate-runner-{n}"),
                }))
                .send()
                .await;
            let outcome = match resp {
                Ok(r) if r.status().is_success() => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["outcome"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "unreadable".into()),
                Ok(r) => r.status().to_string(),
                Err(e) => format!("error: {e}"),
            };
            (started.elapsed(), outcome)
        }));
    }
    let mut out = Vec::with_capacity(asked.len());
    for a in asked {
        out.push(a.await.context("an admission task panicked")?);
    }
    Ok(out)
}

/// What the store must hold after the traffic was acknowledged.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expected {
    pub deliveries: i64,
    pub decisions: i64,
    pub minutes: i64,
}

/// The deliveries acknowledged, the decisions they must have caused, and the minutes of the
/// acknowledged completed jobs.
pub fn expected(traffic: &Traffic, acked: &HashSet<u32>) -> Expected {
    let mut e = Expected {
        deliveries: acked.len() as i64,
        ..Expected::default()
    };
    for &d in acked {
        let delivery = traffic.delivery(d);
        e.decisions += i64::from(delivery.decided);
        e.minutes += delivery.counted_minutes.unwrap_or(0);
    }
    e
}

/// Checks the store against what was acknowledged; `Err` says what differs.
pub async fn verify(
    db_url: &str,
    traffic: &Traffic,
    acked: &HashSet<u32>,
) -> anyhow::Result<StoredCounts> {
    let store = Store::connect(db_url).await?;
    let counts = store.counts().await?;
    let want = expected(traffic, acked);
    let ids: HashSet<String> = store.delivery_ids().await?.into_iter().collect();
    let missing = acked
        .iter()
        .filter(|&&d| !ids.contains(&format!("{}-{d}", traffic.prefix)))
        .count();
    anyhow::ensure!(
        missing == 0,
        "{missing} acknowledged deliveries are not in the store"
    );
    anyhow::ensure!(
        counts.deliveries == want.deliveries,
        "the store holds {} deliveries, {} were acknowledged",
        counts.deliveries,
        want.deliveries
    );
    anyhow::ensure!(
        counts.unprocessed == 0,
        "{} deliveries are not processed",
        counts.unprocessed
    );
    anyhow::ensure!(
        counts.decisions == want.decisions,
        "{} decisions recorded, {} queued managed jobs acknowledged",
        counts.decisions,
        want.decisions
    );
    anyhow::ensure!(
        counts.job_minutes == want.minutes && counts.month_minutes == want.minutes,
        "minutes counted: {} per job, {} per month; acknowledged completed jobs: {}",
        counts.job_minutes,
        counts.month_minutes,
        want.minutes
    );
    Ok(counts)
}

/// A `gatehouse serve` process the load runs against.
pub struct ServerProcess {
    bin: PathBuf,
    repo: PathBuf,
    db: String,
    github: String,
    pub addr: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
    /// More arguments for `serve`.
    extra: Vec<String>,
}

impl ServerProcess {
    /// Starts `bin serve repo` on `addr` and waits until it is ready.
    pub async fn start(
        bin: &Path,
        repo: &Path,
        db: &str,
        github: &str,
        addr: SocketAddr,
        log: &Path,
    ) -> anyhow::Result<ServerProcess> {
        ServerProcess::start_with(bin, repo, db, github, addr, log, &[]).await
    }

    /// [`ServerProcess::start`] with more arguments for `serve`.
    pub async fn start_with(
        bin: &Path,
        repo: &Path,
        db: &str,
        github: &str,
        addr: SocketAddr,
        log: &Path,
        extra: &[String],
    ) -> anyhow::Result<ServerProcess> {
        let mut p = ServerProcess {
            bin: bin.to_path_buf(),
            repo: repo.to_path_buf(),
            db: db.to_string(),
            github: github.to_string(),
            addr,
            log: log.to_path_buf(),
            child: None,
            extra: extra.to_vec(),
        };
        p.spawn().await?;
        Ok(p)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg(&self.repo)
            .args(["--listen", &self.addr.to_string(), "--db", &self.db])
            .args(&self.extra)
            .env("GATEHOUSE_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .env("GATEHOUSE_GITHUB_API", &self.github)
            .env("GATEHOUSE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        let http = http_client();
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", self.base())).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                anyhow::bail!(
                    "the server exited with {status} while starting; see {}",
                    self.log.display()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server was not ready within 120 s; see {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// CPU time (user + system) the running server process has used, from `/proc` (Linux).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) end with `)`.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // USER_HZ is 100 on every Linux this runs on.
        Some(ticks / 100.0)
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same address and store.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn().await
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(http_client()
            .get(format!("{}/metrics", self.base()))
            .send()
            .await?
            .text()
            .await?)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free loopback address.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The sum of a metric's samples whose line starts with `name` in a Prometheus text page.
pub fn metric_sum(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Kills `server` with SIGKILL `kills` times while `traffic` is being sent (at evenly spaced
/// points of progress), restarting it each time; returns the load result once everything is
/// acknowledged.
pub async fn run_with_kills(
    server: &mut ServerProcess,
    traffic: Arc<Traffic>,
    concurrency: usize,
    kills: usize,
) -> anyhow::Result<LoadResult> {
    let progress = Arc::new(AtomicUsize::new(0));
    let total = traffic.sends.len();
    let targets = Arc::new(Targets {
        bases: vec![server.base()],
    });
    let load = tokio::spawn(send_all(traffic, targets, concurrency, progress.clone()));
    for k in 1..=kills {
        let at = total * k / (kills + 1);
        while progress.load(Ordering::Relaxed) < at && !load.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if load.is_finished() {
            break;
        }
        server.kill();
        tracing::info!(at, "server killed");
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.restart().await?;
    }
    load.await.context("the load generator panicked")?
}

/// A new, empty PostgreSQL database on the server of `admin_url` (named after this process):
/// its URL.
pub async fn fresh_postgres(admin_url: &str) -> anyhow::Result<String> {
    let name = format!("gatehouse_load_{}", std::process::id());
    let pool = sqlx::PgPool::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&pool)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await?;
    let (base, _) = admin_url
        .rsplit_once('/')
        .context("the PostgreSQL URL names a database")?;
    Ok(format!("{base}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body built from the cut template is the template with every mark replaced.
    #[test]
    fn a_body_is_its_template_with_the_marks_replaced() {
        let traffic = Traffic::new(30, 0, "t").unwrap();
        for d in 0..30 {
            let delivery = traffic.delivery(d);
            let body = String::from_utf8(delivery.body).unwrap();
            assert!(MARKS.iter().all(|m| !body.contains(m)), "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            let run = 1_000_000_000 + i64::from(d / 3);
            let id = if d % 3 == 0 {
                &v["workflow_run"]["id"]
            } else {
                assert_eq!(v["workflow_job"]["id"], json!(run + 1_000_000_000));
                &v["workflow_job"]["run_id"]
            };
            assert_eq!(id, &json!(run));
            assert!(
                v["repository"]["full_name"]
                    .as_str()
                    .unwrap()
                    .ends_with("-feedstock")
            );
        }
    }
}
