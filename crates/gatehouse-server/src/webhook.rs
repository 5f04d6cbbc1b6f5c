//! `POST /webhook`: authenticate, deduplicate, store, then hand the event to the guard.
//!
//! The order matters: a delivery is answered 2xx only once it is stored, and it is processed
//! only by whoever stored it first, so a redelivery (or the same delivery reaching a second
//! replica) is acknowledged without being processed twice.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use serde_json::json;
use sha2::Sha256;

use jiff::Timestamp;

use crate::guard::{self, Handled};
use crate::pending::{self, Outcome};
use crate::state::AppState;
use crate::store::{StoredDelivery, Write, time_text};
use crate::{MAX_BODY_BYTES, Secret};

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
    body: Body,
) -> Response {
    let started = Instant::now();
    let (event, outcome, response) = match read_body(&state, body).await {
        Ok((body, unverified)) => handle(&state, &headers, body, unverified).await,
        Err(refusal) => (UNVERIFIED, "rejected", refusal),
    };
    state.metrics.delivery(event, outcome);
    state.metrics.webhook(started.elapsed());
    response
}

/// Reads a body not verified yet, counting each chunk against the budget that every such body
/// shares (`Limits::unverified_body_bytes`): many connections sending large, badly signed
/// bodies slowly cannot hold more than it between them. The permits are held until the
/// signature is checked (the caller drops them). Refuses a body over the largest GitHub sends
/// (413), and any body while the budget is spent (503, retry shortly).
async fn read_body(
    state: &AppState,
    mut body: Body,
) -> Result<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>), Response> {
    let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| reply(StatusCode::BAD_REQUEST, "the body could not be read"))?;
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is larger than any GitHub webhook delivery",
            ));
        }
        let n = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        let permit = state
            .unverified
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| {
                tracing::warn!("the budget for unverified request bodies is spent: refusing one");
                let mut r = reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too much unverified data in flight; retry shortly",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                r
            })?;
        match &mut held {
            Some(h) => h.merge(permit),
            None => held = Some(permit),
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf.freeze(), held))
}

/// What became of a delivery (the `outcome` label of `gatehouse_deliveries_total`) and the
/// answer.
/// The metrics label of a delivery refused before its signature was checked good.
const UNVERIFIED: &str = "unverified";

async fn handle(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Bytes,
    unverified: Option<tokio::sync::OwnedSemaphorePermit>,
) -> (&'static str, &'static str, Response) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // GitHub can also send form-encoded payloads; the guard reads JSON only, and saying so
    // tells whoever set up the webhook what to change.
    let json = header(header::CONTENT_TYPE.as_str())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return (
            UNVERIFIED,
            "rejected",
            reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the webhook's content type must be application/json",
            ),
        );
    }
    let signed = header("x-hub-signature-256")
        .is_some_and(|sig| verify_signature(&state.config.webhook_secret, &body, sig));
    // Verified or refused: either way its bytes no longer count against the shared budget.
    drop(unverified);
    if !signed {
        tracing::warn!("rejected a delivery with a missing or wrong signature");
        return (
            UNVERIFIED,
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
            "other",
            "rejected",
            reply(
                StatusCode::BAD_REQUEST,
                "X-GitHub-Delivery and X-GitHub-Event are required",
            ),
        );
    };
    let label = crate::metrics::event_label(event);
    let (outcome, response) = store_and_process(state, delivery, event, body).await;
    (label, outcome, response)
}

/// A verified delivery: stored, then processed (or left waiting for a fact).
async fn store_and_process(
    state: &Arc<AppState>,
    delivery: &str,
    event: &str,
    body: Bytes,
) -> (&'static str, Response) {
    let received_at = Timestamp::now();
    let deadline = state.fresh_deadline();
    let stored = Write::Delivery {
        delivery_id: delivery.to_string(),
        event: event.to_string(),
        received_at: time_text(received_at),
        body: body.clone(),
        processed: None,
    };
    // A delivery whose processing only writes to the store (most: a run remembered, a job
    // allowed, a job in progress within its caps and credit, a job completed) is stored and
    // processed in one commit, rolled back whole for a duplicate or when a claim is refused.
    // One that acts on GitHub (a denial cancels its run) or waits for a fact is stored first:
    // a duplicate must not act twice, and a stored delivery is never lost.
    // Parsed once, here, for everything that follows.
    let parsed = crate::events::parse_event(event, &body);
    if let Handled::Done(mut effects) = guard::handle(
        state,
        delivery,
        &parsed,
        received_at,
        deadline,
        guard::Mode::Unstored,
    )
    .await
    {
        effects.prepend_delivery(stored.clone());
        let (writes, needs) = effects.take_commit();
        match state.store.commit_needing(writes, needs).await {
            Ok(Ok(rows)) => return answer(delivery, event, Ok(done(effects.finish(state, &rows)))),
            Ok(Err(0)) => return duplicate(delivery, event),
            // A claim was refused: stored first, the refusal is acted on.
            Ok(Err(_)) => {}
            Err(e) => return store_failed(delivery, event, &e),
        }
    }
    let stored = state.store.commit(vec![stored]).await;
    match stored.as_deref() {
        Ok([1]) => {}
        Ok(_) => return duplicate(delivery, event),
        Err(e) => return store_failed(delivery, event, e),
    }
    // Processing runs in a task of its own: should the request time out or the client go
    // away, the stored delivery is still processed to the end. (Before it is stored, nothing
    // is done that its commit does not hold: a request dropped then leaves the delivery
    // unstored and unacknowledged, for GitHub's redelivery.)
    let task = {
        let state = state.clone();
        let d = StoredDelivery {
            delivery_id: delivery.to_string(),
            event: event.to_string(),
            received_at: time_text(received_at),
            body: body.to_vec(),
        };
        tokio::spawn(async move {
            pending::process_or_wait(
                &state,
                d,
                Some(parsed),
                received_at,
                deadline,
                pending::INLINE_WAIT,
            )
            .await
        })
    };
    let outcome = match task.await {
        Ok(outcome) => outcome,
        Err(e) => Ok(Outcome::Failed(format!("processing panicked: {e}"))),
    };
    answer(delivery, event, outcome)
}

fn done(outcome: Result<String, String>) -> Outcome {
    match outcome {
        Ok(what) => Outcome::Processed(what),
        Err(error) => Outcome::Failed(error),
    }
}

fn duplicate(delivery: &str, event: &str) -> (&'static str, Response) {
    tracing::info!(
        delivery,
        event,
        "duplicate delivery acknowledged, not processed"
    );
    ("duplicate", reply(StatusCode::OK, "duplicate delivery"))
}

/// Not stored, so not acknowledged: GitHub shows the failure and it can be redelivered.
fn store_failed(delivery: &str, event: &str, e: &anyhow::Error) -> (&'static str, Response) {
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

/// The answer to a stored delivery, from what processing it said.
fn answer(
    delivery: &str,
    event: &str,
    outcome: anyhow::Result<Outcome>,
) -> (&'static str, Response) {
    let outcome = outcome.unwrap_or_else(|e| Outcome::Failed(format!("{e:#}")));
    match outcome {
        Outcome::Processed(what) => {
            tracing::info!(delivery, event, outcome = what, "delivery processed");
            ("processed", reply(StatusCode::OK, &what))
        }
        Outcome::Waiting(what) => {
            tracing::info!(delivery, event, outcome = what, "delivery waiting");
            ("waiting", reply(StatusCode::ACCEPTED, &what))
        }
        Outcome::Failed(error) => {
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
