//! The webhook fuzz target's inputs in the ordinary test suite (which cannot run cargo-fuzz):
//! the committed corpus (`fuzz/corpus/webhook_payload`), then GitHub's own example payloads
//! mutated by proptest (cut short, bytes changed, fields replaced by values of other types),
//! each correctly signed and sent through the guard's router in-process. A delivery never gets
//! a 5xx (the guard failing) nor a 401 (a correct signature refused), whatever its body.

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use gatehouse_server::{AppState, Secret, ServerConfig, router};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::Sha256;
use tower::ServiceExt;

const SECRET: &str = "webhook inputs secret";
/// As in the fuzz target: the first byte of a corpus input picks the event.
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
            .unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
        let mut config = ServerConfig::new(repo, "sqlite::memory:", Secret::new(SECRET));
        config.watch_interval = None;
        let state = runtime.block_on(AppState::new(config)).unwrap();
        Guard {
            runtime,
            router: router(state),
        }
    })
}

fn deliver(event: &str, body: &[u8]) -> StatusCode {
    static DELIVERY: AtomicU64 = AtomicU64::new(0);
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let id = DELIVERY.fetch_add(1, Ordering::Relaxed);
    let request = Request::post("/webhook")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", format!("inputs-{id}"))
        .header("x-hub-signature-256", signature)
        .body(Body::from(body.to_vec()))
        .unwrap();
    let g = guard();
    g.runtime
        .block_on(g.router.clone().oneshot(request))
        .unwrap()
        .status()
}

fn acceptable(status: StatusCode) -> bool {
    !status.is_server_error() && status != StatusCode::UNAUTHORIZED
}

#[test]
fn the_fuzz_corpus_never_fails_the_guard() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/webhook_payload");
    let mut seen = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let Some((&pick, body)) = data.split_first() else {
            continue;
        };
        let event = EVENTS[pick as usize % EVENTS.len()];
        let status = deliver(event, body);
        assert!(acceptable(status), "{event}: {status} for {body:?}");
        seen += 1;
    }
    assert!(seen >= 10, "the corpus is committed: {seen} inputs");
}

/// GitHub's example deliveries (`@octokit/webhooks-examples`), with their event names.
fn examples() -> Vec<(&'static str, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    [
        ("workflow_job", "workflow_job.queued.json"),
        ("workflow_job", "workflow_job.completed.json"),
        ("workflow_run", "workflow_run.requested.json"),
    ]
    .into_iter()
    .map(|(event, file)| {
        let text = std::fs::read(dir.join(file)).unwrap();
        (event, serde_json::from_slice(&text).unwrap())
    })
    .collect()
}

/// Values of every JSON type, including ones the guard never expects where it reads.
fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,40}".prop_map(Value::from),
        prop::collection::vec("[a-zA-Z-]{0,30}", 0..4).prop_map(|v| json!(v)),
        Just(json!({})),
    ]
}

/// Paths of the fields the guard reads.
const FIELDS: &[&[&str]] = &[
    &["action"],
    &["repository"],
    &["repository", "full_name"],
    &["workflow_job"],
    &["workflow_job", "id"],
    &["workflow_job", "run_id"],
    &["workflow_job", "labels"],
    &["workflow_job", "started_at"],
    &["workflow_job", "completed_at"],
    &["workflow_run"],
    &["workflow_run", "id"],
    &["workflow_run", "event"],
    &["workflow_run", "actor"],
    &["workflow_run", "triggering_actor"],
    &["workflow_run", "head_repository"],
    &["sender"],
];

fn set(value: &mut Value, path: &[&str], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for p in parents {
        match at.get_mut(*p) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(object) = at.as_object_mut() {
        object.insert((*last).to_string(), new);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Field(usize, Value),
    Cut(usize),
    Byte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (0..FIELDS.len(), odd_value()).prop_map(|(f, v)| Mutation::Field(f, v)),
        1 => any::<usize>().prop_map(Mutation::Cut),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_github_examples_never_fail_the_guard(
        pick in 0usize..3,
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let (event, mut value) = examples().swap_remove(pick);
        let mut bytes = None::<Vec<u8>>;
        for m in &mutations {
            match m {
                Mutation::Field(f, v) => set(&mut value, FIELDS[*f], v.clone()),
                Mutation::Cut(at) => {
                    let b = bytes.get_or_insert_with(|| serde_json::to_vec(&value).unwrap());
                    let at = at % (b.len() + 1);
                    b.truncate(at);
                }
                Mutation::Byte(i, new) => {
                    let b = bytes.get_or_insert_with(|| serde_json::to_vec(&value).unwrap());
                    if !b.is_empty() {
                        let i = i % b.len();
                        b[i] = *new;
                    }
                }
            }
        }
        let body = bytes.unwrap_or_else(|| serde_json::to_vec(&value).unwrap());
        let status = deliver(event, &body);
        prop_assert!(acceptable(status), "{} answered {}", event, status);
    }
}
