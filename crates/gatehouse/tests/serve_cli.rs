//! `gatehouse serve` on the bundled example starts with no other set-up.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Plain HTTP/1.1 GET over a socket, so the test needs no client library.
fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn serve_starts_on_the_example_with_no_set_up_and_stays_closed_to_unsigned_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "serve",
            example.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(dir.path())
        .env_remove("GATEHOUSE_WEBHOOK_SECRET")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GATEHOUSE_DB")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Some(r) = get(port, "/healthz") {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not answer within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    assert!(
        dir.path().join("gatehouse.db").exists(),
        "the embedded SQLite store is created"
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("GATEHOUSE_WEBHOOK_SECRET is not set"), "{log}");
}
