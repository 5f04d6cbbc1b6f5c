//! `gatehouse ci codeowners` and the `codeowners` check, end to end on copies of the bundled
//! example.

use std::path::Path;
use std::process::{Command, Output};

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .args(["--today", "2026-11-29"])
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap()
}

/// A copy of examples/conda-forge, written by `gatehouse init --example conda-forge`.
fn example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = gatehouse(&[
        "init",
        dir.path().to_str().unwrap(),
        "--example",
        "conda-forge",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_bundled_example_carries_an_up_to_date_codeowners() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
    let out = gatehouse(&["ci", "codeowners", root.to_str().unwrap(), "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let file = std::fs::read_to_string(root.join(".github/CODEOWNERS")).unwrap();
    for line in [
        "/grants/ @conda-forge/core",
        "/resources/ @conda-forge/core",
        "/gatehouse.yml @conda-forge/core",
    ] {
        assert!(file.lines().any(|l| l == line), "missing `{line}`:\n{file}");
    }
}

#[test]
fn a_reviewer_change_makes_check_fail_until_codeowners_is_regenerated() {
    let dir = example();
    let root = dir.path();
    let r = root.to_str().unwrap();
    assert_eq!(gatehouse(&["check", r]).status.code(), Some(0));

    // A resource gets reviewers of its own: they must be asked to review requests.
    let gpu = root.join("resources/cirun-openstack-gpu-large.yml");
    let body = std::fs::read_to_string(&gpu).unwrap();
    std::fs::write(
        &gpu,
        format!("{body}reviewers: {{ teams: [open-gpu-server], users: [aktech] }}\n"),
    )
    .unwrap();

    let out = gatehouse(&["check", r, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<_> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["file"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [(
            "codeowners-outdated".to_string(),
            ".github/CODEOWNERS".to_string()
        )]
    );
    let check = gatehouse(&["ci", "codeowners", r, "--check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(text(&check).contains("out of date"), "{}", text(&check));

    let write = gatehouse(&["ci", "codeowners", r]);
    assert_eq!(write.status.code(), Some(0), "{}", text(&write));
    let file = std::fs::read_to_string(root.join(".github/CODEOWNERS")).unwrap();
    assert!(
        file.lines()
            .any(|l| l == "/requests/ @conda-forge/core @conda-forge/open-gpu-server @aktech"),
        "{file}"
    );
    // The ledger stays with the organisation's reviewers.
    assert!(
        file.lines().any(|l| l == "/grants/ @conda-forge/core"),
        "{file}"
    );
    assert_eq!(gatehouse(&["check", r]).status.code(), Some(0));
    assert_eq!(
        gatehouse(&["ci", "codeowners", r, "--check"]).status.code(),
        Some(0)
    );
}

#[test]
fn without_the_file_check_passes_and_ci_check_says_missing() {
    let dir = example();
    let r = dir.path().to_str().unwrap();
    std::fs::remove_file(dir.path().join(".github/CODEOWNERS")).unwrap();
    assert_eq!(gatehouse(&["check", r]).status.code(), Some(0));
    let out = gatehouse(&["ci", "codeowners", r, "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("missing"), "{}", text(&out));
    assert!(
        !dir.path().join(".github/CODEOWNERS").exists(),
        "--check wrote the file"
    );
}

#[test]
fn a_hand_edited_codeowners_is_reported_at_the_changed_line() {
    let dir = example();
    let path = dir.path().join(".github/CODEOWNERS");
    let body = std::fs::read_to_string(&path).unwrap();
    let edited = body.replace("/grants/ @conda-forge/core", "/grants/ @someone-else");
    std::fs::write(&path, &edited).unwrap();
    let out = gatehouse(&["check", dir.path().to_str().unwrap(), "--format", "github"]);
    assert_eq!(out.status.code(), Some(1));
    let line = edited
        .lines()
        .position(|l| l.starts_with("/grants/"))
        .unwrap()
        + 1;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("::error file=.github/CODEOWNERS,line={line},")),
        "{stdout}"
    );
}
