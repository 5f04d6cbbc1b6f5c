//! Contract test: every call gatehouse makes to GitHub's REST API is one GitHub's own published
//! description of it allows (`@octokit/openapi`, `generated/api.github.com.json`, pinned by
//! `tests/contract/package-lock.json` and installed by `scripts/ensure-openapi.sh`, which the
//! test script runs), and every answer the stand-in gives to those calls is one GitHub could
//! give.
//!
//! The calls are the ones the binary really sends: `apply`, `expire` and `doctor` run end to end
//! against the loopback stand-in (`support/`), in both of Cirun's modes, through a recording
//! proxy (`tests/contract/recorder.rs`) that keeps every request and answer. Each is checked
//! (`tests/contract/schema.rs`): the method and path are an operation of the description, the
//! query parameters are the operation's, the request body validates against the operation's
//! `requestBody` schema, and the stand-in's status is one the operation lists and its answer
//! validates against that response's schema. A call that is not there, a wrong body or a
//! stand-in answer of the wrong shape fails the test and is named with the place in the body.
//!
//! Every answer is held to the whole description: each field GitHub requires must be there, of
//! GitHub's type and shape (the stand-in builds each shape whole, `crates/gatehouse-fake/src/
//! shapes.rs`), as the guard's stand-in is in `crates/gatehouse-server/tests/it/serve.rs`. Not
//! checked: formats (`date-time`, `uri`) and headers.

#[path = "../../../../tests/contract/recorder.rs"]
mod recorder;
#[path = "../../../../tests/contract/schema.rs"]
mod schema;

use std::collections::BTreeSet;

use recorder::Recorder;
use schema::{Description, Exchange, Problem};
use serde_json::{Value, json};

use crate::support;
use crate::support::world::{GRANT_ALL, Options, World, world_with};

/// A grant (whose author accepts the terms of service with it, read from `pulls/get`), a
/// rerun, a revoke, an expiry and `doctor`: every kind of call apply makes. The runner group's
/// resource has a cap and the group a GitHub-hosted larger runner of its name, so apply lists
/// the larger runners and sets one's `maximum_runners`.
fn exercise(w: &World) {
    *w.github.page_size.lock().unwrap() = 4;
    w.github
        .add_hosted_runner("gpu-runner", support::world::GROUP_ID, 10);
    w.cap_gpu_runner("quota: { concurrency: 4 }\n");
    let author = w
        .github
        .state
        .lock()
        .unwrap()
        .id_of(support::world::REQUESTER);
    w.request(
        "x",
        &format!(
            "action: grant\nprojects: [x, y]\n{GRANT_ALL}expires: 2026-12-31\nreason: GPU tests\naccept_tos: {{ github: {}, id: {author} }}\n",
            support::world::REQUESTER
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
    assert_eq!(w.github.hosted_runner_maximum("gpu-runner"), Some(4));
    let tos = std::fs::read_to_string(w.path().join("people/tos.yml")).unwrap_or_default();
    assert!(
        tos.contains(&format!("id: {author}")),
        "the author's acceptance, verified with pulls/get, is recorded: {tos}"
    );
    w.request(
        "x-revoke",
        &format!("action: revoke\nprojects: [x]\n{GRANT_ALL}"),
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    let run = w.run(&["--today", "2027-01-02", "expire", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
}

/// What `apply`, `expire` and `doctor` send to GitHub and what the stand-in answers, in both of
/// Cirun's modes (recorded once per test binary).
fn recorded() -> &'static [Exchange] {
    static RECORDED: std::sync::OnceLock<Vec<Exchange>> = std::sync::OnceLock::new();
    RECORDED.get_or_init(record)
}

fn record() -> Vec<Exchange> {
    let mut exchanges = Vec::new();
    for cirun_api in [false, true] {
        let mut w = world_with(
            10,
            Options {
                cirun_api,
                ..Default::default()
            },
        );
        let proxy = Recorder::start(&w.github_api);
        w.github_api = proxy.base.clone();
        exercise(&w);
        exchanges.extend(proxy.exchanges());
    }
    exchanges
}

/// The problems of every exchange, each told once.
fn problems(exchanges: &[Exchange]) -> Vec<Problem> {
    let rest = Description::rest();
    let found: BTreeSet<Problem> = exchanges.iter().flat_map(|e| rest.check(e)).collect();
    found.into_iter().collect()
}

#[test]
fn every_call_to_github_and_every_answer_of_its_stand_in_follow_github_s_published_description() {
    let started = std::time::Instant::now();
    let exchanges = recorded();
    let calls: BTreeSet<String> = exchanges.iter().map(Exchange::call).collect();
    // Enough of the API to mean something: the judge, the ledger's issue, the apps, the
    // runner groups and their larger runners, `.cirun`'s contents and Cirun's pull request,
    // with bodies both ways.
    assert!(calls.len() >= 20, "{calls:#?}");
    for call in [
        "GET /orgs/conda-forge/actions/hosted-runners",
        "PATCH /orgs/conda-forge/actions/hosted-runners/1",
    ] {
        assert!(calls.contains(call), "{call} is checked too: {calls:#?}");
    }
    let with_body = exchanges.iter().filter(|e| e.request.is_some()).count();
    let answered = exchanges.iter().filter(|e| e.answer.is_some()).count();
    assert!(
        with_body >= 10 && answered >= 40,
        "{with_body} bodies, {answered} answers"
    );
    let found = problems(exchanges);
    let listed: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(
        found.is_empty(),
        "calls or answers GitHub's description does not allow:\n{}\n(of {} calls, {} distinct)",
        listed.join("\n"),
        exchanges.len(),
        calls.len()
    );
    eprintln!(
        "{} calls ({} distinct) checked in {:?}",
        exchanges.len(),
        calls.len(),
        started.elapsed()
    );
}

fn exchange(call: &str, request: Option<Value>, status: u16, answer: Option<Value>) -> Exchange {
    let (method, target) = call.split_once(' ').expect("METHOD /path");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Exchange {
        method: method.to_string(),
        path: path.to_string(),
        query: query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        request,
        status,
        answer,
    }
}

fn calls_of(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.call.as_str()).collect()
}

#[test]
fn a_call_github_does_not_have_is_found() {
    let rest = Description::rest();
    let operation = |c: &str| {
        let (method, path) = c.split_once(' ').unwrap();
        rest.operation(method, path).map(|o| o.id.as_str())
    };
    assert_eq!(
        operation("GET /repos/conda-forge/access/pulls/12/reviews"),
        Some("pulls/list-reviews")
    );
    assert_eq!(
        operation("PUT /repos/conda-forge/.cirun/contents/.access.yml"),
        Some("repos/create-or-update-file-contents")
    );
    assert_eq!(
        operation("GET /repos/conda-forge/access/git/ref/heads/main"),
        Some("git/get-ref")
    );
    // Not GitHub's: a made-up path, a method the path does not have, a missing segment.
    for unknown in [
        "GET /repos/conda-forge/access/pulls/12/approvals",
        "DELETE /repos/conda-forge/access/pulls/12",
        "GET /orgs/conda-forge/runner-groups/5",
    ] {
        assert_eq!(operation(unknown), None, "{unknown}");
        let found = rest.check(&exchange(unknown, None, 200, Some(json!({}))));
        assert_eq!(calls_of(&found), [unknown], "{found:?}");
        assert!(found[0].what.contains("no operation"), "{}", found[0]);
    }
}

#[test]
fn a_wrong_request_body_or_query_parameter_is_found_and_named() {
    let rest = Description::rest();
    // `title` must be a string (or integer); a list is not one.
    let found = rest.check(&exchange(
        "POST /repos/conda-forge/access/issues",
        Some(json!({"title": ["a", "list"], "body": "b"})),
        201,
        None,
    ));
    let text: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(
        found
            .iter()
            .any(|p| p.operation == "issues/create"
                && p.what.starts_with("request body at `/title`")),
        "{text:#?}"
    );
    // A required field missing: a status without its `state`.
    let found = rest.check(&exchange(
        "POST /repos/conda-forge/access/statuses/abc",
        Some(json!({"description": "no state"})),
        201,
        None,
    ));
    assert!(
        found
            .iter()
            .any(|p| p.operation == "repos/create-commit-status"
                && p.what.contains("request body at `/`")
                && p.what.contains("state")),
        "{found:#?}"
    );
    // A query parameter the operation does not have.
    let found = rest.check(&exchange(
        "GET /repos/conda-forge/access/pulls?state=closed&colour=red",
        None,
        200,
        Some(json!([])),
    ));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].what.contains("query parameter `colour`"),
        "{}",
        found[0]
    );
}

#[test]
fn a_stand_in_answer_of_the_wrong_shape_is_found_and_named() {
    let rest = Description::rest();
    let good = json!({"message": "Not Found", "documentation_url": "https://docs.github.com"});
    assert_eq!(
        rest.check(&exchange(
            "GET /repos/conda-forge/x-feedstock",
            None,
            404,
            Some(good)
        )),
        vec![]
    );
    // A field of the wrong type, deep in a recorded answer: a runner group's id as a string.
    let exchanges = recorded();
    let groups = exchanges
        .iter()
        .find(|e| e.path == "/orgs/conda-forge/actions/runner-groups" && e.status == 200)
        .expect("apply lists the runner groups");
    assert_eq!(rest.check(groups), vec![]);
    let mut wrong = groups.clone();
    wrong.answer.as_mut().unwrap()["runner_groups"][0]["id"] = json!("5");
    let found = rest.check(&wrong);
    assert!(
        found.iter().any(
            |p| p.operation == "actions/list-self-hosted-runner-groups-for-org"
                && p.what.starts_with("answer 200 at `/runner_groups/0/id`")
        ),
        "{found:#?}"
    );
    // A field GitHub always gives left out (one gatehouse does not read): the answer is
    // incomplete.
    let mut partial = groups.clone();
    let group = partial.answer.as_mut().unwrap()["runner_groups"][0]
        .as_object_mut()
        .unwrap();
    assert!(group.remove("default").is_some(), "{group:?}");
    let found = rest.check(&partial);
    assert!(
        found
            .iter()
            .any(|p| p.what.contains("\"default\" is a required property")),
        "{found:#?}"
    );
    // A status the operation does not list, and an answer with no body where GitHub has one.
    let found = rest.check(&exchange(
        "GET /repos/conda-forge/x-feedstock",
        None,
        418,
        None,
    ));
    assert!(found[0].what.contains("answered 418"), "{found:#?}");
    let found = rest.check(&exchange(
        "GET /repos/conda-forge/x-feedstock",
        None,
        200,
        None,
    ));
    assert!(found[0].what.contains("with no body"), "{found:#?}");
}
