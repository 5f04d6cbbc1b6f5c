//! Contract test: every call gatehouse makes to GitHub's REST API exists in GitHub's own
//! published description of it (`@octokit/openapi`, `generated/api.github.com.json`, pinned by
//! `tests/contract/package-lock.json` and installed by `scripts/ensure-openapi.sh`, which the
//! test script runs).
//!
//! The calls are the ones the binary really sends: `apply`, `expire` and `doctor` run end to end
//! against the loopback stand-in (`support/`), in both of Cirun's modes, and every method and
//! path the stand-in records is looked up among the description's operations. A call that is not
//! there (a wrong path, a method GitHub does not have for it) fails the test and names it.
//! What this does not check yet: request and response bodies against the description's schemas.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use support::world::{GRANT_ALL, Options, World, world_with};

/// One operation of the description: its method and its path template's segments.
struct Operation {
    method: String,
    segments: Vec<String>,
}

fn description_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/contract/node_modules/@octokit/openapi/generated/api.github.com.json")
}

fn operations() -> Vec<Operation> {
    let path = description_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "GitHub's REST description is missing at {} ({e}): run scripts/ensure-openapi.sh (scripts/test.sh does)",
            path.display()
        )
    });
    let description: Value = serde_json::from_str(&text).expect("the description is JSON");
    let mut found = Vec::new();
    for (template, item) in description["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "patch", "delete"] {
            if item.get(method).is_some() {
                found.push(Operation {
                    method: method.to_ascii_uppercase(),
                    segments: template.split('/').map(str::to_string).collect(),
                });
            }
        }
    }
    assert!(found.len() > 900, "only {} operations read", found.len());
    found
}

/// Whether a concrete path fits a template's segments. A parameter matches one segment, except
/// a last `{path}` or `{ref}`, which may span several (a file's path, `heads/main`).
fn fits(template: &[String], path: &[&str]) -> bool {
    let mut at = 0;
    for (i, segment) in template.iter().enumerate() {
        let last = i + 1 == template.len();
        if last && (segment == "{path}" || segment == "{ref}") {
            return path.len() > at && path[at..].iter().all(|s| !s.is_empty());
        }
        let Some(actual) = path.get(at) else {
            return false;
        };
        let is_parameter = segment.starts_with('{') && segment.ends_with('}');
        if is_parameter {
            if actual.is_empty() {
                return false;
            }
        } else if segment != actual {
            return false;
        }
        at += 1;
    }
    at == path.len()
}

/// The calls (`METHOD /path`) that no operation of the description has.
fn unknown<'a>(operations: &[Operation], calls: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut missing = BTreeSet::new();
    for call in calls {
        let (method, path) = call.split_once(' ').expect("METHOD /path");
        let path: Vec<&str> = path.split('/').collect();
        let known = operations
            .iter()
            .any(|op| op.method == method && fits(&op.segments, &path));
        if !known {
            missing.insert(call.clone());
        }
    }
    missing.into_iter().collect()
}

/// A grant, a rerun, a revoke, an expiry and `doctor`: every kind of call apply makes.
fn exercise(w: &World) {
    *w.github.page_size.lock().unwrap() = 4;
    w.request(
        "x",
        &format!(
            "action: grant\nprojects: [x, y]\n{GRANT_ALL}expires: 2026-12-31\nreason: GPU tests\n"
        ),
    );
    for args in [
        &["apply", "--confirm"][..],
        &["apply", "--confirm"][..],
        &["doctor"][..],
    ] {
        let run = w.run(args);
        assert_eq!(run.code, Some(0), "{args:?}: {run}");
    }
    w.request(
        "x-revoke",
        &format!("action: revoke\nprojects: [x]\n{GRANT_ALL}"),
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    let run = w.run(&["--today", "2027-01-02", "expire", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
}

#[test]
fn every_call_to_github_is_in_github_s_published_description() {
    let operations = operations();
    let mut calls: BTreeSet<String> = BTreeSet::new();
    for cirun_api in [false, true] {
        let w = world_with(
            10,
            Options {
                cirun_api,
                ..Default::default()
            },
        );
        exercise(&w);
        calls.extend(w.github.gate.calls());
    }
    // Enough of the API to mean something: the judge, the ledger's issue, the apps, the
    // runner groups, `.cirun`'s contents and Cirun's pull request.
    let distinct: BTreeSet<String> = calls
        .iter()
        .map(|c| c.split('/').take(4).collect::<Vec<_>>().join("/"))
        .collect();
    assert!(calls.len() >= 20, "{calls:#?}");
    let missing = unknown(&operations, calls.iter());
    assert!(
        missing.is_empty(),
        "calls GitHub's description does not have (method and path):\n{missing:#?}\n(of {} distinct calls, {distinct:?})",
        calls.len()
    );
}

#[test]
fn a_call_github_does_not_have_is_found() {
    let operations = operations();
    let calls = [
        "GET /repos/conda-forge/access/pulls/12/reviews".to_string(),
        "PUT /repos/conda-forge/.cirun/contents/.access.yml".to_string(),
        "GET /repos/conda-forge/access/git/ref/heads/main".to_string(),
        // Not GitHub's: a made-up path, a method the path does not have, a missing segment.
        "GET /repos/conda-forge/access/pulls/12/approvals".to_string(),
        "DELETE /repos/conda-forge/access/pulls/12".to_string(),
        "GET /orgs/conda-forge/runner-groups/5".to_string(),
    ];
    assert_eq!(
        unknown(&operations, calls.iter()),
        calls[3..]
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}
