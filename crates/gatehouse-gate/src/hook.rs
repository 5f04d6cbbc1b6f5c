//! What `gatehouse gate` does on the runner (its job-started hook runs it) and the runner-side
//! commands beside it (`gate keygen`, `gate fetch`, and signing a snapshot for `gatehouse
//! snapshot`).
//!
//! The runner's edge: the runner's environment, the event file, the token and key files, the
//! guard over HTTP, the serial kept on disk. What is decided, and how a snapshot is checked, is
//! in the modules beside this one. The command line parses the flags into [`GateOptions`].

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use gatehouse_policy::{PolicySource, compile_source};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::admission::{AdmissionAnswer, AdmissionRequest};
use crate::runner::{self, RunnerJob};
use crate::serves::Serves;
use crate::snapshot::{self, Opened, PublicKey, RepoRoles, SigningKey, Snapshot, SnapshotError};

/// Key and token files are short; anything bigger is a wrong path.
const MAX_SECRET_FILE: u64 = 64 * 1024;
/// The largest snapshot read.
const MAX_SNAPSHOT: u64 = 64 * 1024 * 1024;

/// How `gatehouse gate` is configured: from its flags alone, never from the job's environment.
#[derive(Clone, Debug, Default)]
pub struct GateOptions {
    /// What the runner serves: its pool (gatehouse.yml `gate.pools`), its resource, or the
    /// labels it was given at provisioning.
    pub serves: Option<Serves>,
    /// The guard's base URL.
    pub guard: Option<String>,
    /// The file holding the pool's admission token.
    pub token_file: Option<PathBuf>,
    /// The signed policy snapshot to decide from when the guard cannot be reached.
    pub snapshot: Option<PathBuf>,
    /// The public keys snapshots may be signed with.
    pub public_keys: Vec<PathBuf>,
    /// Where the newest snapshot serial seen is kept.
    pub state: Option<PathBuf>,
    /// How long to wait for the guard before deciding from the snapshot.
    pub timeout: Duration,
    /// How long a job told to wait for a concurrency slot keeps asking a guard that stopped
    /// answering before it is refused ([`UNREACHABLE_WHILE_WAITING`] by default).
    pub unreachable_wait: Duration,
    /// Say in one line what was decided, also when the job is admitted.
    pub verbose: bool,
}

/// What was decided, where, and what the person reads.
struct Verdict {
    allow: bool,
    /// `guard`, `snapshot` or `unreachable` (neither could decide).
    by: &'static str,
    rule: Option<String>,
    message: String,
    /// Why the guard did not decide, when the snapshot did.
    offline_because: Option<String>,
}

impl Verdict {
    fn refuse(by: &'static str, message: impl Into<String>) -> Verdict {
        Verdict {
            allow: false,
            by,
            rule: None,
            message: message.into(),
            offline_because: None,
        }
    }

    /// Who decided, as the person reads it.
    fn decided_by(&self) -> String {
        match (self.by, &self.offline_because) {
            ("guard", _) => "the guard".into(),
            ("snapshot", Some(why)) => format!("the runner's policy snapshot ({why})"),
            ("snapshot", None) => "the runner's policy snapshot".into(),
            _ => "the runner: neither the guard nor a usable snapshot could decide".into(),
        }
    }
}

/// Decides and tells: exit 0 for an admitted job, 1 for a refused one (GitHub then fails the
/// job before its first step).
pub fn decide(args: &GateOptions, rt: &tokio::runtime::Runtime) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let verdict = judge(args, &env, rt);
    if verdict.allow {
        if args.verbose {
            println!(
                "gatehouse admitted this job, decided by {}: {}",
                verdict.decided_by(),
                verdict.message
            );
        }
        return ExitCode::SUCCESS;
    }
    let rule = verdict
        .rule
        .as_deref()
        .map_or(String::new(), |r| format!(" ({r})"));
    eprintln!(
        "gatehouse refused this job{rule}, decided by {}: {}",
        verdict.decided_by(),
        verdict.message
    );
    // The job's summary page, where the person who started it looks.
    if let Some(summary) = env("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty())
        && let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(summary)
    {
        let _ = writeln!(
            f,
            "### gatehouse refused this job{rule}\n\n{}\n",
            verdict.message
        );
    }
    ExitCode::from(1)
}

fn judge(
    args: &GateOptions,
    env: &dyn Fn(&str) -> Option<String>,
    rt: &tokio::runtime::Runtime,
) -> Verdict {
    let Some(serves) = &args.serves else {
        return Verdict::refuse(
            "unreachable",
            "the runner names no pool, resource or labels (--pool, --resource or --labels): the gate cannot tell which resource it serves",
        );
    };
    let job = match runner::from_env(env, |path| {
        read_limited(Path::new(path), runner::MAX_EVENT_BYTES as u64)
    }) {
        Ok(job) => job,
        Err(e) => return Verdict::refuse("unreachable", e.to_string()),
    };
    let timeout = args.timeout;
    let guard_said = match (&args.guard, &args.token_file) {
        (Some(guard), Some(token_file)) => {
            ask_until_admitted(guard, token_file, &job, timeout, args.unreachable_wait, rt)
        }
        _ => Asked::Unreachable("no guard is configured".into()),
    };
    let why_offline = match guard_said {
        Asked::Answer(a) => {
            // The guard decides for the pool of the token; a runner named for another
            // resource holds another pool's token.
            if let (Serves::Resource(mine), Some(theirs)) = (serves, a.resource.as_deref())
                && !theirs.eq_ignore_ascii_case(mine)
            {
                return Verdict::refuse(
                    "guard",
                    format!(
                        "the guard decided for `{theirs}`, the resource of the pool whose token this runner holds, but the runner serves `{mine}`: its token belongs to another pool. Ask the organisation's runner admins"
                    ),
                );
            }
            return Verdict {
                allow: a.allows(),
                by: "guard",
                rule: a.rule,
                message: a.message.unwrap_or_else(|| {
                    format!("{} on {}", a.outcome, a.resource.unwrap_or_default())
                }),
                offline_because: None,
            };
        }
        Asked::Refused(message) => return Verdict::refuse("guard", message),
        Asked::Unreachable(why) => why,
    };
    let mut verdict = offline(args, serves, &job, &why_offline);
    if verdict.by == "snapshot" {
        verdict.offline_because = Some(why_offline);
    }
    verdict
}

/// What the guard said.
enum Asked {
    Answer(AdmissionAnswer),
    /// A definite refusal (a wrong token, a request about no such job): not decided offline.
    Refused(String),
    /// Not reached in time, or it could not decide: decide from the snapshot.
    Unreachable(String),
}

/// How long a job waiting for a concurrency slot keeps asking a guard that stopped answering,
/// unless `--unreachable-wait` says otherwise.
pub const UNREACHABLE_WHILE_WAITING: Duration = Duration::from_secs(60);

/// The longest pause between two questions to a guard that stopped answering.
const UNREACHABLE_PAUSE: Duration = Duration::from_secs(5);

/// The longest pause between two questions while a job waits for a concurrency slot.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Asks the guard, and asks again while it answers `wait` (a concurrency cap is reached): the
/// job holds its runner and waits for a slot; the guard says when the pool's
/// `concurrency_wait` is over (a `concurrency-exhausted` denial).
fn ask_until_admitted(
    guard: &str,
    token_file: &Path,
    job: &RunnerJob,
    timeout: Duration,
    unreachable_wait: Duration,
    rt: &tokio::runtime::Runtime,
) -> Asked {
    let started = std::time::Instant::now();
    // Asked a few times within the wait, at most every 5 s.
    let pause = (unreachable_wait / 4).clamp(Duration::from_millis(100), UNREACHABLE_PAUSE);
    // Once the guard said a cap is reached, the snapshot (which cannot count jobs) must not let
    // the job through: an unreachable guard is asked again for a while, then the job is refused.
    let mut unreachable_since: Option<std::time::Instant> = None;
    let mut told_to_wait = false;
    loop {
        let waited = started.elapsed().as_secs();
        if waited > gatehouse_core::model::gate_wait_limit_secs() {
            return Asked::Refused(format!(
                "the guard kept this job waiting for a slot for {waited}s, longer than any pool's concurrency_wait"
            ));
        }
        match ask_guard(guard, token_file, job, timeout, waited, rt) {
            Asked::Unreachable(why) if told_to_wait => {
                let since = *unreachable_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= unreachable_wait {
                    return Asked::Refused(format!(
                        "this job was waiting for a concurrency slot and the guard stopped answering for {}s ({why}); re-run it",
                        since.elapsed().as_secs()
                    ));
                }
                std::thread::sleep(pause);
            }
            Asked::Answer(a) if a.waits() => {
                told_to_wait = true;
                unreachable_since = None;
                let pause = Duration::from_secs(a.retry_after_secs.unwrap_or(5))
                    .clamp(Duration::from_secs(1), MAX_RETRY_AFTER);
                eprintln!(
                    "gatehouse: waiting for a slot ({}s so far): {}",
                    waited,
                    a.message
                        .as_deref()
                        .unwrap_or("a concurrency cap is reached")
                );
                std::thread::sleep(pause);
            }
            other => return other,
        }
    }
}

fn ask_guard(
    guard: &str,
    token_file: &Path,
    job: &RunnerJob,
    timeout: Duration,
    waited_secs: u64,
    rt: &tokio::runtime::Runtime,
) -> Asked {
    let token = match read_secret(token_file) {
        Ok(t) => t,
        Err(e) => return Asked::Refused(format!("{e:#}")),
    };
    let request = AdmissionRequest {
        repository: job.repository.clone(),
        run_id: job.run_id,
        run_attempt: job.run_attempt,
        job: job.job.clone(),
        runner_name: job.runner_name.clone(),
        waited_secs,
    };
    let url = format!("{}/api/v1/admission", guard.trim_end_matches('/'));
    let asked = async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("gatehouse-gate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let resp = client
            .post(&url)
            .bearer_auth(token.expose())
            .json(&request)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        anyhow::Ok((status, body))
    };
    match rt.block_on(asked) {
        Err(e) => Asked::Unreachable(format!(
            "the guard did not answer within {timeout:?} ({})",
            token.scrub(&format!("{e:#}"))
        )),
        Ok((status, body)) if status.is_success() => match serde_json::from_slice(&body) {
            Ok(answer) => Asked::Answer(answer),
            Err(e) => Asked::Unreachable(format!("the guard's answer does not read: {e}")),
        },
        Ok((status, _)) if status.is_server_error() => {
            Asked::Unreachable(format!("the guard could not decide ({status})"))
        }
        Ok((status, body)) => {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            Asked::Refused(format!(
                "the guard refused the request ({status}): {}",
                token.scrub(&message)
            ))
        }
    }
}

/// Decides from the snapshot; `why` says why the guard did not.
fn offline(args: &GateOptions, serves: &Serves, job: &RunnerJob, why: &str) -> Verdict {
    let bytes = match args.snapshot.as_deref() {
        None => Err("no snapshot is configured (--snapshot)".to_string()),
        Some(path) => read_limited(path, MAX_SNAPSHOT),
    };
    let opened = bytes.and_then(|b| {
        let keys = public_keys(&args.public_keys).map_err(|e| format!("{e:#}"))?;
        Ok((b, keys))
    });
    let (bytes, keys) = match opened {
        Ok(x) => x,
        Err(e) => return unusable(serves, why, None, &e),
    };
    let snapshot = match snapshot::open(&bytes, &keys) {
        Ok(s) => s,
        Err(e) => return unusable(serves, why, None, &e.to_string()),
    };
    if let Err(e) = check_snapshot(args, &snapshot, job) {
        // A snapshot that verified but may not be decided from (too old, replayed) still
        // says what the pool wants when nothing can decide.
        return unusable(serves, why, Some(&snapshot), &e);
    }
    let settings = match settings_of(serves, &snapshot) {
        Ok(s) => s,
        Err(e) => return Verdict::refuse("snapshot", e),
    };
    let settings = &settings;
    let pool = settings.name.as_str();
    let source = match snapshot.policy_for(&settings.resource) {
        Ok(source) => source,
        Err(e) => return unusable(serves, why, Some(&snapshot), &e.to_string()),
    };
    let policy = compile_source(&source, today());
    if policy.resource_by_name(&settings.resource).is_none() {
        return Verdict::refuse(
            "snapshot",
            format!(
                "the pool `{pool}` serves `{}`, which is no resource",
                settings.resource
            ),
        );
    }
    let roles = snapshot.roles_of(&job.repository);
    let (decision, message) =
        crate::offline::decide(&policy, roles.as_ref(), settings, job, today());
    Verdict {
        allow: decision.rule().is_none(),
        by: "snapshot",
        rule: decision.rule().map(|r| r.code().to_string()),
        message: message
            .unwrap_or_else(|| format!("{} on {}", decision.outcome(), settings.resource)),
        offline_because: None,
    }
}

/// Neither the guard nor the snapshot can decide: refused, unless a snapshot that verified
/// says the pool lets jobs run then.
fn unusable(serves: &Serves, why: &str, known: Option<&Opened<'_>>, e: &str) -> Verdict {
    let settings = known.and_then(|s| settings_of(serves, s).ok());
    let open = settings.as_ref().is_some_and(|p| p.allow_when_unreachable);
    let pool = settings.as_ref().map_or("", |p| p.name.as_str());
    let message = format!("{why}; and the snapshot cannot be used: {e}");
    if open {
        return Verdict {
            allow: true,
            by: "unreachable",
            rule: None,
            message: format!(
                "{message}; the pool `{pool}` lets jobs run then (on_unreachable: allow)"
            ),
            offline_because: None,
        };
    }
    Verdict::refuse(
        "unreachable",
        format!(
            "{message}. Re-run the job once the runner reaches the guard, or ask the organisation's gatehouse admins"
        ),
    )
}

/// The settings of the pool the runner serves, as the verified snapshot says them.
fn settings_of(serves: &Serves, snapshot: &Opened<'_>) -> Result<snapshot::Pool, String> {
    let resources = compile_source(&snapshot.policy_for_routing(), today());
    serves.settings(&snapshot.pools, &resources)
}

/// Whether the verified snapshot may be decided from for this job; the serial seen is raised
/// to it when it may.
fn check_snapshot(
    args: &GateOptions,
    snapshot: &Opened<'_>,
    job: &RunnerJob,
) -> Result<(), String> {
    let org = job.repository.split('/').next().unwrap_or_default();
    let seen = args.state.as_deref().map_or(0, read_serial);
    snapshot
        .check(org, Timestamp::now().as_second(), seen)
        .map_err(|e| e.to_string())?;
    if let Some(state) = &args.state
        && snapshot.serial > seen
    {
        // Best effort: a state that cannot be written leaves only replay protection weaker.
        let _ = write_atomic(state, snapshot.serial.to_string().as_bytes(), 0o644);
    }
    Ok(())
}

fn read_serial(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn public_keys(files: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    anyhow::ensure!(
        !files.is_empty(),
        "no public key is configured (--public-key): no snapshot can be trusted"
    );
    files
        .iter()
        .map(|f| {
            let text = read_limited(f, MAX_SECRET_FILE).map_err(anyhow::Error::msg)?;
            PublicKey::from_text(&String::from_utf8_lossy(&text))
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))
        })
        .collect()
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{} is larger than {limit} bytes", path.display()));
    }
    Ok(bytes)
}

fn read_secret(path: &Path) -> anyhow::Result<gatehouse_github::Secret> {
    let bytes = read_limited(path, MAX_SECRET_FILE).map_err(anyhow::Error::msg)?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("{} is not text", path.display()))?;
    anyhow::ensure!(!text.trim().is_empty(), "{} is empty", path.display());
    Ok(gatehouse_github::Secret::new(text))
}

/// Writes `path` whole or not at all (a temporary file renamed over it), with permissions
/// `mode` on Unix (a snapshot is read by the runner's account, a key by its owner alone).
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

fn today() -> Date {
    TimeZone::UTC.to_datetime(Timestamp::now()).date()
}

pub fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let (secret, public) = SigningKey::generate().map_err(anyhow::Error::msg)?;
    let key = out.join("gate-signing.key");
    anyhow::ensure!(
        !key.exists(),
        "{} exists: keep it, or move it away to make a new key",
        key.display()
    );
    write_atomic(&key, format!("{secret}\n").as_bytes(), 0o600)
        .with_context(|| format!("writing {}", key.display()))?;
    let public_file = out.join("gate-signing.pub");
    write_atomic(
        &public_file,
        format!("{}\n", public.to_text()).as_bytes(),
        0o644,
    )?;
    println!(
        "wrote {} (the guard's --gate-key; keep it secret) and {} (the runners' --public-key)",
        key.display(),
        public_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn fetch(
    guard: &str,
    token_file: &Path,
    out: &Path,
    keys: &[PathBuf],
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let token = read_secret(token_file)?;
    let trusted = public_keys(keys)?;
    let etag_file = out.with_extension("etag");
    let etag = std::fs::read_to_string(&etag_file)
        .ok()
        .filter(|_| out.exists());
    let url = format!("{}/api/v1/snapshot", guard.trim_end_matches('/'));
    let (status, new_etag, body) = rt
        .block_on(async {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?;
            let mut req = client.get(&url).bearer_auth(token.expose());
            if let Some(tag) = &etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, tag.trim());
            }
            let resp = req.send().await?;
            let status = resp.status();
            let new_etag = resp
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.bytes().await?;
            anyhow::Ok((status, new_etag, body))
        })
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot fetch the snapshot from {url}: {}",
                token.scrub(&format!("{e:#}"))
            )
        })?;
    if status == reqwest::StatusCode::NOT_MODIFIED {
        println!("the snapshot in {} is current", out.display());
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(
        status.is_success(),
        "the guard answered {status} for the snapshot: {}",
        token.scrub(
            &String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        )
    );
    // Never replace a good snapshot with one that does not verify, nor with an older one.
    let snapshot = snapshot::open(&body, &trusted)
        .map_err(|e: SnapshotError| anyhow::anyhow!("the fetched snapshot is refused: {e}"))?;
    let held = read_limited(out, MAX_SNAPSHOT)
        .ok()
        .and_then(|b| snapshot::open(&b, &trusted).ok().map(|s| s.serial))
        .unwrap_or(0);
    anyhow::ensure!(
        snapshot.serial >= held,
        "the fetched snapshot (serial {}) is older than the one in {} (serial {held}); it is refused",
        snapshot.serial,
        out.display()
    );
    write_atomic(out, &body, 0o644).with_context(|| format!("writing {}", out.display()))?;
    if let Some(tag) = new_etag {
        let _ = write_atomic(&etag_file, tag.as_bytes(), 0o644);
    }
    println!(
        "wrote {} (serial {}, {} bytes)",
        out.display(),
        snapshot.serial,
        body.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `gatehouse snapshot`: signs the repository's policy and `roles` with the key in `key_file`
/// and writes the snapshot to `out`; runners may decide from it for `max_age` (`max_age_text`
/// as the person wrote it).
pub fn write_snapshot(
    repo: &gatehouse_core::Repo,
    roles: Vec<RepoRoles>,
    key_file: &Path,
    max_age: Duration,
    max_age_text: &str,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let key = SigningKey::from_text(&String::from_utf8_lossy(
        &read_limited(key_file, MAX_SECRET_FILE).map_err(anyhow::Error::msg)?,
    ))
    .map_err(|e| anyhow::anyhow!("{}: {e}", key_file.display()))?;
    let pools = repo
        .settings
        .iter()
        .flat_map(|s| s.value.gate.pools.iter())
        .map(|(name, p)| snapshot::Pool {
            name: name.clone(),
            resource: p.resource.value.clone(),
            allow_when_unreachable: p.on_unreachable.value
                == gatehouse_core::model::OnUnreachable::Allow,
        })
        .collect();
    let now = Timestamp::now();
    let snapshot = Snapshot {
        org: repo
            .settings
            .as_ref()
            .map(|s| s.value.org.value.to_ascii_lowercase())
            .unwrap_or_default(),
        serial: u64::try_from(now.as_millisecond()).unwrap_or(0),
        created_at: now.as_second(),
        max_age_secs: max_age.as_secs(),
        policy: PolicySource::from_repo(repo),
        roles,
        pools,
    };
    let bytes = key.sign(&snapshot).map_err(anyhow::Error::msg)?;
    write_atomic(out, &bytes, 0o644).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {} ({} bytes; serial {}; {} repositories' roles; valid for {})",
        out.display(),
        bytes.len(),
        snapshot.serial,
        snapshot.roles.len(),
        max_age_text
    );
    Ok(ExitCode::SUCCESS)
}
