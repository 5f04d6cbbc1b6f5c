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
//!
//! Two additions to the mix ([`Mix`]), off by default:
//!
//! - **capacity** (issue 17): `gpu` gets concurrency caps (`quota.concurrency`,
//!   `project_concurrency`, its provider's `max_concurrency`), a time limit
//!   (`max_job_minutes`), a price (`cost:`) and a sponsor pool (`pools/loadgen-credit.yml`)
//!   funding it, and each job goes `in_progress` between queued and completed: a job in progress
//!   claims a machine against the caps, arms its timer and reserves its expected cost; its
//!   completion frees the machine, disarms the timer and pays its real cost. The caps and the
//!   credit are set so that they never bind (the figure is what counting costs, and the check
//!   stays exact): afterwards only the jobs still running (the last run may stop in progress)
//!   hold a machine and credit, and the pool spent exactly the acknowledged completed jobs'
//!   minutes at the price. A job's `in_progress` may be processed after its completion (both
//!   go out together): it must then hold nothing.
//! - **approvals** (issue 18): one in `N` of the granted projects' runs comes from a pull
//!   request of a fork contributor without a role (`drive-by`), so its job is denied
//!   `user-not-allowed`; one in `N` more does too, but a maintainer approved its head commit:
//!   a new `issue_comment` `/gatehouse run <sha>` by `Codertocat` (who may write) goes out
//!   [`APPROVAL_LEAD`] runs earlier; the guard reads the pull request from the fake GitHub
//!   (`pulls/get`), judges the approver on its role facts, records the approval and reacts to
//!   the comment; the run's job is then allowed. Every run also brings one comment (an
//!   approval, or a comment on an issue that is only stored). A queued job of an approved run
//!   is sent only once the guard lists its approval (`GET /api/v1/run-approvals`; at most
//!   30 s), so the order holds whatever the connections do. Afterwards each approval is
//!   recorded once, and every queued managed job was decided as its run's kind says. `N` is
//!   [`APPROVE_EVERY`] by default: the guard spaces its reactions a second apart (GitHub's
//!   advice against its secondary rate limits), so approvals are a trickle beside the jobs, as
//!   they are in an organisation.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use gatehouse_server::store::{DecisionFilter, Store, StoredCounts, time_text};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const RUN_TEMPLATE: &str =
    include_str!("../../gatehouse-server/tests/fixtures/workflow_run.requested.json");
const QUEUED_TEMPLATE: &str =
    include_str!("../../gatehouse-server/tests/fixtures/workflow_job.queued.json");
const COMPLETED_TEMPLATE: &str =
    include_str!("../../gatehouse-server/tests/fixtures/workflow_job.completed.json");
const COMMENT_TEMPLATE: &str =
    include_str!("../../gatehouse-server/tests/fixtures/issue_comment.created.json");

/// Placeholders put into the templates, replaced per delivery.
const REPO_MARK: &str = "octo-org/loadgen-placeholder-feedstock";
const RUN_MARK: &str = "777000000001";
const JOB_MARK: &str = "777000000002";
const LABEL_MARK: &str = "loadgen-label-placeholder";
const STARTED_MARK: &str = "2001-01-01T00:00:01Z";
const COMPLETED_MARK: &str = "2001-01-01T00:00:02Z";
const HEAD_MARK: &str = "loadgen-head-sha-placeholder";
const FORK_MARK: &str = "loadgen-fork/placeholder-feedstock";
const PULL_MARK: &str = "777000000003";
const COMMENT_MARK: &str = "777000000004";

/// Projects holding a grant of `gpu`; runs also come from this many more without one.
pub const GRANTED_PROJECTS: u64 = 50;
const UNGRANTED_PROJECTS: u64 = 5;
pub const SECRET: &str = "loadgen webhook secret";

/// What the traffic holds beyond runs, queued and completed jobs (see the crate's header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mix {
    /// Caps, a time limit, a price and a sponsor pool on `gpu`; each job goes in progress.
    pub capacity: bool,
    /// `N`: one in `N` runs of granted projects from a fork contributor without a role, and
    /// one in `N` more approved by a maintainer's comment; one comment per run. 0: none.
    pub approvals: u64,
}

/// Runs per approved run (and per denied fork run) of the approvals mix by default.
pub const APPROVE_EVERY: u64 = 500;

impl Mix {
    pub const PLAIN: Mix = Mix {
        capacity: false,
        approvals: 0,
    };

    /// `caps`, `approvals` (or `approvals=N`), or both separated by a comma.
    pub fn parse(text: &str) -> anyhow::Result<Mix> {
        let mut mix = Mix::PLAIN;
        for word in text.split(',').map(str::trim) {
            match word {
                "caps" => mix.capacity = true,
                "approvals" => mix.approvals = APPROVE_EVERY,
                other => match other.strip_prefix("approvals=").map(str::parse::<u64>) {
                    Some(Ok(n)) if n > 0 => mix.approvals = n,
                    _ => anyhow::bail!(
                        "unknown part of the mix `{other}`: caps, approvals or approvals=N (N > 0)"
                    ),
                },
            }
        }
        Ok(mix)
    }

    /// What each run brings, in order.
    fn phases(self) -> Vec<Phase> {
        let mut phases = vec![Phase::Run, Phase::Queued];
        if self.capacity {
            phases.push(Phase::InProgress);
        }
        phases.push(Phase::Completed);
        if self.approvals > 0 {
            phases.push(Phase::Comment);
        }
        phases
    }
}

/// The caps on `gpu` and its provider in the capacity mix: far above what the traffic holds
/// at once, so that they count without binding.
pub const CAPS: (u32, u32, u32) = (1000, 100, 2000);
/// `max_job_minutes` of `gpu` in the capacity mix (a job of the traffic runs 1 to 30 minutes).
pub const MAX_JOB_MINUTES: u64 = 60;
/// The price of a minute of `gpu` in the capacity mix, in millionths of a US dollar (0.01).
pub const MICROS_PER_MINUTE: i64 = 10_000;
/// The sponsor pool funding `gpu` in the capacity mix, and its credit in US dollars.
pub const POOL: &str = "loadgen-credit";
const POOL_USD: u64 = 10_000_000;

/// Writes an access repository for the traffic: one resource (`gpu`, label `gpu-large`, no
/// quota) granted to projects `proj0` .. `proj49` of `octo-org`, served by the runner pool
/// `gpu-pool` (for admissions; inert unless the guard is started with `--gate-tokens`).
pub fn write_repo(dir: &Path) -> anyhow::Result<()> {
    write_repo_for(dir, Mix::PLAIN)
}

/// [`write_repo`] for `mix`: with `capacity`, `gpu` has caps, a time limit, a price and a pool
/// funding it, and no gate pool (so that the webhook path counts the caps, as on an
/// organisation without the gate).
pub fn write_repo_for(dir: &Path, mix: Mix) -> anyhow::Result<()> {
    let (concurrency, project_concurrency, provider) = CAPS;
    let mut files = if mix.capacity {
        vec![
            (
                "gatehouse.yml".to_string(),
                format!(
                    "org: octo-org\nrepo_suffix: \"-feedstock\"\nreviewers: {{ teams: [core] }}\n\
                     guard: {{ mode: enforce }}\nproviders:\n  \
                     cirun: {{ kind: cirun, access_repo: .cirun, max_concurrency: {provider} }}\n"
                ),
            ),
            (
                "resources/gpu.yml".to_string(),
                format!(
                    "name: gpu\nprovider: cirun\nlabels: [gpu-large]\n\
                     users: {{ roles: [admin, maintain, write] }}\n\
                     max_job_minutes: {MAX_JOB_MINUTES}\n\
                     quota: {{ concurrency: {concurrency}, project_concurrency: {project_concurrency} }}\n\
                     cost: {{ per_minute: 0.01, currency: USD }}\n"
                ),
            ),
            (
                format!("pools/{POOL}.yml"),
                format!(
                    "sponsor: Loadgen Cloud\namount: {POOL_USD}\ncurrency: USD\n\
                     start: 2026-01-01\nend: 2099-12-31\nresources: [gpu]\n"
                ),
            ),
        ]
    } else {
        vec![
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
        ]
    };
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
    /// The id of the managed job this delivery says went in progress (it holds a machine and
    /// credit until its completion) or completed.
    pub started: Option<i64>,
    pub completed: Option<i64>,
    /// For a `queued` job on a managed resource: its id, and the outcome and rule it must be
    /// decided with.
    pub decision: Option<(i64, &'static str, Option<&'static str>)>,
    /// For a maintainer's comment approving a run: the commit it approves.
    pub approves: Option<String>,
    /// An approval the guard must hold before this one is sent (of a queued job's commit):
    /// the repository and the commit.
    pub after: Option<(String, String)>,
}

/// Where a run comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// A push by `Codertocat`, who may write.
    Push,
    /// A pull request from the fork of `drive-by` (no role), whose head commit a maintainer
    /// approved before the run.
    ApprovedFork,
    /// The same, never approved.
    Fork,
}

/// The fork contributor without a role (the run approvals mix).
pub const OUTSIDER: (&str, i64) = ("drive-by", 7_000_001);
/// How many runs before an approved run its approval goes out.
pub const APPROVAL_LEAD: u64 = 100;
/// How long a queued job of an approved run waits for its approval to be answered.
const APPROVAL_WAIT: Duration = Duration::from_secs(30);

/// What each run brings, in order (see [`Mix`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Run,
    Queued,
    InProgress,
    Completed,
    Comment,
}

/// The templates, by what they build.
#[derive(Clone, Copy)]
enum Template {
    Run,
    ForkRun,
    Queued,
    InProgress,
    Completed,
    Comment,
    Approval,
}
const TEMPLATES: usize = 7;

/// The traffic: delivery `d` belongs to run `d / k`, `k` the number of phases of the mix:
/// `d % k` is its `workflow_run` event, its queued job, (with `capacity`, its job in
/// progress,) its completed job (and with `approvals`, a comment).
pub struct Traffic {
    /// Each template cut at its marks, so that a body is built in one pass.
    templates: [Vec<Piece>; TEMPLATES],
    /// The send order: indices of deliveries, about one in ten repeating an earlier one.
    pub sends: Vec<u32>,
    completed_at: jiff::Timestamp,
    /// Delivery ids start with it, so runs of several tests do not collide.
    prefix: String,
    /// How many projects without a grant runs also come from (their jobs are denied).
    ungranted: u64,
    mix: Mix,
    phases: Vec<Phase>,
}

/// A stretch of a template: text as it is, or the index in [`MARKS`] of what replaces it.
#[derive(Debug)]
enum Piece {
    Text(String),
    Mark(usize),
}

const MARKS: [&str; 10] = [
    REPO_MARK,
    RUN_MARK,
    JOB_MARK,
    LABEL_MARK,
    STARTED_MARK,
    COMPLETED_MARK,
    HEAD_MARK,
    FORK_MARK,
    PULL_MARK,
    COMMENT_MARK,
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

/// A number placeholder of the templates, as a JSON number.
fn number(mark: &str) -> Value {
    json!(mark.parse::<i64>().unwrap_or_default())
}

impl Traffic {
    /// `sends` sends, with `duplicate_percent` of them repeating an earlier delivery.
    pub fn new(sends: usize, duplicate_percent: u64, prefix: &str) -> anyhow::Result<Traffic> {
        Traffic::with_mix(sends, duplicate_percent, prefix, Mix::PLAIN)
    }

    /// [`Traffic::new`] with the runs of `mix`.
    pub fn with_mix(
        sends: usize,
        duplicate_percent: u64,
        prefix: &str,
        mix_of: Mix,
    ) -> anyhow::Result<Traffic> {
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
            v["workflow_run"]["id"] = number(RUN_MARK);
            v["workflow_run"]["event"] = json!("push");
            v["workflow_run"]["repository"]["full_name"] = json!(REPO_MARK);
            v["workflow_run"]["head_repository"]["full_name"] = json!(REPO_MARK);
        })?;
        // A pull request from the outsider's fork: for a fork, GitHub lists no pull request
        // in `workflow_run.pull_requests`.
        let fork_run = template(RUN_TEMPLATE, &|v| {
            v["repository"]["full_name"] = json!(REPO_MARK);
            let r = &mut v["workflow_run"];
            r["id"] = number(RUN_MARK);
            r["event"] = json!("pull_request");
            r["head_sha"] = json!(HEAD_MARK);
            r["pull_requests"] = json!([]);
            r["repository"]["full_name"] = json!(REPO_MARK);
            r["head_repository"]["full_name"] = json!(FORK_MARK);
            r["head_repository"]["owner"]["login"] = json!(OUTSIDER.0);
            r["head_repository"]["owner"]["id"] = json!(OUTSIDER.1);
            for who in ["actor", "triggering_actor"] {
                r[who]["login"] = json!(OUTSIDER.0);
                r[who]["id"] = json!(OUTSIDER.1);
            }
        })?;
        let job = |text: &str, in_progress: bool| {
            template(text, &|v| {
                v["repository"]["full_name"] = json!(REPO_MARK);
                v["workflow_job"]["id"] = number(JOB_MARK);
                v["workflow_job"]["run_id"] = number(RUN_MARK);
                v["workflow_job"]["labels"] = json!([LABEL_MARK, "linux"]);
                v["workflow_job"]["started_at"] = json!(STARTED_MARK);
                v["workflow_job"]["completed_at"] = json!(COMPLETED_MARK);
                if in_progress {
                    // Its runner (the completed job's, so that both name the same claim).
                    v["action"] = json!("in_progress");
                    v["workflow_job"]["status"] = json!("in_progress");
                    v["workflow_job"]["completed_at"] = Value::Null;
                }
            })
        };
        // A comment on an issue (only stored), and a maintainer's approval of a pull
        // request's head commit (GitHub's example, on a pull request, by `Codertocat`).
        let comment = template(COMMENT_TEMPLATE, &|v| {
            v["repository"]["full_name"] = json!(REPO_MARK);
            v["comment"]["id"] = number(COMMENT_MARK);
        })?;
        let approval = template(COMMENT_TEMPLATE, &|v| {
            v["repository"]["full_name"] = json!(REPO_MARK);
            v["issue"]["number"] = number(PULL_MARK);
            let html = format!("https://github.com/{REPO_MARK}/pull/{PULL_MARK}");
            v["issue"]["pull_request"] = json!({
                "url": format!("https://api.github.com/repos/{REPO_MARK}/pulls/{PULL_MARK}"),
                "html_url": html, "diff_url": format!("{html}.diff"),
                "patch_url": format!("{html}.patch"), "merged_at": null,
            });
            v["comment"]["id"] = number(COMMENT_MARK);
            v["comment"]["body"] = json!(format!("Read it, fine.\n/gatehouse run {HEAD_MARK}"));
            v["comment"]["user"]["login"] = json!(ACTOR.0);
            v["comment"]["user"]["id"] = json!(ACTOR.1);
        })?;
        Ok(Traffic {
            templates: [
                pieces(&run),
                pieces(&fork_run),
                pieces(&job(QUEUED_TEMPLATE, false)?),
                pieces(&job(QUEUED_TEMPLATE, true)?),
                pieces(&job(COMPLETED_TEMPLATE, false)?),
                pieces(&comment),
                pieces(&approval),
            ],
            sends: order,
            completed_at: jiff::Timestamp::now(),
            ungranted: UNGRANTED_PROJECTS,
            prefix: prefix.to_string(),
            mix: mix_of,
            phases: mix_of.phases(),
        })
    }

    /// The same traffic from granted projects only: no job of it is denied.
    pub fn all_granted(mut self) -> Traffic {
        self.ungranted = 0;
        self
    }

    pub fn mix(&self) -> Mix {
        self.mix
    }

    /// How many different deliveries the sends hold.
    pub fn distinct(&self) -> usize {
        self.sends
            .iter()
            .map(|&d| d as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// How many runs the sends begin (the last one perhaps not whole).
    pub fn runs(&self) -> u64 {
        (self.distinct() as u64).div_ceil(self.phases.len() as u64)
    }

    /// The repository and run id of the traffic's run `run`.
    pub fn run_of(&self, run: u64) -> (String, i64) {
        let project = mix(run) % (GRANTED_PROJECTS + self.ungranted);
        (
            format!("octo-org/proj{project}-feedstock"),
            1_000_000_000 + run as i64,
        )
    }

    /// Where run `run` comes from: with `approvals` (`N`), one in `N` of the granted
    /// projects' runs from the outsider's fork, and one in `N` more from it and approved (from
    /// the [`APPROVAL_LEAD`]th run on).
    pub fn kind(&self, run: u64) -> RunKind {
        let n = self.mix.approvals;
        if n == 0 || mix(run) % (GRANTED_PROJECTS + self.ungranted) >= GRANTED_PROJECTS {
            return RunKind::Push;
        }
        match mix(run ^ 0xF02C) % n.saturating_mul(2) {
            0 if run >= APPROVAL_LEAD => RunKind::ApprovedFork,
            0 | 1 => RunKind::Fork,
            _ => RunKind::Push,
        }
    }

    /// The head commit of run `run` (40 hex digits; a push's is the example payload's).
    pub fn head_of(&self, run: u64) -> String {
        match self.kind(run) {
            RunKind::Push => "3484a3fb816e0859fd6e1cea078d76385ff50625".to_string(),
            _ => format!("{:016x}{:024x}", mix(run ^ 0x5EA), run),
        }
    }

    /// The pull request a fork's run `run` belongs to.
    fn pull_of(run: u64) -> u64 {
        1 + run
    }

    /// Sets up the fake GitHub for the traffic: each fork run's pull request (open, its head
    /// the run's commit, from the outsider's fork), also of the runs the last approvals name,
    /// and each fork run's attempt (for a guard that reads it from GitHub when its event is
    /// late).
    pub fn prepare(&self, fake: &gatehouse_fake::FakeGitHub) -> anyhow::Result<()> {
        if self.mix.approvals == 0 {
            return Ok(());
        }
        let k = self.phases.len() as u32;
        let mut runs = Vec::new();
        for run in 0..self.runs() + APPROVAL_LEAD {
            if self.kind(run) == RunKind::Push {
                continue;
            }
            let body: Value = serde_json::from_slice(&self.delivery(run as u32 * k).body)?;
            runs.push((run, body["workflow_run"].clone()));
        }
        let mut s = fake.state.lock().unwrap_or_else(|e| e.into_inner());
        s.accounts.insert(OUTSIDER.0.to_string(), OUTSIDER.1);
        for (run, attempt) in runs {
            let (repository, run_id) = self.run_of(run);
            let fork = attempt["head_repository"]["full_name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            s.pulls.insert(
                Traffic::pull_of(run),
                gatehouse_fake::FakePull {
                    head_repo: Some(fork),
                    ..gatehouse_fake::FakePull::new(OUTSIDER.0, &self.head_of(run), &[])
                },
            );
            debug_assert!(repository.ends_with("-feedstock"));
            s.runs.insert((run_id, 1), attempt);
        }
        Ok(())
    }

    pub fn delivery(&self, d: u32) -> Delivery {
        let k = self.phases.len() as u32;
        let run = u64::from(d / k);
        let phase = self.phases[(d % k) as usize];
        let kind = self.kind(run);
        let project = mix(run) % (GRANTED_PROJECTS + self.ungranted);
        let repo = format!("octo-org/proj{project}-feedstock");
        // A third of the jobs run on GitHub's own runners (a fork's all on `gpu`).
        let managed = kind != RunKind::Push || !mix(run ^ 0xA11).is_multiple_of(3);
        let label = if managed {
            format!("gpu-large--{run}-linux_64")
        } else {
            "ubuntu-latest".to_string()
        };
        let minutes = 1 + (mix(run ^ 0x3) % 30) as i64;
        let started = self.completed_at - jiff::SignedDuration::from_mins(minutes);
        // A run's comment approves the run `APPROVAL_LEAD` later when that one is approved.
        let approved = run + APPROVAL_LEAD;
        let approves = phase == Phase::Comment && self.kind(approved) == RunKind::ApprovedFork;
        let head_of_run = self.head_of(run);
        let (head, pull, repository) = if approves {
            let (repository, _) = self.run_of(approved);
            (
                self.head_of(approved),
                Traffic::pull_of(approved),
                repository,
            )
        } else {
            (head_of_run.clone(), Traffic::pull_of(run), repo)
        };
        let values = [
            repository,
            (1_000_000_000 + run).to_string(),
            (2_000_000_000 + run).to_string(),
            label,
            started.to_string(),
            self.completed_at.to_string(),
            head.clone(),
            format!("{}/proj{project}-feedstock", OUTSIDER.0),
            pull.to_string(),
            (3_000_000_000 + run).to_string(),
        ];
        let template = match (phase, kind) {
            (Phase::Run, RunKind::Push) => Template::Run,
            (Phase::Run, _) => Template::ForkRun,
            (Phase::Queued, _) => Template::Queued,
            (Phase::InProgress, _) => Template::InProgress,
            (Phase::Completed, _) => Template::Completed,
            (Phase::Comment, _) if approves => Template::Approval,
            (Phase::Comment, _) => Template::Comment,
        };
        let template = &self.templates[template as usize];
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
        let decided = phase == Phase::Queued && managed;
        let outcome = match kind {
            _ if project >= GRANTED_PROJECTS => ("deny", Some("no-grant")),
            RunKind::Fork => ("deny", Some("user-not-allowed")),
            RunKind::Push | RunKind::ApprovedFork => ("allow", None),
        };
        Delivery {
            id: format!("{}-{d}", self.prefix),
            event: match phase {
                Phase::Run => "workflow_run",
                Phase::Comment => "issue_comment",
                _ => "workflow_job",
            },
            body: text.into_bytes(),
            counted_minutes: (phase == Phase::Completed && managed).then_some(minutes),
            decided,
            started: (phase == Phase::InProgress && managed).then_some(2_000_000_000 + run as i64),
            completed: (phase == Phase::Completed && managed).then_some(2_000_000_000 + run as i64),
            decision: decided.then_some((2_000_000_000 + run as i64, outcome.0, outcome.1)),
            approves: approves.then_some(head),
            after: (phase == Phase::Queued && kind == RunKind::ApprovedFork)
                .then(|| (self.run_of(run).0, head_of_run)),
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
    /// Sends that waited for the guard to record an approval before they went.
    pub waited: usize,
}

/// Whether the guard lists a run approval of `head` on `repository`
/// (`GET /api/v1/run-approvals`).
async fn approval_listed(http: &reqwest::Client, base: &str, repository: &str, head: &str) -> bool {
    let answer = http
        .get(format!(
            "{base}/api/v1/run-approvals?repository={repository}&limit=1000"
        ))
        .send()
        .await;
    let Ok(answer) = answer else { return false };
    let Ok(list) = answer.json::<Value>().await else {
        return false;
    };
    list["run_approvals"]
        .as_array()
        .is_some_and(|all| all.iter().any(|a| a["head_sha"] == json!(head)))
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
                if let Some((repository, head)) = &delivery.after {
                    let base = &targets.bases[s % targets.bases.len()];
                    let since = Instant::now();
                    while !approval_listed(&http, base, repository, head).await
                        && since.elapsed() < APPROVAL_WAIT
                    {
                        if since.elapsed() < Duration::from_millis(20) {
                            result.waited += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
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
        total.waited += r.waited;
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
    /// Job id -> the outcome and rule of the decision on each acknowledged queued managed job.
    pub outcomes: BTreeMap<i64, (&'static str, Option<&'static str>)>,
    /// The commits the acknowledged approvals approve (the approvals mix).
    pub approvals: BTreeSet<String>,
    /// What the sponsor pool spent, in millionths of a dollar (the capacity mix): the
    /// acknowledged completed jobs' minutes at the price.
    pub pool_spent: i64,
    /// Jobs acknowledged in progress and not completed (the traffic's last run may stop
    /// there): each holds a machine and its expected cost.
    pub running: i64,
}

/// The deliveries acknowledged, the decisions they must have caused, and the minutes of the
/// acknowledged completed jobs.
pub fn expected(traffic: &Traffic, acked: &HashSet<u32>) -> Expected {
    let mut e = Expected {
        deliveries: acked.len() as i64,
        ..Expected::default()
    };
    let (mut started, mut completed) = (BTreeSet::new(), BTreeSet::new());
    for &d in acked {
        let delivery = traffic.delivery(d);
        started.extend(delivery.started);
        completed.extend(delivery.completed);
        e.decisions += i64::from(delivery.decided);
        e.minutes += delivery.counted_minutes.unwrap_or(0);
        if let Some((job, outcome, rule)) = delivery.decision {
            e.outcomes.insert(job, (outcome, rule));
        }
        if let Some(head) = delivery.approves {
            e.approvals.insert(head);
        }
    }
    if traffic.mix.capacity {
        e.pool_spent = e.minutes * MICROS_PER_MINUTE;
        e.running = started.difference(&completed).count() as i64;
    }
    e
}

/// What the store holds of the mix beyond [`StoredCounts`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MixCounts {
    /// Decisions by outcome and rule (`allow`, `deny (no-grant)`, ...).
    pub outcomes: BTreeMap<String, i64>,
    /// Run approvals recorded.
    pub approvals: usize,
    /// What the sponsor pool spent and what running jobs hold of it, in millionths of a
    /// dollar.
    pub pool_spent: u64,
    pub pool_reserved: u64,
    /// Claims on capped machines that still count.
    pub holds: i64,
}

/// Checks the store against what was acknowledged; `Err` says what differs.
pub async fn verify(
    db_url: &str,
    traffic: &Traffic,
    acked: &HashSet<u32>,
) -> anyhow::Result<StoredCounts> {
    Ok(verify_mix(db_url, traffic, acked).await?.0)
}

/// [`verify`], and what the mix left in the store: each queued managed job decided as its
/// run's kind says (`allow`; `no-grant` for a project without a grant; `user-not-allowed` for
/// a fork's run nobody approved), each approval recorded once, and with `capacity` no machine
/// held and no credit reserved but by jobs still running (in progress, and their completion
/// not sent), and the pool's spending the completed jobs' minutes at the price.
pub async fn verify_mix(
    db_url: &str,
    traffic: &Traffic,
    acked: &HashSet<u32>,
) -> anyhow::Result<(StoredCounts, MixCounts)> {
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
        counts.job_minutes == want.minutes && counts.totals_agree(),
        "minutes counted: {} per job, {} per month, {} per day, {} per week; acknowledged \
         completed jobs: {}",
        counts.job_minutes,
        counts.month_minutes,
        counts.day_minutes,
        counts.week_minutes,
        want.minutes
    );
    let mut mixed = MixCounts::default();
    let decisions = store
        .decisions(&DecisionFilter {
            limit: i64::from(u32::MAX),
            ..DecisionFilter::default()
        })
        .await?;
    let mut wrong = Vec::new();
    for d in &decisions {
        let said = match &d.rule {
            Some(rule) => format!("{} ({rule})", d.outcome),
            None => d.outcome.clone(),
        };
        *mixed.outcomes.entry(said.clone()).or_default() += 1;
        let Some((outcome, rule)) = want.outcomes.get(&d.job_id) else {
            wrong.push(format!(
                "job {}: {said}, and no such job was sent",
                d.job_id
            ));
            continue;
        };
        if d.outcome != *outcome || d.rule.as_deref() != *rule {
            wrong.push(format!(
                "job {} of {}: {said}, not {outcome} {rule:?}",
                d.job_id, d.repository
            ));
        }
    }
    anyhow::ensure!(
        wrong.is_empty(),
        "{} decisions are not what the runs call for, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    if traffic.mix.approvals > 0 {
        let approvals = store
            .recent_run_approvals(None, i64::from(u32::MAX))
            .await?;
        mixed.approvals = approvals.len();
        let recorded: BTreeSet<String> = approvals
            .iter()
            .map(|a| a.approval.head_sha.clone())
            .collect();
        anyhow::ensure!(
            recorded == want.approvals && approvals.len() == want.approvals.len(),
            "{} run approvals recorded ({} commits), {} acknowledged",
            approvals.len(),
            recorded.len(),
            want.approvals.len()
        );
    }
    if traffic.mix.capacity {
        let now = time_text(jiff::Timestamp::now());
        let balance = store
            .pool_balances(&now)
            .await?
            .get(POOL)
            .copied()
            .unwrap_or_default();
        mixed.pool_spent = balance.spent;
        mixed.pool_reserved = balance.reserved;
        mixed.holds = store
            .queue_holds(&now)
            .await?
            .iter()
            .map(|(_, _, _, n)| n)
            .sum();
        anyhow::ensure!(
            balance.spent == want.pool_spent.unsigned_abs(),
            "the pool spent {} millionths, the acknowledged completed jobs cost {}",
            balance.spent,
            want.pool_spent
        );
        let reserved = want.running.unsigned_abs() * MAX_JOB_MINUTES * MICROS_PER_MINUTE as u64;
        anyhow::ensure!(
            balance.reserved == reserved && mixed.holds == want.running,
            "{} machines are held and {} millionths of the pool reserved, and the {} jobs still \
             running hold {} and {reserved}: the rest are held by jobs that completed",
            mixed.holds,
            balance.reserved,
            want.running,
            want.running,
        );
    }
    Ok((counts, mixed))
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

    /// In the full mix each run has five deliveries; an approval names the commit, pull
    /// request and repository of the run it approves, and that run's queued job waits for it;
    /// a fork's run comes from the outsider's fork with that commit.
    #[test]
    fn the_mix_approves_the_run_it_names() {
        let mix = Mix {
            capacity: true,
            approvals: 5,
        };
        let traffic = Traffic::with_mix(5000, 0, "m", mix).unwrap();
        let mut approvals = 0;
        for d in 0..5000u32 {
            let delivery = traffic.delivery(d);
            let body = String::from_utf8(delivery.body.clone()).unwrap();
            assert!(MARKS.iter().all(|m| !body.contains(m)), "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            let run = u64::from(d / 5);
            match d % 5 {
                2 => assert_eq!(v["action"], "in_progress"),
                4 => assert_eq!(delivery.event, "issue_comment"),
                _ => {}
            }
            if let Some(head) = &delivery.approves {
                approvals += 1;
                let approved = run + APPROVAL_LEAD;
                assert_eq!(traffic.kind(approved), RunKind::ApprovedFork);
                assert_eq!(&traffic.head_of(approved), head);
                assert_eq!(
                    v["comment"]["body"].as_str().unwrap(),
                    format!("Read it, fine.\n/gatehouse run {head}")
                );
                assert_eq!(
                    v["repository"]["full_name"],
                    json!(traffic.run_of(approved).0)
                );
                assert_eq!(v["issue"]["number"], json!(approved + 1));
                assert_eq!(v["comment"]["user"]["id"], json!(ACTOR.1));
                let queued = traffic.delivery(approved as u32 * 5 + 1);
                assert_eq!(
                    queued.after,
                    Some((traffic.run_of(approved).0, head.clone()))
                );
                assert_eq!(queued.decision.unwrap().1, "allow");
                let fork_run: Value =
                    serde_json::from_slice(&traffic.delivery(approved as u32 * 5).body).unwrap();
                assert_eq!(fork_run["workflow_run"]["head_sha"], json!(head));
                assert_eq!(fork_run["workflow_run"]["event"], "pull_request");
                assert_eq!(
                    fork_run["workflow_run"]["head_repository"]["owner"]["id"],
                    json!(OUTSIDER.1)
                );
            }
        }
        assert!(approvals > 10, "{approvals}");
        // The plain mix is as it was: three deliveries a run, nothing waits.
        let plain = Traffic::new(30, 0, "p").unwrap();
        assert!((0..30).all(|d| plain.delivery(d).after.is_none()));
        assert_eq!(plain.delivery(3).event, "workflow_run");
    }
}
