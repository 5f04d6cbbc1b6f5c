//! `gatehouse why` against a real guard (over loopback, a SQLite file): a denied job's rule and
//! reason by its run's or its job's address; an unknown run, a wrong address and a guard that
//! is not there each get a clear error.

use std::path::Path;
use std::process::Command;

use gatehouse_server::store::{DecisionRecord, Store, Write};
use gatehouse_server::{Secret, ServerConfig, serve_on};

const RUN: &str = "https://github.com/conda-forge/tinygrad-feedstock/actions/runs/77";

fn why(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("why")
        .args(args)
        .env_remove("GATEHOUSE_GUARD_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn why_prints_a_runs_decisions_and_its_queue() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", tmp.path().join("g.db").display());
    let decision =
        |job_id: i64, outcome: &str, rule: Option<&str>, message: &str| Write::Decision {
            decision: DecisionRecord {
                delivery_id: format!("d{job_id}"),
                job_id,
                run_id: 77,
                repository: "conda-forge/tinygrad-feedstock".into(),
                project: Some("tinygrad".into()),
                resource: Some("cirun-openstack-gpu-large".into()),
                outcome: outcome.into(),
                rule: rule.map(str::to_string),
                message: Some(message.into()),
                decided_at: "2026-12-06T10:00:00Z".into(),
                origin: "webhook".into(),
            },
            context: None,
        };
    Store::connect(&db)
        .await
        .unwrap()
        .commit(vec![
            decision(
                3,
                "deny",
                Some("no-grant"),
                "tinygrad holds no grant of cirun-openstack-gpu-large",
            ),
            decision(4, "allow", None, "allowed"),
        ])
        .await
        .unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
    let mut config = ServerConfig::new(repo, db, Secret::new("a webhook secret"));
    config.watch_interval = None;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_on(listener, config, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let base2 = base.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || why(&[RUN, "--guard", &base2]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("run 77 of conda-forge/tinygrad-feedstock\n"),
        "{out}"
    );
    assert!(
        out.contains("  job 3 on cirun-openstack-gpu-large: deny (no-grant), by the webhook at 2026-12-06T10:00:00Z\n    tinygrad holds no grant of cirun-openstack-gpu-large\n"),
        "{out}"
    );
    assert!(
        out.contains("  job 4 on cirun-openstack-gpu-large: allow"),
        "{out}"
    );
    assert!(
        out.contains("queue of cirun-openstack-gpu-large: 0 of 4 machines held, 0 queued"),
        "{out}"
    );

    // One job of it, as JSON.
    let job = format!("{RUN}/job/3");
    let base2 = base.clone();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || why(&[&job, "--guard", &base2, "--format", "json"]))
            .await
            .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(v["decisions"][0]["rule"], "no-grant");

    // A run the guard never heard of.
    let base2 = base.clone();
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        why(&[
            "https://github.com/conda-forge/numpy-feedstock/actions/runs/5",
            "--guard",
            &base2,
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(2));
    assert!(err.contains("recorded no decision about this run"), "{err}");
    drop(stop);

    // Not a run's address; no guard there.
    let (code, _, err) = why(&[
        "https://github.com/conda-forge/numpy-feedstock/pull/5",
        "--guard",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not the address of a workflow run"), "{err}");
    let (code, _, err) = why(&[RUN, "--guard", "http://127.0.0.1:9"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("asking the guard at http://127.0.0.1:9"),
        "{err}"
    );
}
