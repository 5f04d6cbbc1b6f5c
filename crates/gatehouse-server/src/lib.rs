//! `gatehouse serve`: the runtime guard.
//!
//! Providers check access only per repository (some not at all per person), so the guard
//! checks every job itself. It receives the organisation's GitHub webhooks, stores each
//! delivery durably before answering, remembers the context of each workflow run, decides
//! every queued job with [`gatehouse_policy::Policy::decide`], cancels denied runs (or only
//! records them in dry-run mode) and explains why on the commit, and counts the minutes of
//! finished jobs so that quotas can be enforced.
//!
//! What it is not: it does not change the access repository or the providers' settings (that
//! is `gatehouse apply`), and it holds no rules of its own: every rule lives in the policy
//! crate.
//!
//! The entry points are [`serve`] for the command line and [`AppState::new`] + [`router`] for
//! tests and embedding.

mod api;
mod events;
mod github;
mod guard;
mod state;
mod store;
mod webhook;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use gatehouse_core::model::GuardMode;
pub use state::AppState;
pub use store::Store;

/// The largest webhook body GitHub sends is 25 MiB; anything larger is not from GitHub.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// Everything `serve` needs, filled in by the command line.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The access repository (a directory), loaded at start and on `POST /admin/reload`.
    pub repo_dir: PathBuf,
    pub listen: SocketAddr,
    /// `sqlite://path.db` (created when missing) or `postgres://...`.
    pub db_url: String,
    /// The secret GitHub signs webhook deliveries with.
    pub webhook_secret: Secret,
    /// A token to read runs and permissions and to cancel runs. Without one the guard can
    /// only decide from what webhooks carry and cannot cancel.
    pub github_token: Option<Secret>,
    /// The REST API's base URL (`https://api.github.com`, or GitHub Enterprise's, or a fake).
    pub github_api: String,
    /// `None`: the access repository's `guard.mode`. `Some`: overrides it.
    pub mode: Option<GuardMode>,
    /// The bearer token of `/admin/*`; without one, admin endpoints answer 404.
    pub admin_token: Option<Secret>,
    /// How long a person's permission on a repository is trusted before it is asked again.
    pub permission_ttl: Duration,
}

impl ServerConfig {
    /// A configuration with the usual defaults for everything but what has none.
    pub fn new(
        repo_dir: impl Into<PathBuf>,
        db_url: impl Into<String>,
        webhook_secret: Secret,
    ) -> Self {
        ServerConfig {
            repo_dir: repo_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            db_url: db_url.into(),
            webhook_secret,
            github_token: None,
            github_api: "https://api.github.com".into(),
            mode: None,
            admin_token: None,
            permission_ttl: Duration::from_secs(300),
        }
    }
}

/// A secret string (webhook secret, token). `Debug` and `Display` hide it, so it cannot end
/// up in a log line or an error message.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().trim().to_string())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The HTTP routes over one shared state.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/webhook", post(webhook::receive))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/api/v1/decisions", get(api::decisions))
        .route("/api/v1/usage", get(api::usage))
        .route("/admin/reload", post(api::reload))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Runs the guard on `config.listen` until SIGTERM or ctrl-c, then stops accepting
/// connections and lets the requests in flight finish (a delivery being stored or decided is
/// not cut off).
pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    serve_on(listener, config, shutdown_signal()).await
}

/// [`serve`] on a listener the caller bound (`config.listen` is not used) until `shutdown`
/// completes, then drains the requests in flight. For tests and embedding.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(config).await?;
    let addr = listener
        .local_addr()
        .context("the listener has no address")?;
    tracing::info!(%addr, mode = ?state.mode(), "gatehouse guard listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("the HTTP server failed")?;
    tracing::info!("gatehouse guard stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
