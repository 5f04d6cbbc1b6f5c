//! conda-forge's admin-requests as they are: real request files from the history of
//! conda-forge/admin-requests (fixtures/conda-forge/admin-requests/history, each file's commit
//! in fixtures/conda-forge/README.md) checked in the bundled example.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::fs;

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The example with its own requests replaced by `requests`, as (file name, text).
fn example_with(requests: &[(String, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy_dir(&root().join("examples/conda-forge"), dir.path());
    std::fs::remove_dir_all(dir.path().join("requests")).unwrap();
    std::fs::create_dir_all(dir.path().join("requests")).unwrap();
    for (name, text) in requests {
        std::fs::write(dir.path().join("requests").join(name), text).unwrap();
    }
    dir
}

fn history() -> Vec<(String, String)> {
    let dir = root().join("fixtures/conda-forge/admin-requests/history");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// (code, severity, file, line) of every finding of `check --format json`.
fn findings(dir: &Path) -> (Output, Vec<(String, String, String, u64)>) {
    let out = gatehouse(&[
        "check",
        "--today",
        "2026-11-28",
        "--format",
        "json",
        dir.to_str().unwrap(),
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let list = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["severity"].as_str().unwrap().to_string(),
                d["file"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    (out, list)
}

const ACCESS: &[&str] = &[
    "cirun",
    "namespace",
    "blacksmith",
    "depot",
    "cirrus_runners",
    "travis",
];

#[test]
fn every_real_request_is_accepted_and_other_actions_are_left_alone() {
    let files = history();
    let kinds: std::collections::BTreeSet<&str> = files
        .iter()
        .map(|(n, _)| {
            ACCESS
                .iter()
                .find(|a| n.starts_with(&format!("{a}-")))
                .copied()
                .unwrap_or("other")
        })
        .collect();
    // Every access action of admin-requests, and some that are not access requests.
    assert_eq!(kinds.len(), ACCESS.len() + 1, "{kinds:?}");
    let dir = example_with(&files);
    // A revoke is of grants the ledger holds: those that admin-requests' earlier requests gave
    // (remove-cirrus.yml revokes what enable-cirrus.yml granted).
    for (_, text) in files.iter().filter(|(_, t)| t.contains("revoke: true")) {
        let doc: serde_json::Value = serde_saphyr::from_str(text).unwrap();
        let resource = doc["action"].as_str().unwrap();
        for f in doc["feedstocks"].as_array().unwrap() {
            let path = dir
                .path()
                .join(format!("grants/{}.yml", f.as_str().unwrap()));
            let mut grants = std::fs::read_to_string(&path)
                .unwrap_or_else(|_| format!("project: {}\ngrants:\n", f.as_str().unwrap()));
            grants.push_str(&format!(
                "  - resource: {resource}\n    granted: 2026-04-07\n    expires: 2027-04-07\n"
            ));
            std::fs::write(&path, grants).unwrap();
        }
    }
    let (out, found) = findings(dir.path());
    let errors: Vec<_> = found.iter().filter(|f| f.1 == "error").collect();
    assert_eq!(errors, Vec::<&(String, String, String, u64)>::new());
    assert_eq!(out.status.code(), Some(0));
    for (name, text) in &files {
        let file = format!("requests/{name}");
        let notes = found
            .iter()
            .filter(|f| f.2 == file && f.0 == "not-an-access-request")
            .count();
        let access = ACCESS
            .iter()
            .any(|a| text.contains(&format!("action: {a}\n")));
        assert_eq!(notes, usize::from(!access), "{file}: {found:?}");
    }
}

#[test]
fn an_action_must_agree_with_its_resources() {
    let wrong = "action: namespace\nfeedstocks:\n  - graph-tool\nresources:\n  - cirun-openstack-gpu-large\nrevoke: false\n";
    let right = "action: cirun\nfeedstocks:\n  - graph-tool\nresources:\n  - cirun-openstack-gpu-large\nrevoke: false\n";
    let dir = example_with(&[
        ("wrong.yml".into(), wrong.into()),
        ("right.yml".into(), right.into()),
    ]);
    let (out, found) = findings(dir.path());
    let errors: Vec<_> = found.iter().filter(|f| f.1 == "error").collect();
    assert_eq!(
        errors,
        [&(
            "admin-requests".to_string(),
            "error".to_string(),
            "requests/wrong.yml".to_string(),
            5
        )],
        "{found:?}"
    );
    assert_eq!(out.status.code(), Some(1));
}

/// Two pending requests that ask for the same grant (graph-tool asked for Blacksmith twice in
/// admin-requests' history) make one grant and one provider change.
#[test]
fn plan_lists_a_grant_asked_for_twice_once() {
    let files: Vec<(String, String)> = history()
        .into_iter()
        .filter(|(n, _)| n.starts_with("blacksmith-graph-tool"))
        .collect();
    assert_eq!(files.len(), 2);
    let dir = example_with(&files);
    let out = gatehouse(&[
        "plan",
        "--today",
        "2026-11-28",
        "--format",
        "json",
        dir.path().to_str().unwrap(),
    ]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let grants: Vec<&serde_json::Value> = plan["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["project"] == "graph-tool")
        .collect();
    assert_eq!(grants.len(), 1, "{plan:#}");
    assert_eq!(grants[0]["resource"], "blacksmith");
    assert_eq!(plan["consumed"].as_array().unwrap().len(), 2, "{plan:#}");
    let provider: Vec<&serde_json::Value> = plan["providers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.to_string().contains("graph-tool"))
        .collect();
    assert_eq!(provider.len(), 1, "{plan:#}");
}

/// Before migrating: which feedstocks of the sample checkouts use a managed label the bundled
/// ledger gives them no grant of (tinygrad's request is still pending; staged-recipes is not a
/// feedstock; tensorflow asks for a CPU size it does not hold), and nobody else.
#[test]
fn import_labels_names_the_feedstocks_that_would_lose_access() {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .current_dir(root())
        .args([
            "import",
            "labels",
            "--today",
            "2026-11-28",
            "--projects",
            "examples/audit-projects",
            "examples/conda-forge",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("3 feedstock(s) use managed labels without a grant"),
        "{text}"
    );
    for line in [
        "  staged-recipes: 1 use(s)",
        "  tensorflow-feedstock: 1 use(s)",
        "  tinygrad-feedstock: 2 use(s)",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert!(!text.contains("pytorch-cpu-feedstock:"), "{text}");
    assert_eq!(text.matches("error[audit-no-grant]").count(), 4, "{text}");
}
