//! `POST /webhook`: authenticate, deduplicate, store, then hand the event to the guard.
//!
//! The order matters: a delivery is answered 2xx only once it is stored, and it is processed
//! only by whoever stored it first, so a redelivery (or the same delivery reaching a second
//! replica) is acknowledged without being processed twice.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::state::AppState;
use crate::store::{Write, now_text};
use crate::{Secret, guard};

/// Whether `signature` (the `X-Hub-Signature-256` header, `sha256=<hex>`) is the HMAC-SHA256 of
/// `body` under `secret`. The comparison takes the same time wherever the first difference is.
pub fn verify_signature(secret: &Secret, body: &[u8], signature: &str) -> bool {
    let Some(hex_digest) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn reply(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

pub async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let event = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(none)")
        .to_string();
    let (outcome, response) = handle(&state, &headers, body).await;
    state.metrics.delivery(&event, outcome);
    state.metrics.webhook(started.elapsed());
    response
}

/// What became of a delivery (the `outcome` label of `gatehouse_deliveries_total`) and the
/// answer.
async fn handle(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Bytes,
) -> (&'static str, Response) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // GitHub can also send form-encoded payloads; the guard reads JSON only, and saying so
    // tells whoever set up the webhook what to change.
    let json = header(header::CONTENT_TYPE.as_str())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return (
            "rejected",
            reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the webhook's content type must be application/json",
            ),
        );
    }
    let signed = header("x-hub-signature-256")
        .is_some_and(|sig| verify_signature(&state.config.webhook_secret, &body, sig));
    if !signed {
        tracing::warn!("rejected a delivery with a missing or wrong signature");
        return (
            "rejected",
            reply(
                StatusCode::UNAUTHORIZED,
                "missing or wrong X-Hub-Signature-256",
            ),
        );
    }
    let (Some(delivery), Some(event)) = (header("x-github-delivery"), header("x-github-event"))
    else {
        return (
            "rejected",
            reply(
                StatusCode::BAD_REQUEST,
                "X-GitHub-Delivery and X-GitHub-Event are required",
            ),
        );
    };
    let stored = Write::Delivery {
        delivery_id: delivery.to_string(),
        event: event.to_string(),
        received_at: now_text(),
        body: body.clone(),
    };
    // Events whose processing only writes to the store are stored and processed in one
    // commit (rolled back whole for a duplicate). A queued job may cancel a run on GitHub, so
    // it is stored first: a duplicate must not act twice.
    if guard::store_only(event, &body) {
        let mut effects = guard::effects(state, delivery, event, &body).await;
        effects.prepend(stored);
        return match state.store.commit_if_new(effects.writes.clone()).await {
            Ok(Some(rows)) => answer(delivery, event, Ok(effects.finish(state, &rows))),
            Ok(None) => {
                tracing::info!(
                    delivery,
                    event,
                    "duplicate delivery acknowledged, not processed"
                );
                ("duplicate", reply(StatusCode::OK, "duplicate delivery"))
            }
            Err(e) => {
                tracing::error!(
                    delivery,
                    event,
                    error = format!("{e:#}"),
                    "cannot store a delivery"
                );
                (
                    "store-failed",
                    reply(StatusCode::SERVICE_UNAVAILABLE, "cannot store the delivery"),
                )
            }
        };
    }
    let stored = state.store.commit(vec![stored]).await;
    match stored.as_deref() {
        Ok([1]) => {}
        Ok(_) => {
            tracing::info!(
                delivery,
                event,
                "duplicate delivery acknowledged, not processed"
            );
            return ("duplicate", reply(StatusCode::OK, "duplicate delivery"));
        }
        Err(e) => {
            // Not stored, so not acknowledged: GitHub shows the failure and it can be
            // redelivered.
            tracing::error!(
                delivery,
                event,
                error = format!("{e:#}"),
                "cannot store a delivery"
            );
            return (
                "store-failed",
                reply(StatusCode::SERVICE_UNAVAILABLE, "cannot store the delivery"),
            );
        }
    }
    // Processing runs in a task of its own: should the request time out or the client go
    // away, the delivery is still processed to the end.
    let task = {
        let state = state.clone();
        let (delivery, event) = (delivery.to_string(), event.to_string());
        tokio::spawn(async move { guard::process(&state, &delivery, &event, &body).await })
    };
    let outcome = match task.await {
        Ok(outcome) => outcome,
        Err(e) => Ok(Err(format!("processing panicked: {e}"))),
    };
    answer(delivery, event, outcome)
}

/// The answer to a stored delivery, from what processing it said.
fn answer(
    delivery: &str,
    event: &str,
    outcome: anyhow::Result<Result<String, String>>,
) -> (&'static str, Response) {
    let outcome = outcome.unwrap_or_else(|e| Err(format!("{e:#}")));
    match outcome {
        Ok(what) => {
            tracing::info!(delivery, event, outcome = what, "delivery processed");
            ("processed", reply(StatusCode::OK, &what))
        }
        Err(error) => {
            // Stored, so acknowledged: a redelivery would be a duplicate anyway. The delivery
            // stays in the store for `replay` (and, when the store failed, is processed again
            // at the next start).
            tracing::error!(delivery, event, error, "delivery stored but not processed");
            (
                "not-processed",
                reply(
                    StatusCode::ACCEPTED,
                    &format!("stored but not processed: {error}"),
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_published_test_vector_verifies() {
        let secret = Secret::new("It's a Secret to Everybody");
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify_signature(&secret, b"Hello, World!", sig));
        assert!(!verify_signature(&secret, b"Hello, World?", sig));
        assert!(!verify_signature(
            &secret,
            b"Hello, World!",
            &sig.replace("sha256=", "sha1=")
        ));
        assert!(!verify_signature(&secret, b"Hello, World!", "sha256=zz"));
    }
}
