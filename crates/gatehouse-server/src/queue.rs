//! The queue, live: `/queue` (a page), `/queue.json`, and `GET /api/v1/runs/{run_id}` (what
//! `gatehouse why` prints): per resource the jobs queued and holding machines against its caps
//! and the oldest wait, and the guard's recent decisions with their reasons; for one run,
//! every decision about its jobs and the queue of the resources they asked for. A resource's
//! usage page (`/dashboard/resources/{name}`) shows its own line, read by [`queue_now`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_site::queue::{Queue, QueueRow, RecentJob};
use gatehouse_site::render_queue;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use crate::site_cache::Rendered;
use crate::site_routes::{dashboard_page, page, site, unavailable};
use crate::state::AppState;
use crate::store::{DecisionFilter, DecisionRecord, time_text};

/// How many recent decisions the queue page lists.
const RECENT_ROWS: i64 = 50;

/// Reads the queue of every resource of the ledger, and the recent decisions.
async fn read_queue(state: &AppState, site: &Rendered) -> anyhow::Result<Queue> {
    let filter = DecisionFilter {
        limit: RECENT_ROWS,
        ..DecisionFilter::default()
    };
    let (queue, recent) =
        tokio::try_join!(queue_now(state, site), state.store().decisions(&filter))?;
    Ok(Queue {
        recent: recent.into_iter().map(recent_job).collect(),
        ..queue
    })
}

/// The queue of every resource of the ledger now, without the recent decisions: what `/queue`
/// shows per resource, and a resource's usage page of its own.
pub(crate) async fn queue_now(state: &AppState, site: &Rendered) -> anyhow::Result<Queue> {
    let now = Timestamp::now();
    let store = state.store();
    let now_text = time_text(now);
    let (jobs, holds) = tokio::try_join!(store.queue_jobs(), store.queue_holds(&now_text))?;
    let mut rows: BTreeMap<&str, QueueRow> = site
        .ledger
        .resources
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                QueueRow {
                    resource: r.name.clone(),
                    provider: r.provider.clone(),
                    ..QueueRow::default()
                },
            )
        })
        .collect();
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    for (resource, status, n, oldest) in &jobs {
        let Some(row) = rows.get_mut(resource.as_str()) else {
            continue;
        };
        if status == "queued" {
            row.queued = count(*n);
            if let Ok(at) = oldest.parse::<Timestamp>() {
                row.oldest_queued_at = Some(at.to_string());
                row.oldest_wait_minutes =
                    Some(u64::try_from(now.duration_since(at).as_mins()).unwrap_or(0));
            }
        } else {
            row.running = count(*n);
        }
    }
    let mut by_provider: BTreeMap<&str, u64> = BTreeMap::new();
    for (resource, provider, hold, n) in &holds {
        if hold == "waiting" {
            if let Some(row) = rows.get_mut(resource.as_str()) {
                row.waiting += count(*n);
            }
            continue;
        }
        *by_provider.entry(provider.as_str()).or_default() += count(*n);
        if let Some(row) = rows.get_mut(resource.as_str()) {
            row.holding += count(*n);
        }
    }
    let source = state.source.load();
    for row in rows.values_mut() {
        if let Some(caps) = source.caps.of(&row.resource) {
            row.concurrency = caps.limits.resource;
            row.project_concurrency = caps.limits.project;
            row.provider_concurrency = caps.limits.provider;
        }
        row.provider_holding = by_provider.get(row.provider.as_str()).copied().unwrap_or(0);
        // Without a cap nothing is claimed: what holds a machine is what runs.
        if row.concurrency.is_none() && row.provider_concurrency.is_none() {
            row.holding = row.holding.max(row.running);
        }
    }
    Ok(Queue {
        at: now.to_string(),
        resources: rows.into_values().collect(),
        recent: Vec::new(),
    })
}

pub(crate) fn recent_job(d: DecisionRecord) -> RecentJob {
    RecentJob {
        decided_at: d.decided_at,
        repository: d.repository,
        project: d.project,
        resource: d.resource,
        job_id: d.job_id,
        run_id: d.run_id,
        outcome: d.outcome,
        rule: d.rule,
        message: d.message,
        origin: d.origin,
    }
}

/// `/queue`.
pub(crate) async fn queue_page(State(state): State<Arc<AppState>>) -> Response {
    let site = match site(&state).await {
        Ok(s) => s,
        Err(e) => return unavailable("cannot render the ledger", e),
    };
    let q = match read_queue(&state, &site).await {
        Ok(q) => q,
        Err(e) => return unavailable("cannot read the queue", e),
    };
    let date = site.day.to_string();
    match render_queue(&q, &dashboard_page(&site, &date)) {
        Ok(html) => page("text/html; charset=utf-8", html),
        Err(e) => unavailable("cannot render the queue", e.into()),
    }
}

/// `/queue.json`.
pub(crate) async fn queue_json(State(state): State<Arc<AppState>>) -> Response {
    let site = match site(&state).await {
        Ok(s) => s,
        Err(e) => return unavailable("cannot render the ledger", e),
    };
    match read_queue(&state, &site).await {
        Ok(q) => Json(q).into_response(),
        Err(e) => unavailable("cannot read the queue", e),
    }
}

#[derive(Deserialize)]
pub(crate) struct RunQuery {
    repository: String,
}

/// `GET /api/v1/runs/{run_id}?repository=OWNER/NAME`: every decision about the run's jobs,
/// oldest first, and the queue of the resources they asked for.
pub(crate) async fn run(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<i64>,
    Query(q): Query<RunQuery>,
) -> Response {
    let site = match site(&state).await {
        Ok(s) => s,
        Err(e) => return unavailable("cannot render the ledger", e),
    };
    let read = async {
        let decisions = state
            .store()
            .decisions_of_run(&q.repository, run_id)
            .await?;
        let queue = read_queue(&state, &site).await?;
        anyhow::Ok((decisions, queue))
    };
    let (decisions, queue) = match read.await {
        Ok(x) => x,
        Err(e) => return unavailable("cannot read the run", e),
    };
    if decisions.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({
                "error": "the guard recorded no decision about this run: it asked for no managed resource, or its events have not arrived (see /healthz and the webhook's deliveries)"
            })),
        )
            .into_response();
    }
    let asked: Vec<&str> = decisions
        .iter()
        .filter_map(|d| d.resource.as_deref())
        .collect();
    let queue: Vec<QueueRow> = queue
        .resources
        .into_iter()
        .filter(|r| asked.contains(&r.resource.as_str()))
        .collect();
    let jobs: Vec<RecentJob> = decisions.into_iter().map(recent_job).collect();
    Json(json!({
        "repository": q.repository,
        "run_id": run_id,
        "decisions": jobs,
        "queue": queue,
    }))
    .into_response()
}
