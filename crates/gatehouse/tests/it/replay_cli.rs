//! `gatehouse replay` on a store the real guard filled: a policy change shows up as the
//! decisions it would change, on the facts each job was decided on.

use std::path::Path;
use std::process::Command;

use gatehouse_loadgen::{self as loadgen, ServerProcess, free_addr};
use serde_json::{Value, json};

use crate::db::{Backend, Db};

const REPO_0: &str = "octo-org/proj0-feedstock";
const REPO_1: &str = "octo-org/proj1-feedstock";

fn run_event(run_id: i64, repo: &str) -> Value {
    json!({
        "action": "requested",
        "workflow_run": {
            "id": run_id, "event": "push", "path": ".github/workflows/ci.yml",
            "head_branch": "main",
            "actor": { "login": "Codertocat", "id": 15669918 },
            "repository": { "full_name": repo }, "head_repository": { "full_name": repo },
        },
        "repository": { "full_name": repo },
    })
}

fn queued(run_id: i64, job_id: i64, repo: &str, label: &str) -> Value {
    json!({
        "action": "queued",
        "workflow_job": { "id": job_id, "run_id": run_id, "labels": [label, "linux"] },
        "repository": { "full_name": repo },
    })
}

async fn deliver(base: &str, id: &str, event: &str, body: &Value) -> String {
    let body = serde_json::to_vec(body).unwrap();
    let resp = loadgen::http_client()
        .post(format!("{base}/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", id)
        .header("x-hub-signature-256", loadgen::sign(loadgen::SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let v: Value = resp.json().await.unwrap();
    v["message"].as_str().unwrap().to_string()
}

fn replay(dir: &Path, db: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("replay")
        .arg(dir)
        .args(["--db", db])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn replay_lists_the_decisions_a_policy_change_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
    replay_scenario(dir.path(), &db);
    let repo = dir.path().join("access");
    let missing = format!("sqlite://{}", dir.path().join("nowhere.db").display());
    let (code, _, err) = replay(&repo, &missing, &["--since", "2000-01-01"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no guard database at"), "{err}");
    assert!(!dir.path().join("nowhere.db").exists());
}

/// The same on PostgreSQL (a fresh database, dropped afterwards), as replicas store it.
#[test]
fn replay_lists_the_decisions_a_policy_change_would_change_on_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(Db::new(Backend::Postgres));
    let dir = tempfile::tempdir().unwrap();
    replay_scenario(dir.path(), &db.url);
}

/// Fills the store `db` through a real guard, then replays it against changed policies.
fn replay_scenario(dir: &Path, db: &str) {
    let repo = dir.join("access");
    loadgen::write_repo(&repo).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let github = loadgen::fake_github().await.unwrap().url;
        let server = ServerProcess::start(
            Path::new(env!("CARGO_BIN_EXE_gatehouse")),
            &repo,
            db,
            &github,
            free_addr().unwrap(),
            &dir.join("server.log"),
        )
        .await
        .unwrap();
        let base = server.base();
        deliver(&base, "r1", "workflow_run", &run_event(1, REPO_0)).await;
        deliver(&base, "r2", "workflow_run", &run_event(2, REPO_1)).await;
        let a = queued(1, 11, REPO_0, "gpu-large");
        assert_eq!(deliver(&base, "q-a", "workflow_job", &a).await, "allow");
        let b = queued(2, 12, REPO_1, "gpu-large");
        assert_eq!(deliver(&base, "q-b", "workflow_job", &b).await, "allow");
        let c = queued(1, 13, REPO_0, "big-linux-box");
        assert_eq!(
            deliver(&base, "q-c", "workflow_job", &c).await,
            "not managed"
        );
        drop(server);
    });
    // Nothing changed yet: nothing would change.
    let (code, out, err) = replay(&repo, db, &["--since", "2000-01-01"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("3 queued job(s)") && out.contains("0 would change"),
        "{out}"
    );

    // The change under test: proj0 loses `gpu` and gets a new resource on `big-linux-box`.
    std::fs::write(
        repo.join("resources/linux-big.yml"),
        "name: linux-big\nprovider: cirun\nlabels: [big-linux-box]\nusers: { roles: [admin, maintain, write] }\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("grants/proj0.yml"),
        "project: proj0\ngrants:\n  - resource: linux-big\n    granted: 2026-01-01\n",
    )
    .unwrap();
    let (code, out, err) = replay(&repo, db, &["--since", "2000-01-01", "--format", "json"]);
    assert_eq!(code, Some(1), "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["replayed"], 3);
    let changed = report["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 2, "{report:#}");
    // Decided on the facts recorded with it (Codertocat could write), now without a grant.
    assert_eq!(changed[0]["delivery_id"], "q-a");
    assert_eq!(
        changed[0]["before"],
        json!({"outcome": "allow", "resource": "gpu"})
    );
    assert_eq!(
        changed[0]["after"],
        json!({"outcome": "deny", "resource": "gpu", "rule": "no-grant"})
    );
    assert!(changed[0].get("note").is_none());
    // Never decided (not managed then): the roles were never asked, and the row says so.
    assert_eq!(changed[1]["delivery_id"], "q-c");
    assert_eq!(changed[1]["before"], json!({"outcome": "not-managed"}));
    assert_eq!(changed[1]["after"]["resource"], "linux-big");
    assert!(
        changed[1]["note"]
            .as_str()
            .unwrap()
            .contains("roles were never looked up"),
        "{report:#}"
    );
    let (code, out, _) = replay(&repo, db, &["--since", "2000-01-01"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("octo-org/proj0-feedstock job 11")
            && out.contains("allow on gpu -> deny (no-grant) on gpu"),
        "{out}"
    );

    // Only what arrived since the given moment.
    let (code, out, _) = replay(&repo, db, &["--since", "2999-01-01T00:00:00Z"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("0 queued job(s)"), "{out}");

    // A policy that fails `check` is refused with the reason; so is a date that is not one.
    std::fs::write(
        repo.join("grants/proj1.yml"),
        "project: proj1\ngrants:\n  - resource: tpu\n    granted: 2026-01-01\n",
    )
    .unwrap();
    let (code, _, err) = replay(&repo, db, &["--since", "2000-01-01"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("grants/proj1.yml") && err.contains("tpu"),
        "{err}"
    );
    let (code, _, err) = replay(&repo, db, &["--since", "last week"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--since `last week`"), "{err}");
    std::fs::write(
        repo.join("grants/proj1.yml"),
        "project: proj1\ngrants:\n  - resource: gpu\n    granted: 2026-01-01\n",
    )
    .unwrap();
}
