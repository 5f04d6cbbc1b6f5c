//! A recording reverse proxy on loopback, for the contract tests: put between the code under
//! test and a stand-in of GitHub, it passes every call through unchanged and keeps what was
//! sent and answered (method, path, query, request body, status, answer body) as
//! [`Exchange`]s, so the stand-in itself needs no change to be checked. `Link` headers that
//! point at the stand-in are rewritten to point at the proxy, so later pages pass through it
//! too.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::schema::Exchange;

struct Shared {
    upstream: String,
    base: String,
    client: reqwest::Client,
    exchanges: Mutex<Vec<Exchange>>,
}

pub struct Recorder {
    /// Where to send the calls instead of the stand-in.
    pub base: String,
    shared: Arc<Shared>,
}

impl Recorder {
    /// Starts a proxy (on a thread of its own) in front of `upstream`, a base URL.
    pub fn start(upstream: &str) -> Recorder {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            base: base.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            exchanges: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(forward).with_state(shared.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Recorder { base, shared }
    }

    /// Every call so far, in the order answered.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.exchanges.lock().unwrap().clone()
    }
}

fn body_value(bytes: &Bytes) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    Some(
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
    )
}

async fn forward(State(s): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut out = s.client.request(
        parts.method.clone(),
        format!("{}{path_and_query}", s.upstream),
    );
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    // The stand-in's own faults (a dropped connection) reach the caller as a failed call.
    let Ok(answer) = out.body(body.clone()).send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let mut headers = answer.headers().clone();
    let Ok(answer_body) = answer.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    for hop in ["content-length", "transfer-encoding", "connection"] {
        headers.remove(hop);
    }
    if let Some(link) = headers.get("link").and_then(|l| l.to_str().ok()) {
        let link = link.replace(&s.upstream, &s.base);
        headers.insert("link", link.parse().unwrap());
    }
    let query = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    s.exchanges.lock().unwrap().push(Exchange {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query,
        request: body_value(&body),
        status: status.as_u16(),
        answer: body_value(&answer_body),
    });
    let mut response = (status, answer_body).into_response();
    *response.headers_mut() = headers;
    response
}
