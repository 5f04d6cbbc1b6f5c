//! The endpoints the runtime guard (`gatehouse serve`) calls, with the paths, methods and
//! answer shapes of GitHub's OpenAPI description (`@octokit/openapi`,
//! `generated/api.github.com.json`; operation ids named on each handler):
//!
//! - `repos/list-collaborators`: `GET /repos/{owner}/{repo}/collaborators`, `collaborator`
//!   items (login, id, `permissions`, `role_name`), with an `ETag`; `If-None-Match` with the
//!   same tag answers 304 (GitHub's conditional requests, "Use conditional requests if
//!   appropriate" in docs.github.com's REST best practices);
//! - `actions/get-workflow-run-attempt`: `GET
//!   /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}`, a `workflow-run`;
//! - `actions/get-job-for-workflow-run`: `GET /repos/{owner}/{repo}/actions/jobs/{job_id}`,
//!   a `job` (its `status` as the test sets it);
//! - `actions/cancel-workflow-run`: `POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel`,
//!   202 (409 when the run is over: inject it as a fault);
//! - `checks/create`: `POST /repos/{owner}/{repo}/check-runs`, 201 with a `check-run`;
//! - `actions/re-run-workflow-failed-jobs`: `POST
//!   /repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs`, 201 with an
//!   `empty-object`; the run is noted in `reruns` (the test delivers the new attempt's events);
//! - `reactions/create-for-issue-comment`: `POST
//!   /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions`, 201 with a `reaction`
//!   (200 when the same reaction was left before), noted in `reactions`;
//! - `teams/list-repos-in-org`: `GET /orgs/{org}/teams/{team_slug}/repos`, `minimal-repository`
//!   items;
//! - `orgs/list-webhook-deliveries`: `GET /orgs/{org}/hooks/{hook_id}/deliveries`,
//!   `hook-delivery-item`s, newest first, in cursor pages linked by `Link: <...>; rel="next"`;
//! - `orgs/redeliver-webhook-delivery`: `POST
//!   /orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts`, 202, and the delivery is
//!   sent again, signed (`X-Hub-Signature-256`), to the receiver the test names.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::shapes::{account, job, minimal_repository};
use crate::{FakeGitHub, Gh, error, hash};

/// One delivery of the organisation webhook: the item as `orgs/list-webhook-deliveries` lists
/// it (`id`, `guid`, `delivered_at`, `event`, ...), and what a redelivery sends.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub listed: Value,
    /// `X-GitHub-Event`.
    pub event: String,
    pub body: Value,
}

/// Deliveries a page of `orgs/list-webhook-deliveries`, so that a listing needs several.
const DELIVERIES_PER_PAGE: usize = 2;

pub(crate) fn routes() -> Router<Arc<FakeGitHub>> {
    Router::new()
        .route("/repos/{o}/{r}/collaborators", get(collaborators))
        .route(
            "/repos/{o}/{r}/actions/runs/{id}/attempts/{attempt}",
            get(run_attempt),
        )
        .route("/repos/{o}/{r}/actions/runs/{id}/cancel", post(cancel))
        .route("/repos/{o}/{r}/actions/jobs/{id}", get(get_job))
        .route("/repos/{o}/{r}/check-runs", post(create_check_run))
        .route(
            "/repos/{o}/{r}/actions/runs/{id}/rerun-failed-jobs",
            post(rerun_failed_jobs),
        )
        .route(
            "/repos/{o}/{r}/issues/comments/{id}/reactions",
            post(react_to_comment),
        )
        .route("/orgs/{org}/teams/{team}/repos", get(team_repos))
        .route("/orgs/{org}/hooks/{hook}/deliveries", get(hook_deliveries))
        .route(
            "/orgs/{org}/hooks/{hook}/deliveries/{id}/attempts",
            post(redeliver),
        )
}

/// `repos/list-collaborators`: everyone in `collaborators`, by account id, in one page.
async fn collaborators(State(f): Gh, h: HeaderMap) -> Response {
    let list: Vec<Value> = f
        .state
        .lock()
        .unwrap()
        .collaborators
        .iter()
        .map(|(id, (login, role))| {
            let rank = ["read", "triage", "write", "maintain", "admin"]
                .iter()
                .position(|r| r == role)
                .unwrap_or(0);
            let mut person = account(login, *id);
            person["role_name"] = json!(role);
            person["permissions"] = json!({
                "pull": true, "triage": rank >= 1, "push": rank >= 2,
                "maintain": rank >= 3, "admin": rank >= 4,
            });
            person
        })
        .collect();
    let etag = format!("\"{}\"", hash(&Value::Array(list.clone()).to_string()));
    if h.get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut resp = axum::Json(list).into_response();
    resp.headers_mut().insert("etag", etag.parse().unwrap());
    resp
}

/// `actions/get-workflow-run-attempt`: the run set in `runs`, or one pushed by `runs_by`.
async fn run_attempt(
    State(f): Gh,
    Path((o, r, id, attempt)): Path<(String, String, i64, i64)>,
) -> Response {
    let s = f.state.lock().unwrap();
    if let Some(run) = s.runs.get(&(id, attempt)) {
        return axum::Json(run.clone()).into_response();
    }
    let Some((login, account)) = &s.runs_by else {
        return error(404, "Not Found");
    };
    let full = format!("{o}/{r}");
    axum::Json(json!({
        "id": id, "run_attempt": attempt, "event": "push",
        "path": ".github/workflows/ci.yml", "head_branch": "main",
        "repository": { "full_name": full }, "head_repository": { "full_name": full },
        "actor": { "login": login, "id": account },
        "triggering_actor": { "login": login, "id": account },
    }))
    .into_response()
}

/// `actions/get-job-for-workflow-run`: a `job` with the status set in `jobs`; 404 for a job
/// not listed.
async fn get_job(State(f): Gh, Path((o, r, id)): Path<(String, String, i64)>) -> Response {
    let Some(status) = f.state.lock().unwrap().jobs.get(&id).cloned() else {
        return error(404, "Not Found");
    };
    axum::Json(job(&o, &r, id, &status)).into_response()
}

/// `actions/cancel-workflow-run`: 202; the first cancel of each run is noted with the time it
/// arrived.
async fn cancel(State(f): Gh, Path((_o, _r, id)): Path<(String, String, i64)>) -> Response {
    f.state
        .lock()
        .unwrap()
        .cancels
        .entry(id)
        .or_insert_with(Instant::now);
    (StatusCode::ACCEPTED, axum::Json(json!({}))).into_response()
}

/// `checks/create`: 201 with the new check run's id; the body is kept in `check_runs`.
async fn create_check_run(State(f): Gh, uri: Uri, axum::Json(body): axum::Json<Value>) -> Response {
    let answer = check_run_answer(&uri, &body);
    f.state.lock().unwrap().check_runs.push(body);
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// `actions/re-run-workflow-failed-jobs`: 201 with an empty object; noted in `reruns`.
async fn rerun_failed_jobs(
    State(f): Gh,
    Path((o, r, id)): Path<(String, String, i64)>,
) -> Response {
    f.state
        .lock()
        .unwrap()
        .reruns
        .push((format!("{o}/{r}"), id));
    (StatusCode::CREATED, axum::Json(json!({}))).into_response()
}

/// `reactions/create-for-issue-comment`: 201 with the `reaction` (200 when this reaction was
/// left on the comment before); noted in `reactions`.
async fn react_to_comment(
    State(f): Gh,
    Path((_o, _r, id)): Path<(String, String, u64)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    const REACTIONS: [&str; 8] = [
        "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes",
    ];
    let Some(content) = body["content"].as_str().filter(|c| REACTIONS.contains(c)) else {
        return error(422, "content is not a reaction");
    };
    let mut s = f.state.lock().unwrap();
    let before = s.reactions.iter().any(|(c, r)| *c == id && r == content);
    if !before {
        s.reactions.push((id, content.to_string()));
    }
    let reaction = json!({
        "id": 1 + s.reactions.len() as i64, "node_id": "MDg6UmVhY3Rpb24x",
        "user": account("gatehouse[bot]", 41898283), "content": content,
        "created_at": "2026-01-01T00:00:00Z",
    });
    let status = if before {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, axum::Json(reaction)).into_response()
}

/// `teams/list-repos-in-org`: the team's repositories.
async fn team_repos(State(f): Gh, Path((org, team)): Path<(String, String)>) -> Response {
    match f.state.lock().unwrap().team_repos.get(&team) {
        Some(repos) => axum::Json(
            repos
                .iter()
                .map(|r| minimal_repository(1296269, r, account(&org, 9919)))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        None => error(404, "Not Found"),
    }
}

/// `orgs/list-webhook-deliveries`: [`DELIVERIES_PER_PAGE`] a page, the `cursor` an offset.
async fn hook_deliveries(
    State(f): Gh,
    uri: Uri,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = f.state.lock().unwrap();
    if let Some(status) = s.hook_status {
        return error(status, "Must have admin rights to Repository.");
    }
    let all: Vec<Value> = s
        .hook_deliveries
        .iter()
        .map(|d| delivery_item(&d.listed))
        .collect();
    drop(s);
    let start = q
        .get("cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0usize);
    let end = (start + DELIVERIES_PER_PAGE).min(all.len());
    let mut resp = axum::Json(all[start.min(end)..end].to_vec()).into_response();
    if end < all.len() {
        let host = h.get("host").and_then(|v| v.to_str().ok()).unwrap_or("");
        let link = format!(
            "<http://{host}{}?per_page=100&cursor={end}>; rel=\"next\"",
            uri.path()
        );
        resp.headers_mut().insert("link", link.parse().unwrap());
    }
    resp
}

/// `orgs/redeliver-webhook-delivery`: 202, and the delivery goes again to `redeliver_to`,
/// signed with its secret as GitHub signs (`sha256=` HMAC of the body).
async fn redeliver(State(f): Gh, Path((_org, _hook, id)): Path<(String, u64, u64)>) -> Response {
    let (found, target) = {
        let s = f.state.lock().unwrap();
        let found = s
            .hook_deliveries
            .iter()
            .find(|d| d.listed["id"] == json!(id))
            .cloned();
        (found, s.redeliver_to.clone())
    };
    let (Some(delivery), Some((base, secret))) = (found, target) else {
        return error(404, "Not Found");
    };
    tokio::spawn(async move {
        let body = serde_json::to_vec(&delivery.body).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&body);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sent = reqwest::Client::new()
            .post(format!("{base}/webhook"))
            .header("content-type", "application/json")
            .header("x-github-event", delivery.event)
            .header(
                "x-github-delivery",
                delivery.listed["guid"].as_str().unwrap_or_default(),
            )
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await;
        if let Err(e) = sent {
            eprintln!("the fake GitHub could not redeliver to {base}: {e}");
        }
    });
    (StatusCode::ACCEPTED, axum::Json(json!({}))).into_response()
}

// ---------------------------------------------------------------------------------------------
// Answers in GitHub's full shapes (the contract tests hold the guard's answers to them)

/// The check run `POST /repos/{owner}/{repo}/check-runs` created (`check-run`), from its body.
fn check_run_answer(uri: &Uri, body: &Value) -> Value {
    let repo = uri
        .path()
        .trim_start_matches("/repos/")
        .trim_end_matches("/check-runs");
    let output = &body["output"];
    json!({
        "id": 4, "node_id": "MDg6Q2hlY2tSdW40", "external_id": "",
        "head_sha": body["head_sha"], "name": body["name"],
        "url": format!("https://api.github.com/repos/{repo}/check-runs/4"),
        "html_url": format!("https://github.com/{repo}/runs/4"),
        "details_url": body.get("details_url").cloned().unwrap_or(Value::Null),
        "status": body.get("status").cloned().unwrap_or(json!("completed")),
        "conclusion": body.get("conclusion").cloned().unwrap_or(Value::Null),
        "started_at": body.get("started_at").cloned().unwrap_or(json!("2026-01-01T00:00:00Z")),
        "completed_at": body.get("completed_at").cloned().unwrap_or(Value::Null),
        "output": {
            "title": output.get("title").cloned().unwrap_or(Value::Null),
            "summary": output.get("summary").cloned().unwrap_or(Value::Null),
            "text": output.get("text").cloned().unwrap_or(Value::Null),
            "annotations_count": 0,
            "annotations_url": format!("https://api.github.com/repos/{repo}/check-runs/4/annotations"),
        },
        "check_suite": { "id": 5 }, "app": null, "pull_requests": [],
    })
}

/// A hook's delivery as GitHub lists it (`hook-delivery-item`): what a test gives, with
/// GitHub's other fields.
fn delivery_item(given: &Value) -> Value {
    let mut item = json!({
        "redelivery": false, "duration": 0.27, "status": "OK", "status_code": 200,
        "action": null, "installation_id": null, "repository_id": null,
    });
    for (k, v) in given.as_object().unwrap() {
        item[k] = v.clone();
    }
    item
}
