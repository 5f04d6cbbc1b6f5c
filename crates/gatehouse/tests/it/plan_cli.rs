//! `gatehouse plan` on the bundled example: snapshots of each format, and read-only.

use std::path::Path;
use std::process::Command;

fn plan(format: &str, dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["plan", "--today", "2026-11-28", "--format", format])
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge")
}

#[test]
fn plan_text() {
    insta::assert_snapshot!(plan("text", &example()));
}

#[test]
fn plan_markdown() {
    insta::assert_snapshot!(plan("markdown", &example()));
}

#[test]
fn plan_json_counts_and_names_every_change() {
    let doc: serde_json::Value = serde_json::from_str(&plan("json", &example())).unwrap();
    assert_eq!(doc["ledger"].as_array().unwrap().len(), 3);
    assert_eq!(doc["consumed"].as_array().unwrap().len(), 3);
    // Three provider changes, and two configuration pull requests (the requests have send_pr).
    let providers = doc["providers"].as_array().unwrap();
    assert_eq!(providers.len(), 5, "{providers:?}");
    let config: Vec<&str> = providers
        .iter()
        .filter(|c| c["kind"] == "feedstock-config")
        .map(|c| c["repository"].as_str().unwrap())
        .collect();
    assert_eq!(
        config,
        [
            "conda-forge/tinygrad-feedstock",
            "conda-forge/xformers-feedstock"
        ]
    );
    assert_eq!(doc["revocations"], 0);
    assert_eq!(doc["ledger"][1]["change"], "grant");
    assert_eq!(doc["ledger"][1]["project"], "tinygrad");
}

#[test]
fn expiry_appears_in_the_plan_after_the_date() {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["plan", "--today", "2027-03-02"])
        .arg(example())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("- revoke  pytorch-cpu: cirun-openstack-gpu-large (expired on 2027-03-01)"),
        "{text}"
    );
    assert!(text.contains("- cirun: remove conda-forge/pytorch-cpu-feedstock from the access policy of cirun-openstack-gpu-large"), "{text}");
}
