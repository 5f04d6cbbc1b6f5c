//! The guard's shared state: configuration, store, GitHub client, the current policy and a
//! cache of people's permissions. One `Arc<AppState>` is shared by every request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use gatehouse_core::check;
use gatehouse_core::model::GuardMode;
use gatehouse_core::repo::load_dir;
use gatehouse_policy::{Permission, Policy, SharedPolicy, compile};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::ServerConfig;
use crate::github::GitHub;
use crate::store::Store;

pub struct AppState {
    pub(crate) config: ServerConfig,
    pub(crate) store: Store,
    pub(crate) github: GitHub,
    pub(crate) policy: SharedPolicy,
    pub(crate) status: Mutex<PolicyStatus>,
    permissions: Mutex<PermissionCache>,
}

/// (lower-cased repository, lower-cased login) → the role and when GitHub was asked.
type PermissionCache = HashMap<(String, String), (Option<Permission>, Instant)>;

/// What `/healthz` reports about the policy.
#[derive(Clone, Debug)]
pub(crate) struct PolicyStatus {
    pub loaded_at: Timestamp,
    /// The access repository's `guard.mode`, as of the last good load.
    pub repo_mode: GuardMode,
    pub last_reload_error: Option<String>,
}

/// A repository that loaded and passed `check`, compiled.
struct Loaded {
    policy: Policy,
    mode: GuardMode,
}

impl AppState {
    /// Opens (and migrates) the store and loads the access repository. Fails when the
    /// repository does not pass `check`: a guard must not start on a policy nobody checked.
    pub async fn new(config: ServerConfig) -> anyhow::Result<Arc<AppState>> {
        let store = Store::connect(&config.db_url).await?;
        let github = GitHub::new(&config.github_api, config.github_token.as_ref())?;
        let loaded = load_policy(config.repo_dir.clone())
            .await
            .with_context(|| {
                format!(
                    "cannot start on the access repository {}",
                    config.repo_dir.display()
                )
            })?;
        if config.github_token.is_none() {
            tracing::warn!(
                "no GitHub token: runs whose events were missed cannot be read and denied runs cannot be cancelled"
            );
        }
        let status = PolicyStatus {
            loaded_at: Timestamp::now(),
            repo_mode: loaded.mode,
            last_reload_error: None,
        };
        Ok(Arc::new(AppState {
            config,
            store,
            github,
            policy: SharedPolicy::new(loaded.policy),
            status: Mutex::new(status),
            permissions: Mutex::new(HashMap::new()),
        }))
    }

    /// Loads the access repository again. A repository that fails `check` leaves the current
    /// policy in place; the reason is logged, kept for `/healthz` and returned.
    pub async fn reload(&self) -> Result<(), String> {
        match load_policy(self.config.repo_dir.clone()).await {
            Ok(loaded) => {
                self.policy.store(loaded.policy);
                let mut status = self.status();
                status.loaded_at = Timestamp::now();
                status.repo_mode = loaded.mode;
                status.last_reload_error = None;
                tracing::info!("policy reloaded");
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

    pub(crate) fn status(&self) -> std::sync::MutexGuard<'_, PolicyStatus> {
        // A panic while holding this lock leaves plain data behind; it is still usable.
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Enforce or dry-run: the configuration's choice, else the access repository's.
    pub(crate) fn mode(&self) -> GuardMode {
        self.config.mode.unwrap_or_else(|| self.status().repo_mode)
    }

    /// A person's role on a repository, from the cache while it is fresh, else from GitHub.
    pub(crate) async fn permission(
        &self,
        repository: &str,
        login: &str,
    ) -> anyhow::Result<Option<Permission>> {
        let key = (repository.to_lowercase(), login.to_lowercase());
        let ttl = self.config.permission_ttl;
        if let Some((p, at)) = self.cache().get(&key)
            && at.elapsed() < ttl
        {
            return Ok(*p);
        }
        let p = self.github.permission(repository, login).await?;
        let mut cache = self.cache();
        // Bounded by the people active within one TTL; dropping the stale ones keeps it so.
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        cache.insert(key, (p, Instant::now()));
        Ok(p)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, PermissionCache> {
        self.permissions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Today in UTC: the day decisions (expiry) and minutes are judged on.
pub(crate) fn today() -> Date {
    TimeZone::UTC.to_datetime(Timestamp::now()).date()
}

/// Loads, checks and compiles the repository, off the async threads (it reads files).
async fn load_policy(dir: impl AsRef<Path> + Send + 'static) -> anyhow::Result<Loaded> {
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
        Ok(Loaded {
            policy: compile(&repo, today),
            mode,
        })
    })
    .await
    .context("the policy loader panicked")?
}
