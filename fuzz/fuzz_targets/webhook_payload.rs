//! Arbitrary bytes as a signed webhook delivery to the guard: the first byte picks the event
//! (`workflow_job`, `workflow_run`, `ping`, or one the guard does not use), the rest is the
//! body, correctly signed, so that it gets past the signature check into the payload parser and
//! the guard. The router runs in-process on an in-memory SQLite database, with the bundled
//! example as the access repository. Never a panic, never a 5xx. The body also goes to the
//! payload parser directly (`gatehouse_server::parse_event`).

#![no_main]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use gatehouse_server::{AppState, Secret, ServerConfig, router};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use tower::ServiceExt;

const SECRET: &str = "fuzzing secret";
const EVENTS: &[&str] = &["workflow_job", "workflow_run", "ping", "issues"];

struct Guard {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

fn guard() -> &'static Guard {
    static GUARD: OnceLock<Guard> = OnceLock::new();
    GUARD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/conda-forge");
        let mut config = ServerConfig::new(repo, "sqlite::memory:", Secret::new(SECRET));
        config.watch_interval = None;
        let state = runtime
            .block_on(AppState::new(config))
            .expect("the guard starts on the bundled example");
        Guard {
            runtime,
            router: router(state),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    static DELIVERY: AtomicU64 = AtomicU64::new(0);
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let event = EVENTS[pick as usize % EVENTS.len()];
    // The payload parser on its own: bad bytes are an error, never a panic.
    let _ = gatehouse_server::parse_event(event, body);
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let id = DELIVERY.fetch_add(1, Ordering::Relaxed);
    let request = Request::post("/webhook")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", format!("fuzz-{id}"))
        .header("x-hub-signature-256", signature)
        .body(Body::from(body.to_vec()))
        .expect("a request");
    let g = guard();
    let response = g
        .runtime
        .block_on(g.router.clone().oneshot(request))
        .expect("the router is infallible");
    let status = response.status();
    assert!(
        !status.is_server_error(),
        "{event} delivery answered {status}"
    );
    // Correctly signed: the body must have reached the parser, not stopped at the door.
    assert_ne!(status, 401, "a correctly signed delivery was refused");
});
