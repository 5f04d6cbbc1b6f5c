//! No secret of `gatehouse serve` reaches its output: the webhook secret, the GitHub token and
//! the admin token are configured, the guard is driven through every path that handles them
//! (a forged signature, a signed delivery that makes it call a GitHub that fails and echoes the
//! request back, including its `Authorization` header, admin calls with a wrong and a right
//! token) with the most verbose logging, and everything it printed is searched for them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_fake::{Call, FakeGitHub};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

const WEBHOOK_SECRET: &str = "whsec-3f9a1c77d2e04b5b9c1e6a8d4f2b7e10";
const GITHUB_TOKEN: &str = "ghp_S3cr3tT0k3nTh4tMustN3v3rB3L0gg3d0001";
const ADMIN_TOKEN: &str = "adm-8c2d4e6f0a1b3c5d7e9f1a2b3c4d5e6f";

/// The loopback GitHub (`gatehouse-fake`), answering every request 500 with the request's head
/// (token included) in its message, as some proxies do; its call log keeps the heads it saw.
fn echoing_github() -> (u16, Arc<FakeGitHub>) {
    let fake = FakeGitHub::with_token(GITHUB_TOKEN);
    fake.gate.echo_all(&[500]);
    let (url, fake) = gatehouse_fake::serve_github(fake);
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    (port, fake)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request over a plain socket; the status line and the body.
fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn queued_job() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gatehouse-server/tests/fixtures/workflow_job.queued.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["repository"]["full_name"] = json!("conda-forge/conda-smithy-feedstock");
    v["repository"]["name"] = json!("conda-smithy-feedstock");
    v["workflow_job"]["id"] = json!(77001);
    v["workflow_job"]["run_id"] = json!(88001);
    v["workflow_job"]["labels"] = json!(["cirun-openstack-gpu-large--88001-linux_64"]);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn no_secret_reaches_the_guards_output_on_any_path() {
    let (github, fake) = echoing_github();
    let seen = || -> Vec<String> { fake.gate.requests().iter().map(Call::head).collect() };
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "serve",
            example.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--exit-after",
            "60s",
        ])
        .current_dir(dir.path())
        .env("GATEHOUSE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("GITHUB_TOKEN", GITHUB_TOKEN)
        .env("GATEHOUSE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("GATEHOUSE_GITHUB_API", format!("http://127.0.0.1:{github}"))
        .env("GATEHOUSE_LOG", "trace")
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read both pipes while the guard runs: trace logging fills a pipe's buffer (64 KiB) in
    // seconds, and a guard whose next log line cannot be written waits for it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "serve did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A forged signature, a signature made with the right secret and a wrong body, then a
    // signed queued job the guard must ask GitHub about.
    let body = queued_job();
    let forged = request(
        port,
        "POST",
        "/webhook",
        &[
            ("content-type", "application/json"),
            ("x-github-event", "workflow_job"),
            ("x-github-delivery", "d-forged"),
            ("x-hub-signature-256", "sha256=00"),
        ],
        &body,
    );
    assert!(forged.starts_with("HTTP/1.1 401"), "{forged}");
    let signature = sign(&body);
    let accepted = request(
        port,
        "POST",
        "/webhook",
        &[
            ("content-type", "application/json"),
            ("x-github-event", "workflow_job"),
            ("x-github-delivery", "d-queued"),
            ("x-hub-signature-256", &signature),
        ],
        &body,
    );
    assert!(accepted.starts_with("HTTP/1.1 2"), "{accepted}");
    let wrong_admin = request(
        port,
        "POST",
        "/admin/reload",
        &[("authorization", "Bearer not-the-admin-token")],
        b"",
    );
    assert!(wrong_admin.starts_with("HTTP/1.1 401"), "{wrong_admin}");
    let admin = request(
        port,
        "POST",
        "/admin/reload",
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        b"",
    );
    assert!(admin.starts_with("HTTP/1.1 200"), "{admin}");

    // The guard asked GitHub with the token (so the echo, token included, came back to it).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen().iter().any(|h| h.contains(GITHUB_TOKEN)) {
        assert!(
            Instant::now() < deadline,
            "the guard never called GitHub with its token: {:?}",
            seen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut pages = String::new();
    for path in ["/metrics", "/healthz", "/api/v1/decisions", "/dashboard"] {
        pages.push_str(&request(port, "GET", path, &[], b""));
    }
    std::thread::sleep(Duration::from_millis(500)); // let the failure be logged

    let _ = child.kill();
    let _ = child.wait();
    let printed = format!(
        "{}{}{pages}",
        String::from_utf8_lossy(&stdout.join().unwrap()),
        String::from_utf8_lossy(&stderr.join().unwrap())
    );
    assert!(
        printed.contains("d-queued") || printed.contains("77001"),
        "trace logging shows the deliveries (else this test proves nothing): {printed}"
    );
    for secret in [WEBHOOK_SECRET, GITHUB_TOKEN, ADMIN_TOKEN] {
        assert!(
            !printed.contains(secret),
            "a secret reached the output: {}",
            &secret[..6]
        );
    }
}
