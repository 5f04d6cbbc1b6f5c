//! Contract test of the webhooks the guard reads, against GitHub's own published description of
//! them (`@octokit/openapi-webhooks`, `generated/api.github.com.json`) and GitHub's example
//! payloads (`@octokit/webhooks-examples`, `api.github.com/index.json`), both pinned by
//! `tests/contract/package-lock.json` and installed by `scripts/ensure-openapi.sh`:
//! - every payload in `tests/fixtures` validates against the description's schema for its
//!   event and action (the payloads `tests/it/serve.rs` builds from them are checked as it sends
//!   them, in `Guard::deliver`);
//! - the guard's parsing (`parse_event`, and a run's context from a `workflow_run`) accepts
//!   every example payload of every event it consumes (the examples are older than the
//!   description and lack some fields it now requires, so they are parsed, not validated);
//! - a payload of the wrong shape is caught and named.

use std::path::{Path, PathBuf};

use gatehouse_server::events::{Event, ROLE_EVENTS, run_record};
use gatehouse_server::parse_event;
use serde_json::{Value, json};

use crate::schema::Description;

/// The events the guard acts on (every other one is stored and not read).
fn consumed() -> Vec<&'static str> {
    let mut events = vec![
        "workflow_run",
        "workflow_job",
        "ping",
        "issue_comment",
        "pull_request_review",
    ];
    events.extend(ROLE_EVENTS.iter().copied());
    events
}

fn fixtures() -> Vec<(String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            // `event.action.json` or `event.json`.
            let event = name.split('.').next().unwrap().to_string();
            (event, p)
        })
        .collect();
    found.sort();
    found
}

fn examples() -> Vec<(String, Vec<Value>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../tests/contract/node_modules/@octokit/webhooks-examples/api.github.com/index.json",
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "GitHub's example payloads are missing at {} ({e}): run scripts/ensure-openapi.sh",
            path.display()
        )
    });
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            (name, e["examples"].as_array().unwrap().clone())
        })
        .collect()
}

#[test]
fn every_fixture_payload_follows_github_s_webhook_description() {
    let started = std::time::Instant::now();
    let hooks = Description::webhooks();
    let fixtures = fixtures();
    assert!(fixtures.len() >= 10, "{fixtures:?}");
    let mut problems = Vec::new();
    for (event, path) in &fixtures {
        let payload: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for p in hooks.check_webhook(event, &payload) {
            problems.push(format!("{}: {p}", path.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "{} fixtures checked in {:?}",
        fixtures.len(),
        started.elapsed()
    );
}

#[test]
fn the_guard_parses_every_example_payload_of_the_events_it_consumes() {
    let examples = examples();
    let mut parsed = 0;
    let mut problems = Vec::new();
    for event in consumed() {
        let (_, payloads) = examples
            .iter()
            .find(|(name, _)| name == event)
            .unwrap_or_else(|| panic!("no example payload of {event}"));
        assert!(!payloads.is_empty(), "{event}");
        for (i, payload) in payloads.iter().enumerate() {
            let place = format!("{event} example {} ({})", i + 1, payload["action"]);
            let body = serde_json::to_vec(payload).unwrap();
            match parse_event(event, &body) {
                Err(e) => problems.push(format!("{place}: the guard refuses it: {e:#}")),
                Ok(Event::WorkflowRun(run)) => {
                    let repository = run.repository.full_name.clone();
                    if run_record(run.workflow_run, &repository, run.sender).is_none() {
                        problems.push(format!("{place}: no person caused the run"));
                    }
                }
                Ok(Event::WorkflowJob(job)) => assert!(job.workflow_job.id > 0, "{place}"),
                Ok(Event::RoleChange(name, _)) => assert_eq!(name, event),
                Ok(Event::IssueComment(c)) => assert!(c.comment.id > 0, "{place}"),
                Ok(Event::PullRequestReview(r)) => assert!(r.review.id > 0, "{place}"),
                Ok(Event::Ping) => assert_eq!(event, "ping"),
                Ok(Event::Other) => problems.push(format!("{place}: not read as {event}")),
            }
            parsed += 1;
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(parsed >= 30, "{parsed}");
}

#[test]
fn a_payload_of_the_wrong_shape_is_found_and_named() {
    let hooks = Description::webhooks();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workflow_job.queued.json");
    let good: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(hooks.check_webhook("workflow_job", &good), vec![]);
    // A job id as a string.
    let mut wrong = good.clone();
    wrong["workflow_job"]["id"] = json!("7");
    let found = hooks.check_webhook("workflow_job", &wrong);
    assert!(
        found.iter().any(|p| p.call == "workflow_job.queued"
            && p.what.starts_with("payload at `/workflow_job/id`")),
        "{found:#?}"
    );
    // Labels that are not a list of strings, and a payload with no repository.
    let mut wrong = good.clone();
    wrong["workflow_job"]["labels"] = json!("gpu-large");
    assert!(!hooks.check_webhook("workflow_job", &wrong).is_empty());
    let mut wrong = good.clone();
    wrong.as_object_mut().unwrap().remove("repository");
    let found = hooks.check_webhook("workflow_job", &wrong);
    assert!(
        found.iter().any(|p| p.what.contains("repository")),
        "{found:#?}"
    );
    // An action the event does not have.
    let mut wrong = good;
    wrong["action"] = json!("exploded");
    let found = hooks.check_webhook("workflow_job", &wrong);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].what.contains("describes no such event"),
        "{}",
        found[0]
    );
}
