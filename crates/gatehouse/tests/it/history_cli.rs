//! `gatehouse history` on a real git repository made in a temporary folder.

use std::path::Path;
use std::process::Command;

/// Runs git in `dir` as a fixed author; `date` dates the commit when given.
fn git_at(dir: &Path, args: &[&str], date: Option<&str>) {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args([
        "-c",
        "user.name=Jaime",
        "-c",
        "user.email=j@example.org",
        "-c",
        "commit.gpgsign=false",
    ]);
    if let Some(date) = date {
        cmd.env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date);
    }
    let ok = cmd.args(args).status().unwrap().success();
    assert!(ok, "git {args:?}");
}

fn git(dir: &Path, args: &[&str]) {
    git_at(dir, args, None);
}

fn commit(dir: &Path, file: &str, contents: Option<&str>, message: &str, date: &str) {
    let path = dir.join(file);
    match contents {
        Some(c) => {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, c).unwrap();
            git(dir, &["add", file]);
        }
        None => git(dir, &["rm", "-q", file]),
    }
    git_at(dir, &["commit", "-q", "-m", message], Some(date));
}

#[test]
fn history_lists_grants_changes_and_revocations_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    let g1 = "project: tinygrad\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    expires: 2027-03-01\n    request: https://github.com/conda-forge/admin-requests/pull/1\n";
    commit(
        d,
        "grants/tinygrad.yml",
        Some(g1),
        "Grant gpu to tinygrad",
        "2026-03-01T10:00:00Z",
    );
    let g2 = format!("{g1}  - resource: cpu\n    granted: 2026-04-01\n");
    commit(
        d,
        "grants/tinygrad.yml",
        Some(&g2),
        "Grant cpu to tinygrad",
        "2026-04-01T10:00:00Z",
    );
    let g3 = g2.replace("expires: 2027-03-01", "expires: 2027-09-01");
    commit(
        d,
        "grants/tinygrad.yml",
        Some(&g3),
        "Renew gpu for tinygrad",
        "2026-08-01T10:00:00Z",
    );
    commit(
        d,
        "grants/other.yml",
        Some("project: other\ngrants: []\n"),
        "Unrelated",
        "2026-08-02T10:00:00Z",
    );
    commit(
        d,
        "grants/tinygrad.yml",
        None,
        "Revoke everything of tinygrad",
        "2026-10-01T10:00:00Z",
    );

    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["history", "tinygrad", "--format", "json", "--dir"])
        .arg(d)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(String, String, String)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["date"].as_str().unwrap().to_string(),
                e["change"].as_str().unwrap().to_string(),
                e["resource"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = [
        ("2026-03-01", "granted", "gpu"),
        ("2026-04-01", "granted", "cpu"),
        ("2026-08-01", "changed", "gpu"),
        ("2026-10-01", "revoked", "cpu"),
        ("2026-10-01", "revoked", "gpu"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(got, want);
    assert!(
        events[2]["details"]
            .as_str()
            .unwrap()
            .contains("until 2027-09-01")
    );
    assert_eq!(events[0]["subject"], "Grant gpu to tinygrad");
}

/// Project names compare case-insensitively: `TinyGrad` is the project of `grants/tinygrad.yml`.
#[test]
fn history_finds_the_project_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    commit(
        d,
        "grants/tinygrad.yml",
        Some("project: tinygrad\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n"),
        "Grant gpu to tinygrad",
        "2026-03-01T10:00:00Z",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["history", "TinyGrad", "--format", "json", "--dir"])
        .arg(d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events[0]["change"], "granted", "{events}");
    assert_eq!(events[0]["resource"], "gpu", "{events}");
}

#[test]
fn history_refuses_a_path_for_a_project() {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["history", "../../etc/passwd"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a project name"));
}
