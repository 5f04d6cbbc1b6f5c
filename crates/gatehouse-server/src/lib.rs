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
//! Robustness: each delivery is stored before it is answered 2xx and its effects are committed
//! with its processed mark, so a delivery stored but not processed when the process died is
//! processed at the next start; SQLite writes are group-committed by one writer thread. Requests
//! have a timeout, the requests in flight and the open connections are bounded, request heads
//! are limited in size and must arrive in time. The access repository is watched and reloaded
//! when it changes (a reload that fails `check` keeps the old policy). `/metrics` serves
//! Prometheus counters and histograms.
//!
//! The entry points are [`serve`] for the command line and [`AppState::new`] + [`router`] for
//! tests and embedding; [`store::Store`]'s read functions serve dashboards.

mod api;
mod caps;
pub mod catchup;
mod claims;
mod clock;
mod credit;
pub mod events;
mod explanation;
mod fact_cache;
mod facts;
pub mod gate;
mod guard;
#[doc(hidden)]
mod metrics;
mod outliers;
mod pending;
mod pool_pages;
mod queue;
mod reload;
pub mod replay;
mod run_approvals;
mod scrape;
mod signed_snapshot;
mod site_cache;
mod site_routes;
mod source;
mod state;
pub mod store;
pub mod stored_site;
mod team_facts;
/// The integration tests' fresh database per test (a SQLite file, or a PostgreSQL database
/// dropped after), for unit tests that run on both.
#[cfg(test)]
#[path = "../tests/it/db.rs"]
mod test_db;
mod time_limits;
mod waiting;
mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;

pub use catchup::CatchUp;
pub use events::{Event, parse_event};
pub use gate::GateConfig;
pub use gatehouse_core::model::GuardMode;
pub use gatehouse_github::Secret;
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
    /// A token to read runs and roles and to cancel runs. Without one the guard calls GitHub
    /// not at all: it decides only what needs no role and cancels nothing.
    pub github_token: Option<Secret>,
    /// The REST API's base URL (`https://api.github.com`, or GitHub Enterprise's, or a fake).
    pub github_api: String,
    /// `None`: the access repository's `guard.mode`. `Some`: overrides it.
    pub mode: Option<GuardMode>,
    /// The bearer token of `/admin/*`; without one, admin endpoints answer 404.
    pub admin_token: Option<Secret>,
    /// How long a repository's role facts are decided on before they are fetched again
    /// (webhooks make them stale sooner when roles change).
    pub facts_ttl: Duration,
    /// How long a job waits for a missing fact (its run, the roles) before it is denied
    /// `facts-unavailable`.
    pub facts_deadline: Duration,
    /// The least time between two mutating GitHub calls other than cancellations (GitHub's
    /// advice against its secondary rate limits).
    pub mutation_spacing: Duration,
    /// How often the access repository is looked at for changes (reloaded when it changed);
    /// `None`: only on `POST /admin/reload`.
    pub watch_interval: Option<Duration>,
    pub limits: Limits,
    /// Ask GitHub to send again the deliveries the guard missed (see [`catchup`]); `None`:
    /// off.
    pub catch_up: Option<CatchUp>,
    /// Admissions and snapshots for runners' gates (see [`gate`]); `None`: off.
    pub gate: Option<GateConfig>,
    /// The sweep of claims on capped machines (`caps.rs`): how often it runs, and how old a
    /// claim is before GitHub is asked whether its job still runs.
    pub holds_sweep: HoldsSweep,
    /// How the guard acts on jobs' time limits (`time_limits.rs`).
    pub time_limits: TimeLimits,
    /// How often the guard looks whether a sponsor pool reached an alert threshold
    /// (`credit.rs`).
    pub pool_alerts_every: Duration,
}

/// How often the guard looks for jobs over their time limit, and how long a replica holds a
/// due one before another may act on it ([`ServerConfig::time_limits`]).
#[derive(Clone, Copy, Debug)]
pub struct TimeLimits {
    pub every: Duration,
    pub lease: Duration,
}

impl Default for TimeLimits {
    fn default() -> Self {
        TimeLimits {
            every: time_limits::EVERY,
            lease: time_limits::LEASE,
        }
    }
}

/// When the sweep of claims on capped machines runs ([`ServerConfig::holds_sweep`]).
#[derive(Clone, Copy, Debug)]
pub struct HoldsSweep {
    pub every: Duration,
    pub after: Duration,
}

impl Default for HoldsSweep {
    fn default() -> Self {
        HoldsSweep {
            every: caps::SWEEP_EVERY,
            after: caps::SWEEP_AFTER,
        }
    }
}

/// What one client, or many, may ask of the server before being cut off or turned away.
#[derive(Clone, Debug)]
pub struct Limits {
    /// A request (body read, stored, processed) that takes longer is answered 503. Processing
    /// goes on in the background, so a delivery that was stored is still processed.
    pub request_timeout: Duration,
    /// A client that has not sent a request's headers within this time is disconnected (slow
    /// clients must not hold connections).
    pub header_read_timeout: Duration,
    /// The most bytes a request's head (request line and headers) may take; larger is
    /// answered 431.
    pub max_header_bytes: usize,
    /// Open connections at most; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Requests handled at once at most; more are answered 503 at once (GitHub redelivers).
    pub max_in_flight: usize,
    /// The bytes of webhook bodies whose signature is not checked yet, all requests together:
    /// beyond it, further bodies are refused (503) until some are verified or dropped.
    pub unverified_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // GitHub itself gives up on a delivery after 10 s.
            request_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            max_connections: 2048,
            max_in_flight: 1024,
            unverified_body_bytes: 64 * 1024 * 1024,
        }
    }
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
            facts_ttl: Duration::from_secs(3600),
            facts_deadline: Duration::from_secs(60),
            mutation_spacing: Duration::from_secs(1),
            watch_interval: Some(Duration::from_secs(2)),
            limits: Limits::default(),
            catch_up: None,
            gate: None,
            holds_sweep: HoldsSweep::default(),
            time_limits: TimeLimits::default(),
            pool_alerts_every: credit::ALERT_EVERY,
        }
    }
}

/// The HTTP routes over one shared state, with the request limits of its configuration.
pub fn router(state: Arc<AppState>) -> Router {
    let limits = state.config.limits.clone();
    Router::new()
        .route("/webhook", post(webhook::receive))
        .route("/metrics", get(scrape::metrics))
        .route("/api/v1/decisions", get(api::decisions))
        .route("/api/v1/usage", get(api::usage))
        .route("/api/v1/run-approvals", get(run_approvals::list_api))
        .route("/api/v1/admission", post(gate::admission))
        .route("/api/v1/snapshot", get(gate::snapshot))
        .route("/admin/reload", post(api::reload))
        .route("/admin/catch-up", post(api::catch_up))
        .merge(site_routes::routes())
        .fallback(site_routes::no_such_page)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            ServiceBuilder::new()
                // Over the limit of requests in flight: answer at once instead of queueing
                // without bound.
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [("retry-after", "1")],
                        axum::Json(serde_json::json!({
                            "message": "too many requests in flight; retry shortly"
                        })),
                    )
                        .into_response()
                }))
                .load_shed()
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    limits.max_in_flight,
                ))
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    limits.request_timeout,
                )),
        )
        // Added after the limits, so outside them: a health check answers even when the
        // guard sheds load, and a load balancer does not take an overloaded replica for a
        // dead one.
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
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
///
/// Before it answers anything, it processes the deliveries a previous run stored but did not
/// process (it was killed in between).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(config).await?;
    let _ = state.explainer.set(guard::spawn_explainer(&state));
    let recovered = guard::recover(&state)
        .await
        .context("cannot process the deliveries stored before the last stop")?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "processed deliveries that were stored but not processed before the last stop"
        );
    }
    pending::spawn_upkeep(&state);
    {
        let state = state.clone();
        tokio::spawn(async move { site_routes::warm(&state).await });
    }
    caps::spawn_sweep(&state);
    time_limits::spawn(&state);
    credit::spawn(&state, state.config.pool_alerts_every);
    if let Some(interval) = state.config.watch_interval {
        reload::spawn_watcher(&state, interval);
    }
    if let Some(catch_up) = state.config.catch_up.clone() {
        catchup::spawn(&state, catch_up);
    }
    let addr = listener
        .local_addr()
        .context("the listener has no address")?;
    tracing::info!(%addr, mode = ?state.mode(), "gatehouse guard listening");
    let limits = state.config.limits.clone();
    run_http(listener, router(state), &limits, shutdown).await;
    tracing::info!("gatehouse guard stopped");
    Ok(())
}

/// Accepts HTTP/1.1 connections until `shutdown`, with the connection-level limits (open
/// connections, header size, header read time), then waits for the connections to finish the
/// requests they are handling.
async fn run_http(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper refuses less than 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Idle keep-alive connections hold their place: when places run short, new
        // connections close after one request, so those waiting in the backlog get in.
        let mut http = http.clone();
        http.keep_alive(connections.available_permits() >= limits.max_connections / 4);
        let service = TowerToHyperService::new(app.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing the requests in flight");
    graceful.shutdown().await;
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
}
