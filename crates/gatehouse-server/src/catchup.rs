//! Catching up on deliveries the guard never received.
//!
//! GitHub does not send a failed webhook delivery again by itself: while the guard was down (a
//! deploy, a crash, a network cut), the jobs queued meanwhile were never checked and their
//! minutes never counted. Given the organisation webhook's id (`--catch-up-hook`), the guard
//! reads the hook's recent deliveries from GitHub at start and then every few minutes (or on
//! `POST /admin/catch-up`), and asks GitHub to send again each delivery of an event the guard
//! consumes (jobs and runs, and the events that change roles) that its store does not hold. They arrive through `POST /webhook` like
//! any other: signed, and deduplicated by delivery id, so asking twice does no harm.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};

use crate::state::{AppState, CatchUpReport};

/// Where and how often to catch up.
#[derive(Clone, Debug)]
pub struct CatchUp {
    /// The organisation webhook that sends the guard its deliveries (the organisation is the
    /// access repository's `org`).
    pub hook_id: u64,
    /// How often to look (besides at start).
    pub every: Duration,
    /// How far back to look. GitHub keeps a hook's deliveries for three days.
    pub window: Duration,
}

impl CatchUp {
    pub fn new(hook_id: u64) -> Self {
        CatchUp {
            hook_id,
            every: Duration::from_secs(300),
            window: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// At most this many pages of 100 deliveries are read per pass (each page is one request
/// against the token's rate limit).
const MAX_PAGES: usize = 500;

/// How far before the previous pass a periodic pass looks again: deliveries GitHub lists a
/// little late are not missed.
const OVERLAP: SignedDuration = SignedDuration::from_secs(120);

/// One pass: lists the hook's deliveries since `since` (within the window; the whole window
/// when `None`), newest first, and asks for each missing one again. Failures are in the
/// report, never a panic or a stop of the guard.
pub async fn catch_up(
    state: &AppState,
    config: &CatchUp,
    since: Option<Timestamp>,
) -> CatchUpReport {
    let mut report = CatchUpReport {
        at: Timestamp::now().to_string(),
        ..CatchUpReport::default()
    };
    if let Err(e) = pass(state, config, since, &mut report).await {
        report.error = Some(format!("{e:#}"));
    }
    if report.redelivered > 0 || report.error.is_some() || report.truncated {
        tracing::warn!(
            listed = report.listed,
            missing = report.missing,
            redelivered = report.redelivered,
            truncated = report.truncated,
            error = report.error,
            "caught up on webhook deliveries"
        );
    }
    state.metrics.redeliveries(report.redelivered);
    *state.catch_up_report() = Some(report.clone());
    report
}

async fn pass(
    state: &AppState,
    config: &CatchUp,
    since: Option<Timestamp>,
    report: &mut CatchUpReport,
) -> anyhow::Result<()> {
    let Some(github) = &state.github else {
        anyhow::bail!(
            "no GitHub token: the guard cannot read the hook's deliveries (set GITHUB_TOKEN)"
        );
    };
    let org = state.policy.load().org().to_string();
    let window = SignedDuration::try_from(config.window).unwrap_or(SignedDuration::MAX);
    let window_start = Timestamp::now()
        .checked_sub(window)
        .unwrap_or(Timestamp::MIN);
    let since = since.map_or(window_start, |s| s.max(window_start));
    // Every attempt of a delivery is listed with the delivery's guid: one request per guid.
    let mut seen = HashSet::new();
    let mut wanted = Vec::new();
    let mut cursor: Option<gatehouse_github::Url> = None;
    let mut reached_start = false;
    for _ in 0..MAX_PAGES {
        let Some((page, next)) = github
            .hook_deliveries(&org, config.hook_id, cursor.as_ref())
            .await
            .with_context(|| {
                format!(
                    "cannot read the deliveries of webhook {} of {org} (the token needs the \
                     organisation's webhooks permission, admin:org_hook)",
                    config.hook_id
                )
            })?
        else {
            anyhow::bail!(
                "GitHub knows no webhook {} in {org}, or the token may not read it (it needs \
                 the organisation's webhooks permission, admin:org_hook)",
                config.hook_id
            );
        };
        let mut older = false;
        for d in page {
            if d.delivered_at < since {
                older = true;
                continue;
            }
            if consumed(&d.event) && seen.insert(d.guid.clone()) {
                wanted.push(d);
            }
        }
        match next {
            Some(next) if !older => cursor = Some(next),
            _ => {
                reached_start = true;
                break;
            }
        }
    }
    report.truncated = !reached_start;
    report.listed = wanted.len();
    let guids: Vec<String> = wanted.iter().map(|d| d.guid.clone()).collect();
    let known = state.store.known_deliveries(&guids).await?;
    let missing: Vec<_> = wanted
        .into_iter()
        .filter(|d| !known.contains(&d.guid))
        .collect();
    report.missing = missing.len();
    // Oldest first, as they happened: a run's event before its jobs'. One that cannot be
    // asked for does not hold up the others.
    let mut failed = Vec::new();
    for d in missing.iter().rev() {
        match github.redeliver(&org, config.hook_id, d.id).await {
            Ok(()) => report.redelivered += 1,
            Err(e) => failed.push(format!("{} ({}): {e:#}", d.guid, d.event)),
        }
    }
    if let Some(first) = failed.first() {
        anyhow::bail!(
            "{} of {} missed deliveries could not be asked for again; the first: {first}",
            failed.len(),
            missing.len()
        );
    }
    Ok(())
}

/// Whether the guard acts on an event: its missed deliveries are asked for again.
fn consumed(event: &str) -> bool {
    matches!(event, "workflow_job" | "workflow_run") || crate::events::ROLE_EVENTS.contains(&event)
}

/// Catches up at start (over the whole window) and then every `config.every` (since a little
/// before the previous pass that went through), for as long as the guard runs.
pub fn spawn(state: &Arc<AppState>, config: CatchUp) {
    let state = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut since: Option<Timestamp> = None;
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else {
                return;
            };
            let started = Timestamp::now();
            let report = catch_up(&state, &config, since).await;
            // A pass that failed or stopped short is not a mark to start from.
            if report.error.is_none() && !report.truncated {
                since = started.checked_sub(OVERLAP).ok();
            }
        }
    });
}
