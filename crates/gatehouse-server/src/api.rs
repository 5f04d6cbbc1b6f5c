//! The read endpoints (`/healthz`, `/readyz`, `/api/v1/...`) and the admin endpoint.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::clock::today;
use crate::state::AppState;
use crate::store::{ActiveJobs, DecisionFilter, UsageRow};

const MAX_LIMIT: i64 = 1000;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

/// Liveness: the process answers and holds a policy; says why the last reload was refused,
/// what the guard can ask GitHub, how fresh its role facts are and how many deliveries wait.
pub async fn healthz(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let policy = state.policy.load();
    let mode = state.mode();
    let status = state.status().clone();
    let facts = state
        .facts
        .report(jiff::Timestamp::now(), state.config.facts_ttl);
    let pending = match state.store.pending().await {
        Ok((count, oldest)) => json!({ "count": count, "oldest_received_at": oldest }),
        Err(e) => json!({ "error": format!("{e:#}") }),
    };
    let github = match &state.github {
        Some(_) => json!({ "token": true }),
        None => json!({
            "token": false,
            "note": "no GITHUB_TOKEN: the guard calls GitHub not at all; jobs that need a role are denied facts-unavailable and denied runs are not cancelled",
        }),
    };
    Json(json!({
        "status": if status.last_reload_error.is_none() { "ok" } else { "degraded" },
        "mode": if mode == crate::GuardMode::DryRun { "dry-run" } else { "enforce" },
        "github": github,
        "role_facts": facts,
        "team_facts": state
            .team_facts
            .report(jiff::Timestamp::now(), state.config.facts_ttl),
        "pending": pending,
        "policy": {
            "loaded_at": status.loaded_at.to_string(),
            "compiled_on": policy.compiled_on().to_string(),
            "resources": policy.resources().count(),
            "grants": policy.grants().count(),
        },
        "last_reload_error": status.last_reload_error,
        "catch_up": *state.catch_up_report(),
    }))
}

/// Readiness: the store answers, so deliveries can be accepted.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "store unreachable");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer",
            )
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    project: Option<String>,
    resource: Option<String>,
    outcome: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Recorded decisions, newest first, filtered and paginated.
pub async fn decisions(
    State(state): State<Arc<AppState>>,
    Query(q): Query<DecisionQuery>,
) -> Response {
    if let Some(o) = &q.outcome
        && !matches!(o.as_str(), "allow" | "deny")
    {
        return error(StatusCode::BAD_REQUEST, "outcome must be `allow` or `deny`");
    }
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let offset = q.offset.unwrap_or(0).max(0);
    let filter = DecisionFilter {
        project: q.project.map(|p| p.to_lowercase()),
        resource: q.resource,
        outcome: q.outcome,
        limit,
        offset,
    };
    match state.store.decisions(&filter).await {
        Ok(rows) => {
            Json(json!({ "decisions": rows, "limit": limit, "offset": offset })).into_response()
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cannot read decisions");
            error(StatusCode::SERVICE_UNAVAILABLE, "cannot read decisions")
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// `YYYY-MM`; the current month by default.
    month: Option<String>,
    /// Only this project's rows (any case).
    project: Option<String>,
    /// Only this resource's rows.
    resource: Option<String>,
}

/// The answer of [`usage`].
#[derive(Serialize)]
struct UsageAnswer<'a> {
    month: &'a str,
    usage: &'a [UsageRow],
    concurrency: &'a [ActiveJobs],
}

/// Minutes per project and resource in one month, and the managed jobs queued or running now
/// per resource (`concurrency`).
pub async fn usage(State(state): State<Arc<AppState>>, Query(q): Query<UsageQuery>) -> Response {
    let day = match &q.month {
        None => today(),
        Some(m) => match format!("{m}-01").parse::<jiff::civil::Date>() {
            Ok(d) => d,
            Err(_) => return error(StatusCode::BAD_REQUEST, "month must be written YYYY-MM"),
        },
    };
    let month = day.strftime("%Y-%m").to_string();
    let read = async {
        let project = q.project.as_deref().map(str::to_lowercase);
        let usage = state
            .store
            .usage_of_month_where(&month, project.as_deref(), q.resource.as_deref())
            .await?;
        let active = state.store.active_jobs().await?;
        anyhow::Ok((usage, active))
    };
    match read.await {
        // Written straight from the rows: a month can have hundreds of thousands of them,
        // and `json!` would first copy each into a map of its own.
        Ok((usage, concurrency)) => Json(UsageAnswer {
            month: &month,
            usage: &usage,
            concurrency: &concurrency,
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cannot read usage");
            error(StatusCode::SERVICE_UNAVAILABLE, "cannot read usage")
        }
    }
}

/// The refusal, unless the request carries `Authorization: Bearer <admin token>`.
fn refuse_non_admin(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(expected) = &state.config.admin_token else {
        return Some(error(
            StatusCode::NOT_FOUND,
            "admin endpoints are off: no admin token is configured",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    (!same_secret(given, expected.expose())).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "a valid admin bearer token is required",
        )
    })
}

/// Catches up on missed deliveries now (after an outage, say) and answers what it did; needs
/// the admin token, and catching up configured (`--catch-up-hook`).
pub async fn catch_up(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse_non_admin(&state, &headers) {
        return refusal;
    }
    let Some(config) = state.config.catch_up.clone() else {
        return error(
            StatusCode::CONFLICT,
            "catching up is off: start the guard with --catch-up-hook <the webhook's id>",
        );
    };
    // Over the whole window: after an outage, whoever asks wants everything looked at.
    let report = crate::catchup::catch_up(&state, &config, None).await;
    let status = if report.error.is_some() {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    (status, Json(report)).into_response()
}

/// Reloads the access repository; needs `Authorization: Bearer <admin token>`.
pub async fn reload(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse_non_admin(&state, &headers) {
        return refusal;
    }
    match state.reload().await {
        Ok(()) => Json(json!({ "reloaded": true })).into_response(),
        Err(reason) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "reloaded": false, "message": reason })),
        )
            .into_response(),
    }
}

/// Compares two secrets in time that depends on neither: digests have one length, and the
/// loop looks at every byte.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.trim()), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
