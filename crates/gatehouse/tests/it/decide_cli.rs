//! `gatehouse decide`, `explain` and `render cirun` on the bundled example.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge")
}

fn gatehouse(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .args(["--today", "2026-11-28"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// DESIGN.md's job context, by a maintainer who accepted the terms (isuruf).
fn job(event: &str, head: &str) -> String {
    format!(
        r#"{{
  "repository": "conda-forge/pytorch-cpu-feedstock",
  "labels": ["cirun-openstack-gpu-large--8075232475-linux_64", "linux", "x64", "self-hosted"],
  "event": "{event}",
  "head_repository": "{head}",
  "actor": {{ "login": "isuruf", "id": 5234427, "permission": "write" }},
  "triggering_actor": {{ "login": "isuruf", "id": 5234427, "permission": "write" }},
  "workflow": ".github/workflows/conda-build.yml",
  "ref": "refs/pull/12/merge",
  "usage": {{ "project_minutes": 0, "resource_minutes": 0 }}
}}"#
    )
}

fn decide_json(job: &str) -> serde_json::Value {
    let out = gatehouse(
        &[
            "decide",
            "--job",
            "-",
            "--format",
            "json",
            example().to_str().unwrap(),
        ],
        Some(job),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_allowed_job_prints_allow_and_the_resource() {
    let doc = decide_json(&job("pull_request", "conda-forge/pytorch-cpu-feedstock"));
    assert_eq!(
        doc,
        serde_json::json!({"outcome": "allow", "resource": "cirun-openstack-gpu-large"})
    );
}

#[test]
fn a_denied_job_prints_the_rule_and_what_to_do() {
    let doc = decide_json(&job(
        "pull_request_target",
        "conda-forge/pytorch-cpu-feedstock",
    ));
    assert_eq!(doc["outcome"], "deny");
    assert_eq!(doc["rule"], "event-not-allowed");
    assert_eq!(doc["resource"], "cirun-openstack-gpu-large");
    assert!(
        doc["message"]
            .as_str()
            .unwrap()
            .contains("pull_request_target")
    );
}

#[test]
fn a_forks_job_is_judged_by_the_forks_owner() {
    // Without `head_owner`, nobody vouches for the fork's code.
    let doc = decide_json(&job("pull_request", "someone/pytorch-cpu-feedstock"));
    assert_eq!(doc["outcome"], "deny");
    assert_eq!(doc["rule"], "user-not-allowed");
    assert!(doc["message"].as_str().unwrap().contains("fork"));
    // An outsider's fork, started by a maintainer, is denied on the outsider.
    let owned = |owner: &str| {
        job("pull_request", "someone/pytorch-cpu-feedstock").replace(
            r#""actor":"#,
            &format!(
                r#""head_owner": {owner},
  "actor":"#
            ),
        )
    };
    let doc = decide_json(&owned(r#"{ "login": "someone", "id": 424242 }"#));
    assert_eq!(doc["rule"], "user-not-allowed");
    assert!(
        doc["message"].as_str().unwrap().contains("someone"),
        "{doc}"
    );
    // A maintainer's own fork (isuruf's) runs.
    let doc = decide_json(&owned(
        r#"{ "login": "isuruf", "id": 5234427, "permission": "write" }"#,
    ));
    assert_eq!(doc["outcome"], "allow", "{doc}");
}

#[test]
fn an_unmanaged_job_is_not_managed() {
    let j = job("push", "conda-forge/pytorch-cpu-feedstock").replace(
        r#"["cirun-openstack-gpu-large--8075232475-linux_64", "linux", "x64", "self-hosted"]"#,
        r#"["ubuntu-latest"]"#,
    );
    assert_eq!(
        decide_json(&j),
        serde_json::json!({"outcome": "not-managed"})
    );
}

#[test]
fn explain_shows_every_rule_until_the_decision() {
    let out = gatehouse(
        &["explain", "--job", "-", example().to_str().unwrap()],
        Some(&job(
            "pull_request_target",
            "conda-forge/pytorch-cpu-feedstock",
        )),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("  ok route: labels select `cirun-openstack-gpu-large`"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("  ok no-grant: `pytorch-cpu` holds"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("DENY event-not-allowed: `pull_request_target`"),
        "{text}"
    );
    assert!(
        lines[3].starts_with("deny `cirun-openstack-gpu-large` (event-not-allowed)"),
        "{text}"
    );
}

#[test]
fn a_malformed_job_is_a_clear_error() {
    let out = gatehouse(
        &["decide", "--job", "-", example().to_str().unwrap()],
        Some(
            r#"{"repository": "a/b", "labels": [], "event": "push", "actor": {"login": "x", "id": 1}, "extra": 1}"#,
        ),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a job context") && err.contains("unknown field `extra`"),
        "{err}"
    );
}

#[test]
fn render_cirun_is_byte_identical_across_runs_and_parses() {
    let a = gatehouse(&["render", "cirun", example().to_str().unwrap()], None);
    let b = gatehouse(&["render", "cirun", example().to_str().unwrap()], None);
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(a.stdout, b.stdout);
    let doc: serde_json::Value =
        serde_saphyr::from_str(std::str::from_utf8(&a.stdout).unwrap()).unwrap();
    assert_eq!(doc["version"], 1);
    assert!(
        doc["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["repo"] == "pytorch-cpu-feedstock")
    );
}

#[test]
fn render_cedar_writes_policies_entities_and_schema_deterministically() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [&a, &b] {
        let out = gatehouse(
            &[
                "render",
                "cedar",
                example().to_str().unwrap(),
                "--out",
                dir.path().to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for name in ["policies.cedar", "entities.json", "schema.cedarschema"] {
        let x = std::fs::read(a.path().join(name)).unwrap();
        assert!(!x.is_empty(), "{name}");
        assert_eq!(x, std::fs::read(b.path().join(name)).unwrap(), "{name}");
    }
    let entities: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.path().join("entities.json")).unwrap()).unwrap();
    let grants = entities
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["uid"]["type"] == "Grant")
        .count();
    let ledger: usize = std::fs::read_dir(example().join("grants"))
        .unwrap()
        .map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            text.matches("- resource:").count()
        })
        .sum();
    assert_eq!(grants, ledger, "one Grant entity per grant in the ledger");
}
