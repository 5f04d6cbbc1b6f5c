//! The guard's shared state: configuration, store, GitHub client, the current policy and the
//! role facts. One `Arc<AppState>` is shared by every request.
//!
//! It is made of plain parts only (the store, the facts, what the access repository says):
//! the code that handles requests and events takes `&AppState`, and nothing here calls it.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use gatehouse_core::model::GuardMode;
use gatehouse_core::outliers::Outlier;
use gatehouse_github::{Client, Service, Settings};
use gatehouse_policy::SharedPolicy;
use jiff::Timestamp;
use jiff::civil::Date;

use crate::ServerConfig;
use crate::clock::later;
use crate::explanation::Explanation;
use crate::facts::RoleFacts;
use crate::metrics::Metrics;
use crate::signed_snapshot::Signed;
use crate::site_cache::SiteCache;
use crate::source::{Source, fingerprint, load_policy};
use crate::store::Store;
use crate::team_facts::TeamFacts;
use crate::waiting::Waiting;

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
    pub(crate) snapshot: Mutex<Option<Signed>>,
    /// Bytes of webhook bodies not verified yet, shared by every request
    /// ([`crate::Limits::unverified_body_bytes`]).
    pub(crate) unverified: Arc<tokio::sync::Semaphore>,
    /// Where denials' explanations wait their turn ([`crate::guard::spawn_explainer`]).
    pub(crate) explainer: std::sync::OnceLock<tokio::sync::mpsc::Sender<Explanation>>,
    /// This state, for the tasks it starts (it lives in an `Arc`).
    me: Weak<AppState>,
    /// The last catch-up pass, when catching up is on.
    catch_up: Mutex<Option<CatchUpReport>>,
    /// The rendered ledger and the dashboard's figures ([`crate::site_routes`]).
    pub(crate) site_cache: SiteCache,
    /// This week's outliers as last read ([`crate::outliers::cached`]): when, for which day.
    pub(crate) outliers: tokio::sync::Mutex<Option<OutliersRead>>,
    /// The access repository's [`fingerprint`] taken just before the first load: the watcher
    /// ([`crate::reload`]) starts from it, so a change made between that load and the
    /// watcher's first look is still seen.
    pub(crate) loaded_fingerprint: u64,
}

/// This week's outliers as read: when, for which day.
pub(crate) type OutliersRead = (Instant, Date, Arc<Vec<Outlier>>);

/// What `/healthz` reports about the policy.
#[derive(Clone, Debug)]
pub(crate) struct PolicyStatus {
    pub loaded_at: Timestamp,
    /// The access repository's `guard.mode`, as of the last good load.
    pub repo_mode: GuardMode,
    pub last_reload_error: Option<String>,
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
