//! `POST /webhook`: authenticate, deduplicate, store, then hand the event to the guard.
//!
//! The order matters: a delivery is answered 2xx only once it is stored, and it is processed
//! only by whoever stored it first, so a redelivery (or the same delivery reaching a second
//! replica) is acknowledged without being processed twice.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde_json::json;
use sha2::Sha256;

use crate::state::AppState;
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
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // GitHub can also send form-encoded payloads; the guard reads JSON only, and saying so
    // tells whoever set up the webhook what to change.
    let json = header(header::CONTENT_TYPE.as_str())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the webhook's content type must be application/json",
        );
    }
    let signed = header("x-hub-signature-256")
        .is_some_and(|sig| verify_signature(&state.config.webhook_secret, &body, sig));
    if !signed {
        tracing::warn!("rejected a delivery with a missing or wrong signature");
        return reply(
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-Hub-Signature-256",
        );
    }
    let (Some(delivery), Some(event)) = (header("x-github-delivery"), header("x-github-event"))
    else {
        return reply(
            StatusCode::BAD_REQUEST,
            "X-GitHub-Delivery and X-GitHub-Event are required",
        );
    };
    let received_at = Timestamp::now().to_string();
    match state
        .store
        .insert_delivery(delivery, event, &received_at, &body)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(
                delivery,
                event,
                "duplicate delivery acknowledged, not processed"
            );
            return reply(StatusCode::OK, "duplicate delivery");
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
            return reply(StatusCode::SERVICE_UNAVAILABLE, "cannot store the delivery");
        }
    }
    let outcome = match event {
        "ping" => Ok("pong".to_string()),
        "workflow_run" => guard::on_workflow_run(&state, &body).await,
        "workflow_job" => guard::on_workflow_job(&state, delivery, &body).await,
        _ => Ok("stored; event not used".to_string()),
    };
    match outcome {
        Ok(what) => {
            tracing::info!(delivery, event, outcome = what, "delivery processed");
            reply(StatusCode::OK, &what)
        }
        Err(e) => {
            // Stored, so acknowledged: a redelivery would be a duplicate anyway. The delivery
            // stays in the store for `replay`.
            let error = format!("{e:#}");
            tracing::error!(delivery, event, error, "delivery stored but not processed");
            reply(
                StatusCode::ACCEPTED,
                &format!("stored but not processed: {error}"),
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
