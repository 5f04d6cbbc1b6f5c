//! The guard's shared state: configuration, store, GitHub client, the current policy and the
//! role facts. One `Arc<AppState>` is shared by every request.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::Context;
use gatehouse_core::check;
use gatehouse_core::model::GuardMode;
use gatehouse_core::model::OnUnreachable;
use gatehouse_core::repo::load_dir;
use gatehouse_gate::snapshot::Pool;
use gatehouse_github::{Client, Service, Settings};
use gatehouse_policy::{Policy, PolicySource, SharedPolicy, compile_source};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::ServerConfig;
use crate::facts::RoleFacts;
use crate::metrics::Metrics;
use crate::pending::Waiting;
use crate::store::Store;
use crate::team_facts::TeamFacts;

pub struct AppState {
    pub(crate) config: ServerConfig,
    pub(crate) store: Store,
    pub(crate) metrics: Metrics,
    /// `None` without a token: then the guard calls GitHub not at all.
    pub(crate) github: Option<Arc<Client>>,
    pub(crate) policy: SharedPolicy,
    pub(crate) status: Mutex<PolicyStatus>,
    /// Who holds which role on each granted project's repository.
    pub(crate) facts: RoleFacts,
    /// Who is in each team a grant names.
    pub(crate) team_facts: TeamFacts,
    /// The deliveries this process waits on.
    pub(crate) waiting: Waiting,
    /// What the current policy was compiled from (for snapshots), swapped with it.
    pub(crate) source: arc_swap::ArcSwap<Source>,
    /// The last signed snapshot, while it is current.
    pub(crate) snapshot: Mutex<Option<crate::gate::Signed>>,
    /// Bytes of webhook bodies not verified yet, shared by every request
    /// ([`crate::Limits::unverified_body_bytes`]).
    pub(crate) unverified: Arc<tokio::sync::Semaphore>,
    /// Where denials' explanations wait their turn ([`crate::guard::spawn_explainer`]).
    pub(crate) explainer: std::sync::OnceLock<tokio::sync::mpsc::Sender<crate::guard::Explanation>>,
    /// This state, for the tasks it starts (it lives in an `Arc`).
    me: Weak<AppState>,
    /// The last catch-up pass, when catching up is on.
    catch_up: Mutex<Option<CatchUpReport>>,
    /// The rendered ledger and the dashboard's figures ([`crate::site_routes`]).
    pub(crate) site_cache: crate::site_routes::SiteCache,
    /// This week's outliers as last read ([`crate::outliers::cached`]): when, for which day.
    pub(crate) outliers: tokio::sync::Mutex<Option<crate::outliers::Read>>,
    /// The access repository's [`fingerprint`] taken just before the first load: the watcher
    /// starts from it, so a change made between that load and the watcher's first look is
    /// still seen.
    loaded_fingerprint: u64,
}

/// What `/healthz` reports about the policy.
#[derive(Clone, Debug)]
pub(crate) struct PolicyStatus {
    pub loaded_at: Timestamp,
    /// The access repository's `guard.mode`, as of the last good load.
    pub repo_mode: GuardMode,
    pub last_reload_error: Option<String>,
}

/// A repository that loaded and passed `check`, compiled.
pub(crate) struct Loaded {
    pub policy: Policy,
    pub mode: GuardMode,
    /// What the policy was compiled from, and the runner pools: what a snapshot carries.
    pub source: Arc<Source>,
}

/// What the current policy was compiled from, and the runner pools of `gatehouse.yml`.
#[derive(Debug, Default)]
pub(crate) struct Source {
    pub policy: PolicySource,
    pub pools: Vec<Pool>,
    /// The concurrency caps (not in snapshots: only the guard counts jobs).
    pub caps: crate::caps::Caps,
    /// `run_approvals:` of `gatehouse.yml` (the phrase, the runs and hours an approval gives).
    pub run_approvals: gatehouse_core::model::RunApprovalSettings,
    /// Each resource's job time limit (not in snapshots: only the guard times jobs).
    pub time_limits: crate::time_limits::TimeLimits,
    /// When a project's use is flagged as far above its usual (`guard.outliers`).
    pub outliers: gatehouse_core::model::OutlierSettings,
    /// Sponsor credit pools (`pools/*.yml`; not in snapshots: only the guard keeps their books).
    pub credit: crate::credit::CreditPools,
}

impl AppState {
    /// Opens (and migrates) the store and loads the access repository. Fails when the
    /// repository does not pass `check`: a guard must not start on a policy nobody checked.
    pub async fn new(config: ServerConfig) -> anyhow::Result<Arc<AppState>> {
        let store = Store::connect(&config.db_url).await?;
        let github = match &config.github_token {
            None => None,
            Some(token) => {
                let base = config
                    .github_api
                    .parse()
                    .ok()
                    .filter(|u: &gatehouse_github::Url| {
                        matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base()
                    })
                    .with_context(|| {
                        format!(
                            "the GitHub API must be an http(s) URL, got `{}`",
                            config.github_api
                        )
                    })?;
                let settings = Settings {
                    service: Service::GitHub,
                    base_url: base,
                    mutation_spacing: config.mutation_spacing,
                    // The guard answers webhooks: a request waits no longer than this, and a
                    // fact's own deadline bounds its retries.
                    request_timeout: Duration::from_secs(10),
                    connect_timeout: Duration::from_secs(5),
                    backoff_base: Duration::from_millis(200),
                    ..Settings::default()
                };
                Some(Arc::new(Client::new(token.clone(), settings)?))
            }
        };
        let dir = config.repo_dir.clone();
        let loaded_fingerprint = tokio::task::spawn_blocking(move || fingerprint(&dir))
            .await
            .unwrap_or(0);
        let loaded = load_policy(config.repo_dir.clone())
            .await
            .with_context(|| {
                format!(
                    "cannot start on the access repository {}",
                    config.repo_dir.display()
                )
            })?;
        if github.is_none() {
            tracing::warn!(
                "no GitHub token: the guard calls GitHub not at all. It decides only what needs no role (jobs that need one are denied facts-unavailable), waits for runs' own workflow_run events, and cancels nothing"
            );
        }
        let status = PolicyStatus {
            loaded_at: Timestamp::now(),
            repo_mode: loaded.mode,
            last_reload_error: None,
        };
        let unverified = config
            .limits
            .unverified_body_bytes
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        Ok(Arc::new_cyclic(|me| AppState {
            config,
            store,
            metrics: Metrics::new(),
            github,
            policy: SharedPolicy::new(loaded.policy),
            status: Mutex::new(status),
            facts: RoleFacts::default(),
            team_facts: TeamFacts::default(),
            waiting: Waiting::default(),
            source: arc_swap::ArcSwap::new(loaded.source.clone()),
            snapshot: Mutex::new(None),
            unverified: Arc::new(tokio::sync::Semaphore::new(unverified)),
            explainer: std::sync::OnceLock::new(),
            me: me.clone(),
            catch_up: Mutex::new(None),
            outliers: tokio::sync::Mutex::new(None),
            site_cache: Default::default(),
            loaded_fingerprint,
        }))
    }

    /// Loads the access repository again. A repository that fails `check` leaves the current
    /// policy in place; the reason is logged, kept for `/healthz` and returned.
    pub async fn reload(&self) -> Result<(), String> {
        match load_policy(self.config.repo_dir.clone()).await {
            Ok(loaded) => {
                self.policy.store(loaded.policy);
                self.source.store(loaded.source);
                {
                    let mut status = self.status();
                    status.loaded_at = Timestamp::now();
                    status.repo_mode = loaded.mode;
                    status.last_reload_error = None;
                }
                tracing::info!("policy reloaded");
                // Projects granted since need their roles; the ledger's pages render again.
                if let Some(state) = self.me() {
                    let warm = state.clone();
                    tokio::spawn(
                        async move { crate::pending::refresh_granted(&state, None).await },
                    );
                    tokio::spawn(async move { crate::site_routes::warm(&warm).await });
                }
                Ok(())
            }
            Err(e) => {
                let reason = format!("{e:#}");
                tracing::error!(reason, "reload refused; keeping the previous policy");
                self.status().last_reload_error = Some(reason.clone());
                Err(reason)
            }
        }
    }

    /// The store, for embedding (a dashboard reading usage through its public functions).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn catch_up_report(&self) -> std::sync::MutexGuard<'_, Option<CatchUpReport>> {
        self.catch_up.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn status(&self) -> std::sync::MutexGuard<'_, PolicyStatus> {
        // A panic while holding this lock leaves plain data behind; it is still usable.
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enforce or dry-run: the configuration's choice, else the access repository's.
    pub(crate) fn mode(&self) -> GuardMode {
        self.config.mode.unwrap_or_else(|| self.status().repo_mode)
    }

    /// This state as an `Arc`, for a task to hold; `None` once it is being dropped.
    pub(crate) fn me(&self) -> Option<Arc<AppState>> {
        self.me.upgrade()
    }

    /// The deadline of a fact first looked for now.
    pub(crate) fn fresh_deadline(&self) -> Timestamp {
        later(Timestamp::now(), self.config.facts_deadline)
    }
}

/// `t` plus `d`, or the end of time.
pub(crate) fn later(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Today in UTC: the day decisions (expiry) and minutes are judged on.
pub(crate) fn today() -> Date {
    TimeZone::UTC.to_datetime(Timestamp::now()).date()
}

/// Loads, checks and compiles the repository, off the async threads (it reads files).
pub(crate) async fn load_policy(dir: impl AsRef<Path> + Send + 'static) -> anyhow::Result<Loaded> {
    tokio::task::spawn_blocking(move || {
        let dir = dir.as_ref();
        let repo = load_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        let today = today();
        let diags = check::run_all(&repo, today);
        if diags.has_errors() {
            let errors = diags.errors();
            let first: Vec<String> = diags
                .sorted()
                .into_iter()
                .filter(|d| d.severity == gatehouse_core::Severity::Error)
                .take(5)
                .map(|d| format!("{}: {}", d.location(), d.message))
                .collect();
            anyhow::bail!(
                "the access repository fails `gatehouse check` with {} error(s): {}",
                errors,
                first.join("; ")
            );
        }
        let mode = repo
            .settings
            .as_ref()
            .map_or_else(GuardMode::default, |s| s.value.guard.mode);
        let policy = PolicySource::from_repo(&repo);
        let pools = repo
            .settings
            .iter()
            .flat_map(|s| s.value.gate.pools.iter())
            .map(|(name, p)| Pool {
                name: name.clone(),
                resource: p.resource.value.clone(),
                allow_when_unreachable: p.on_unreachable.value == OnUnreachable::Allow,
            })
            .collect();
        let caps = crate::caps::Caps::from_repo(&repo);
        let run_approvals = repo
            .settings
            .as_ref()
            .map(|s| s.value.run_approvals.clone())
            .unwrap_or_default();
        let time_limits = crate::time_limits::TimeLimits::from_repo(&repo);
        let credit = crate::credit::CreditPools::from_repo(&repo);
        Ok(Loaded {
            policy: compile_source(&policy, today),
            mode,
            source: Arc::new(Source {
                policy,
                pools,
                caps,
                run_approvals,
                time_limits,
                outliers: repo
                    .settings
                    .as_ref()
                    .map(|s| s.value.guard.outliers.clone())
                    .unwrap_or_default(),
                credit,
            }),
        })
    })
    .await
    .context("the policy loader panicked")?
}

/// Watches the access repository and reloads the policy when its files change: every
/// `interval` it compares a fingerprint of the files the policy is read from (YAML, CODEOWNERS: path, size, modification time;
/// `.git` left out), and reloads once a change has held still for one more interval, so a checkout
/// half-way through writing is not read. Polling works on every file system (bind mounts,
/// network disks) and costs one `stat` per file per interval. Ends when the state is dropped.
pub(crate) fn spawn_watcher(state: &Arc<AppState>, interval: Duration) {
    let weak: Weak<AppState> = Arc::downgrade(state);
    let dir = state.config.repo_dir.clone();
    let mut seen = state.loaded_fingerprint;
    tokio::spawn(async move {
        let fingerprint = |dir: std::path::PathBuf| async move {
            tokio::task::spawn_blocking(move || fingerprint(&dir))
                .await
                .unwrap_or(0)
        };
        let mut pending = false;
        loop {
            tokio::time::sleep(interval).await;
            let Some(state) = weak.upgrade() else { return };
            let now = fingerprint(dir.clone()).await;
            if now != seen {
                // Changed since the last look: wait for it to hold still.
                seen = now;
                pending = true;
                continue;
            }
            if pending {
                pending = false;
                tracing::info!(dir = %dir.display(), "the access repository changed: reloading");
                // A refused reload is logged and shown in /healthz by `reload` itself.
                let _ = state.reload().await;
            }
        }
    });
}

/// A hash of every YAML and CODEOWNERS file's path, size and modification time under `dir`, `.git` left out.
fn fingerprint(dir: &Path) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut entries = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            if e.file_name() == ".git" {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            let path = e.path();
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "yml" || x == "yaml")
                || e.file_name() == "CODEOWNERS"
            {
                // Only what the policy is read from (YAML, CODEOWNERS): a store kept in the
                // same folder (`gatehouse serve .` with the default `sqlite://gatehouse.db`)
                // changes all the time and must not cause reloads.
                entries.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    entries.sort();
    entries.hash(&mut hasher);
    hasher.finish()
}

/// What one catch-up pass ([`crate::catchup`]) found and did, for `/healthz` and
/// `POST /admin/catch-up`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CatchUpReport {
    pub at: String,
    /// Deliveries of the events the guard uses that GitHub listed in the window.
    pub listed: usize,
    /// Of those, how many the store did not hold.
    pub missing: usize,
    /// How many of the missing GitHub was asked to send again.
    pub redelivered: usize,
    /// The pass stopped at its page limit before reaching its start: older deliveries were
    /// not looked at.
    pub truncated: bool,
    /// Why the pass stopped short, if it did (a token without access to the hook, say).
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_policy_files_count_as_a_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("grants")).unwrap();
        std::fs::write(dir.path().join("grants/a.yml"), "project: a\n").unwrap();
        let before = fingerprint(dir.path());
        std::fs::write(dir.path().join("gatehouse.db"), "store").unwrap();
        std::fs::write(dir.path().join("gatehouse.db-wal"), "wal").unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/x.yml"), "git's own").unwrap();
        assert_eq!(fingerprint(dir.path()), before);
        std::fs::write(dir.path().join("grants/a.yml"), "project: a\ngrants: []\n").unwrap();
        assert_ne!(fingerprint(dir.path()), before);
        let after = fingerprint(dir.path());
        std::fs::create_dir_all(dir.path().join(".github")).unwrap();
        std::fs::write(dir.path().join(".github/CODEOWNERS"), "* @core\n").unwrap();
        assert_ne!(fingerprint(dir.path()), after);
    }
}
