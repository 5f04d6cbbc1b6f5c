//! Ledger changes from requests and expiry, applied to grant files.

use std::collections::HashMap;

use gatehouse_core::Repo;
use gatehouse_core::check::run_all;
use gatehouse_core::ledger::{
    LedgerChange, RequestOrigin, apply_changes, plan_expiry, plan_requests,
};
use jiff::civil::{Date, date};

const TODAY: Date = date(2026, 11, 28);

fn base() -> Vec<(String, String)> {
    [
        ("gatehouse.yml", "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n"),
        ("resources/gpu.yml", "name: gpu\nprovider: cirun\nlabels: [gpu]\nmax_duration: 1y\ndefaults: { pull_request: true }\n"),
        ("resources/cpu.yml", "name: cpu\nprovider: cirun\nlabels: [cpu]\n"),
        ("grants/pytorch-cpu.yml", "project: pytorch-cpu\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    expires: 2027-03-01\n  - resource: cpu\n    granted: 2026-03-01\n"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

fn with(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut files = base();
    files.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    files
}

fn origin(path: &str) -> HashMap<String, RequestOrigin> {
    HashMap::from([(
        path.to_string(),
        RequestOrigin {
            url: Some("https://github.com/conda-forge/admin-requests/pull/1234".into()),
            approved_by: vec!["jaimergp".into()],
            author: None,
        },
    )])
}

/// Applies the plan: the new files replace the old, consumed requests go away.
fn applied(
    files: Vec<(String, String)>,
    plan_changes: &[LedgerChange],
    consumed: &[String],
) -> Vec<(String, String)> {
    let repo = Repo::from_sources(files.clone());
    let new = apply_changes(&repo, plan_changes);
    let mut out: Vec<(String, String)> = files
        .into_iter()
        .filter(|(p, _)| !consumed.contains(p) && !new.contains_key(p))
        .collect();
    for (path, file) in new {
        if let Some(f) = file {
            out.push((path, serde_saphyr::to_string(&f).unwrap()));
        }
    }
    out
}

#[test]
fn a_grant_request_becomes_a_grant_with_defaults_and_provenance() {
    let files = with(&[(
        "requests/tinygrad.yml",
        "action: cirun\nfeedstocks: [tinygrad]\nresources: [gpu]\nrevoke: false\nsend_pr: true\n",
    )]);
    let repo = Repo::from_sources(files.clone());
    let plan = plan_requests(&repo, TODAY, &origin("requests/tinygrad.yml"));
    assert_eq!(plan.consumed, vec!["requests/tinygrad.yml"]);
    assert!(plan.skipped.is_empty());
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(
        plan.changes[0].to_string(),
        "+ grant   tinygrad: gpu, pull requests too, until 2027-11-28 (https://github.com/conda-forge/admin-requests/pull/1234)"
    );
    let after = applied(files, &plan.changes, &plan.consumed);
    let text = &after
        .iter()
        .find(|(p, _)| p == "grants/tinygrad.yml")
        .unwrap()
        .1;
    assert!(
        text.contains("granted: \"2026-11-28\"") || text.contains("granted: 2026-11-28"),
        "{text}"
    );
    assert!(
        text.contains("approved_by:\n  - jaimergp") || text.contains("- jaimergp"),
        "{text}"
    );
    assert!(text.contains("send_pr: true"), "{text}");
    // The result is a valid ledger, and applying again changes nothing.
    let repo = Repo::from_sources(after);
    assert!(
        run_all(&repo, TODAY).is_empty(),
        "{:?}",
        run_all(&repo, TODAY).sorted()
    );
    let again = plan_requests(&repo, TODAY, &HashMap::new());
    assert!(again.changes.is_empty() && again.consumed.is_empty());
}

#[test]
fn a_revoke_removes_the_grant_and_an_empty_file() {
    let files = with(&[(
        "requests/r1.yml",
        "action: revoke\nprojects: [pytorch-cpu]\nresources: [gpu, cpu]\n",
    )]);
    let repo = Repo::from_sources(files.clone());
    let plan = plan_requests(&repo, TODAY, &HashMap::new());
    assert_eq!(plan.changes.len(), 2);
    let new = apply_changes(&repo, &plan.changes);
    assert!(matches!(new.get("grants/pytorch-cpu.yml"), Some(None)));
}

#[test]
fn a_renew_moves_only_the_expiry() {
    let files = with(&[(
        "requests/r.yml",
        "action: renew\nprojects: [pytorch-cpu]\nresources: [gpu]\n",
    )]);
    let repo = Repo::from_sources(files.clone());
    let plan = plan_requests(&repo, TODAY, &HashMap::new());
    assert_eq!(
        plan.changes[0].to_string(),
        "~ renew   pytorch-cpu: gpu from 2027-03-01 to 2027-11-28 (requests/r.yml)"
    );
    let after = applied(files, &plan.changes, &plan.consumed);
    let text = &after
        .iter()
        .find(|(p, _)| p == "grants/pytorch-cpu.yml")
        .unwrap()
        .1;
    assert!(
        text.contains("2027-11-28") && text.contains("2026-03-01") && !text.contains("2027-03-01"),
        "{text}"
    );
}

#[test]
fn a_request_with_errors_is_skipped_and_kept() {
    let files = with(&[(
        "requests/bad.yml",
        "action: grant\nprojects: [tinygrad]\nresources: [gpux]\n",
    )]);
    let plan = plan_requests(&Repo::from_sources(files), TODAY, &HashMap::new());
    assert!(plan.changes.is_empty());
    assert!(plan.consumed.is_empty());
    assert_eq!(plan.skipped.len(), 1);
    assert_eq!(plan.skipped[0].0, "requests/bad.yml");
}

#[test]
fn expired_grants_are_revoked_the_day_after() {
    let repo = Repo::from_sources(base());
    assert!(plan_expiry(&repo, date(2027, 3, 1)).is_empty());
    let changes = plan_expiry(&repo, date(2027, 3, 2));
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].to_string(),
        "- revoke  pytorch-cpu: gpu (expired on 2027-03-01)"
    );
    let new = apply_changes(&repo, &changes);
    let file = new["grants/pytorch-cpu.yml"].as_ref().unwrap();
    assert_eq!(file.grants.len(), 1);
    assert_eq!(file.grants[0].resource.as_str(), "cpu");
}

/// A request spells the project as it likes; the ledger keeps one file per project, the one
/// already there, with its own spelling.
#[test]
fn a_revoke_in_another_case_edits_the_existing_file() {
    let files = with(&[(
        "requests/r.yml",
        "action: revoke\nprojects: [PyTorch-CPU]\nresources: [gpu]\n",
    )]);
    let repo = Repo::from_sources(files);
    let plan = plan_requests(&repo, TODAY, &HashMap::new());
    assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
    assert_eq!(
        plan.changes
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>(),
        ["- revoke  pytorch-cpu: gpu (requests/r.yml)"]
    );
    let new = apply_changes(&repo, &plan.changes);
    assert_eq!(new.keys().collect::<Vec<_>>(), ["grants/pytorch-cpu.yml"]);
    let file = new["grants/pytorch-cpu.yml"].as_ref().unwrap();
    assert_eq!(file.project.as_str(), "pytorch-cpu");
    assert_eq!(file.grants.len(), 1);
    assert_eq!(file.grants[0].resource.as_str(), "cpu");
}

#[test]
fn a_grant_in_another_case_is_added_to_the_existing_file() {
    let files = with(&[
        (
            "resources/big.yml",
            "name: big\nprovider: cirun\nlabels: [big]\n",
        ),
        (
            "requests/g.yml",
            "action: grant\nprojects: [PyTorch-CPU]\nresources: [big]\n",
        ),
    ]);
    let repo = Repo::from_sources(files.clone());
    let plan = plan_requests(&repo, TODAY, &HashMap::new());
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].project(), "pytorch-cpu");
    let after = applied(files, &plan.changes, &plan.consumed);
    let grant_files: Vec<&str> = after
        .iter()
        .map(|(p, _)| p.as_str())
        .filter(|p| p.starts_with("grants/"))
        .collect();
    assert_eq!(grant_files, ["grants/pytorch-cpu.yml"]);
    let repo = Repo::from_sources(after);
    assert_eq!(repo.grants[0].value.project.as_str(), "pytorch-cpu");
    assert_eq!(repo.grants[0].value.grants.len(), 3);
    assert!(
        run_all(&repo, TODAY).is_empty(),
        "{:?}",
        run_all(&repo, TODAY).sorted()
    );
}

/// Two requests for a new project in two spellings make one file, not two that `check` then
/// refuses as a duplicate project.
#[test]
fn new_grants_to_one_project_in_two_cases_make_one_file() {
    let files = with(&[
        (
            "requests/a.yml",
            "action: grant\nprojects: [TinyGrad]\nresources: [gpu]\n",
        ),
        (
            "requests/b.yml",
            "action: grant\nprojects: [tinygrad]\nresources: [cpu]\n",
        ),
    ]);
    let repo = Repo::from_sources(files.clone());
    let plan = plan_requests(&repo, TODAY, &HashMap::new());
    assert_eq!(
        plan.changes.iter().map(|c| c.project()).collect::<Vec<_>>(),
        ["TinyGrad", "TinyGrad"]
    );
    let after = applied(files, &plan.changes, &plan.consumed);
    let repo = Repo::from_sources(after);
    let paths: Vec<&str> = repo.grants.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["grants/TinyGrad.yml", "grants/pytorch-cpu.yml"]);
    assert!(
        run_all(&repo, TODAY).is_empty(),
        "{:?}",
        run_all(&repo, TODAY).sorted()
    );
}

/// `apply_changes` edits the file it read, whatever spelling a change carries.
#[test]
fn a_change_is_written_to_the_file_that_was_read() {
    let repo = Repo::from_sources(base());
    let change = LedgerChange::Revoke {
        project: "PYTORCH-cpu".into(),
        resource: "gpu".into(),
        why: "test".into(),
    };
    let new = apply_changes(&repo, &[change]);
    assert_eq!(new.keys().collect::<Vec<_>>(), ["grants/pytorch-cpu.yml"]);
}
