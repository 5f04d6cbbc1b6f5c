//! `GET /metrics`: one scrape. The figures that live in the shared store are read into the
//! process's [`crate::metrics::Metrics`], which then prints every metric.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::clock::today;
use crate::state::AppState;

/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let m = &state.metrics;
    let month = today().strftime("%Y-%m").to_string();
    match state.store.month_minutes_by_resource(&month).await {
        Ok(rows) => m.set_month_minutes(rows),
        Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot read usage for /metrics"),
    }
    match crate::outliers::cached(&state, today()).await {
        Ok(found) => m.set_outliers(found.iter().map(|o| (o.project.as_str(), o.minutes))),
        Err(e) => tracing::warn!(
            error = format!("{e:#}"),
            "cannot read outliers for /metrics"
        ),
    }
    match state.store.active_jobs().await {
        Ok(rows) => m.set_jobs(rows),
        Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot read jobs for /metrics"),
    }
    match state.store.pending().await {
        Ok((count, oldest)) => {
            let age = oldest
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map_or(0, |t| {
                    jiff::Timestamp::now().duration_since(t).as_secs().max(0)
                });
            m.set_pending(count, age);
        }
        Err(e) => tracing::warn!(
            error = format!("{e:#}"),
            "cannot read pending deliveries for /metrics"
        ),
    }
    let Some(text) = m.encode() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
