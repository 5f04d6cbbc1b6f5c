//! GitHub's answer shapes, whole: one builder per schema of GitHub's OpenAPI description
//! (`@octokit/openapi` 23.0.2, `generated/api.github.com.json`, `components/schemas`), each
//! giving every field the schema requires. The handlers (`lib.rs`, `guard_api.rs`) pass what
//! the fake's state knows (ids, names, shas) and lay what a test stored over the rest with
//! [`overlay`]; the other fields are GitHub's documented examples or plain defaults.

use serde_json::{Value, json};

/// Lays `given` over `base`: objects field by field (recursively), anything else replaced.
pub fn overlay(base: &mut Value, given: &Value) {
    match (base, given) {
        (Value::Object(b), Value::Object(g)) => {
            for (k, v) in g {
                match b.get_mut(k) {
                    Some(slot) => overlay(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// An account as GitHub's REST answers give one (`simple-user`, also `team-member`).
pub fn account(login: &str, id: i64) -> Value {
    let url = format!("https://api.github.com/users/{login}");
    json!({
        "login": login, "id": id, "node_id": format!("U_{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "", "url": url, "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{url}/followers"),
        "following_url": format!("{url}/following{{/other_user}}"),
        "gists_url": format!("{url}/gists{{/gist_id}}"),
        "starred_url": format!("{url}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{url}/subscriptions"),
        "organizations_url": format!("{url}/orgs"), "repos_url": format!("{url}/repos"),
        "events_url": format!("{url}/events{{/privacy}}"),
        "received_events_url": format!("{url}/received_events"),
        "type": "User", "site_admin": false,
    })
}

/// An account of `type` (`User`, `Bot`, `Organization`): [`account`] with that type.
pub fn account_of_type(login: &str, id: i64, kind: &str) -> Value {
    let mut a = account(login, id);
    a["type"] = json!(kind);
    a
}

/// A repository as listings give one (`minimal-repository`), owned by `owner`.
pub fn minimal_repository(id: u64, full_name: &str, owner: Value) -> Value {
    let url = format!("https://api.github.com/repos/{full_name}");
    let mut repo = json!({
        "id": id, "node_id": format!("R_{id}"),
        "name": full_name.split('/').nth(1).unwrap_or(full_name), "full_name": full_name,
        "owner": owner, "private": false,
        "html_url": format!("https://github.com/{full_name}"), "description": null,
        "fork": false, "url": url,
    });
    for (field, tail) in [
        ("archive_url", "/{archive_format}{/ref}"),
        ("assignees_url", "/assignees{/user}"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("branches_url", "/branches{/branch}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("comments_url", "/comments{/number}"),
        ("commits_url", "/commits{/sha}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("contents_url", "/contents/{+path}"),
        ("contributors_url", "/contributors"),
        ("deployments_url", "/deployments"),
        ("downloads_url", "/downloads"),
        ("events_url", "/events"),
        ("forks_url", "/forks"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("hooks_url", "/hooks"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("issue_events_url", "/issues/events{/number}"),
        ("issues_url", "/issues{/number}"),
        ("keys_url", "/keys{/key_id}"),
        ("labels_url", "/labels{/name}"),
        ("languages_url", "/languages"),
        ("merges_url", "/merges"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("pulls_url", "/pulls{/number}"),
        ("releases_url", "/releases{/id}"),
        ("stargazers_url", "/stargazers"),
        ("statuses_url", "/statuses/{sha}"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("tags_url", "/tags"),
        ("teams_url", "/teams"),
        ("trees_url", "/git/trees{/sha}"),
    ] {
        repo[field] = json!(format!("{url}{tail}"));
    }
    repo
}

/// A repository (`repository`): [`minimal_repository`] with its counts, flags and clone URLs.
pub fn repository(id: u64, full_name: &str, owner: Value, archived: bool) -> Value {
    let mut repo = minimal_repository(id, full_name, owner);
    overlay(
        &mut repo,
        &json!({
            "clone_url": format!("https://github.com/{full_name}.git"),
            "git_url": format!("git://github.com/{full_name}.git"),
            "ssh_url": format!("git@github.com:{full_name}.git"),
            "svn_url": format!("https://github.com/{full_name}"),
            "mirror_url": null, "homepage": null, "language": null, "license": null,
            "default_branch": "main", "archived": archived, "disabled": false,
            "forks": 0, "forks_count": 0, "open_issues": 0, "open_issues_count": 0,
            "stargazers_count": 0, "watchers": 0, "watchers_count": 0, "size": 0,
            "has_downloads": true, "has_issues": true, "has_projects": true, "has_wiki": true,
            "has_pages": false, "visibility": "public",
            "pushed_at": "2026-01-01T00:00:00Z", "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }),
    );
    repo
}

/// A repository as `repos/get` answers it (`full-repository`).
pub fn full_repository(id: u64, full_name: &str, owner: Value, archived: bool) -> Value {
    let mut repo = repository(id, full_name, owner, archived);
    overlay(
        &mut repo,
        &json!({ "has_discussions": false, "network_count": 0, "subscribers_count": 0 }),
    );
    repo
}

/// An organisation's runner group (`runner-groups-org`); gatehouse's are never the default.
pub fn runner_group(org: &str, id: u64, name: &str, allows_public: bool) -> Value {
    let url = format!("https://api.github.com/orgs/{org}/actions/runner-groups/{id}");
    json!({
        "id": id, "name": name, "visibility": "selected", "default": false,
        "selected_repositories_url": format!("{url}/repositories"),
        "runners_url": format!("{url}/runners"), "inherited": false,
        "allows_public_repositories": allows_public,
        "restricted_to_workflows": false, "selected_workflows": [],
        "workflow_restrictions_read_only": false,
    })
}

/// A GitHub-hosted larger runner (`actions-hosted-runner`) in runner group `group`: GitHub's
/// documented example (`components/examples/actions-hosted-runner`: a 4-core Ubuntu runner)
/// with the fake's id, name, group and `maximum_runners`.
pub fn hosted_runner(id: u64, name: &str, group: u64, maximum: u32) -> Value {
    json!({
        "id": id, "name": name, "runner_group_id": group, "platform": "linux-x64",
        "image_details": {
            "id": "ubuntu-22.04", "size_gb": 86, "display_name": "22.04", "source": "github",
        },
        "machine_size_details": { "id": "4-core", "cpu_cores": 4, "memory_gb": 16, "storage_gb": 150 },
        "status": "Ready", "maximum_runners": maximum, "public_ip_enabled": false,
        "public_ips": [], "last_active_on": null,
    })
}

/// `rate-limit-overview`: the same budget for `rate` and every resource listed.
pub fn rate_limit_overview(limit: u64, remaining: u64, reset: u64) -> Value {
    let budget = |resource: &str| {
        json!({
            "limit": limit, "remaining": remaining, "reset": reset,
            "used": limit - remaining, "resource": resource,
        })
    };
    json!({
        "resources": { "core": budget("core"), "search": budget("search") },
        "rate": budget("core"),
    })
}

/// One side of a pull request (`head` or `base`): branch `branch` at `sha` of `repo`.
pub fn pull_side(repo: &Value, branch: &str, sha: &str) -> Value {
    let owner = &repo["owner"];
    json!({
        "label": format!("{}:{branch}", owner["login"].as_str().unwrap_or("")),
        "ref": branch, "sha": sha, "user": owner, "repo": repo,
    })
}

/// A pull request as listed (`pull-request-simple`): number `number` of `repo` (a
/// `repository`), opened by `user` from `head` into `base` (each from [`pull_side`]).
pub fn pull_request_simple(
    repo: &Value,
    number: u64,
    user: Value,
    head: Value,
    base: Value,
) -> Value {
    let full_name = repo["full_name"].as_str().unwrap_or("");
    let api = format!("https://api.github.com/repos/{full_name}");
    let html = format!("https://github.com/{full_name}/pull/{number}");
    let sha = head["sha"].as_str().unwrap_or("").to_string();
    let link = |href: String| json!({ "href": href });
    let links = json!({
        "self": link(format!("{api}/pulls/{number}")), "html": link(html.clone()),
        "issue": link(format!("{api}/issues/{number}")),
        "comments": link(format!("{api}/issues/{number}/comments")),
        "review_comments": link(format!("{api}/pulls/{number}/comments")),
        "review_comment": link(format!("{api}/pulls/comments{{/number}}")),
        "commits": link(format!("{api}/pulls/{number}/commits")),
        "statuses": link(format!("{api}/statuses/{sha}")),
    });
    json!({
        "url": format!("{api}/pulls/{number}"), "id": number, "node_id": format!("PR_{number}"),
        "html_url": html, "diff_url": format!("{html}.diff"), "patch_url": format!("{html}.patch"),
        "issue_url": format!("{api}/issues/{number}"),
        "commits_url": format!("{api}/pulls/{number}/commits"),
        "review_comments_url": format!("{api}/pulls/{number}/comments"),
        "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
        "comments_url": format!("{api}/issues/{number}/comments"),
        "statuses_url": format!("{api}/statuses/{sha}"),
        "number": number, "state": "open", "locked": false, "title": format!("Pull request #{number}"),
        "user": user, "body": null, "labels": [], "milestone": null, "active_lock_reason": null,
        "created_at": "2026-11-27T09:00:00Z", "updated_at": "2026-11-27T09:00:00Z",
        "closed_at": null, "merged_at": null, "merge_commit_sha": null, "assignee": null,
        "assignees": [], "requested_reviewers": [], "requested_teams": [],
        "head": head, "base": base,
        "_links": links,
        "author_association": "CONTRIBUTOR", "auto_merge": null, "draft": false,
    })
}

/// A pull request as `pulls/get` answers it (`pull-request`): [`pull_request_simple`] with its
/// counts and merge state.
pub fn pull_request(simple: Value, changed_files: u64, commits: u64) -> Value {
    let mut pull = simple;
    let merged = !pull["merged_at"].is_null();
    overlay(
        &mut pull,
        &json!({
            "merged": merged, "mergeable": if merged { Value::Null } else { json!(true) },
            "rebaseable": null, "mergeable_state": if merged { "unknown" } else { "clean" },
            "merged_by": null, "comments": 0, "review_comments": 0,
            "maintainer_can_modify": false, "commits": commits, "additions": changed_files,
            "deletions": 0, "changed_files": changed_files,
        }),
    );
    pull
}

/// A review of pull request `number` of `full_name` (`pull-request-review`) by `user`.
pub fn pull_request_review(
    full_name: &str,
    number: u64,
    id: u64,
    user: Value,
    state: &str,
    commit_id: &str,
) -> Value {
    let html = format!("https://github.com/{full_name}/pull/{number}#pullrequestreview-{id}");
    let pull = format!("https://api.github.com/repos/{full_name}/pulls/{number}");
    json!({
        "id": id, "node_id": format!("PRR_{id}"), "user": user, "body": "", "state": state,
        "commit_id": commit_id, "html_url": html, "pull_request_url": pull,
        "_links": { "html": { "href": html }, "pull_request": { "href": pull } },
        "author_association": "MEMBER", "submitted_at": "2026-11-27T10:00:00Z",
    })
}

/// Issue `number` of `full_name` (`issue`), opened by the token's account, with no labels,
/// assignee or milestone.
pub fn issue(full_name: &str, number: u64, title: &Value, body: &Value, state: &str) -> Value {
    let api = format!("https://api.github.com/repos/{full_name}");
    let url = format!("{api}/issues/{number}");
    json!({
        "id": 7_000_000 + number, "node_id": format!("I_{number}"), "number": number,
        "url": url, "repository_url": api, "labels_url": format!("{url}/labels{{/name}}"),
        "comments_url": format!("{url}/comments"), "events_url": format!("{url}/events"),
        "html_url": format!("https://github.com/{full_name}/issues/{number}"),
        "title": title, "body": body, "state": state, "locked": false, "labels": [],
        "assignee": null, "milestone": null, "comments": 0, "closed_at": null,
        "user": account("gatehouse-bot", 4242), "created_at": "2026-11-27T10:00:00Z",
        "updated_at": "2026-11-27T10:00:00Z",
    })
}

/// A commit of `full_name` (`commit`), by the GitHub accounts `author` and `committer`.
pub fn commit(full_name: &str, sha: &str, author: Value, committer: Value) -> Value {
    let api = format!("https://api.github.com/repos/{full_name}");
    let git_user = |a: &Value| {
        let login = a["login"].as_str().unwrap_or("");
        json!({
            "name": login, "email": format!("{login}@users.noreply.github.com"),
            "date": "2026-11-27T09:00:00Z",
        })
    };
    json!({
        "url": format!("{api}/commits/{sha}"), "sha": sha, "node_id": format!("C_{sha}"),
        "html_url": format!("https://github.com/{full_name}/commit/{sha}"),
        "comments_url": format!("{api}/commits/{sha}/comments"),
        "commit": {
            "url": format!("{api}/git/commits/{sha}"), "author": git_user(&author),
            "committer": git_user(&committer), "message": "", "comment_count": 0,
            "tree": { "sha": sha, "url": format!("{api}/git/trees/{sha}") },
        },
        "author": author, "committer": committer, "parents": [],
    })
}

/// A file a pull request changes (`diff-entry`): `filename` of `full_name`, now blob `sha` at
/// commit `head`.
pub fn diff_entry(full_name: &str, head: &str, filename: &str, sha: &str) -> Value {
    json!({
        "sha": sha, "filename": filename, "status": "modified",
        "additions": 1, "deletions": 1, "changes": 2,
        "blob_url": format!("https://github.com/{full_name}/blob/{head}/{filename}"),
        "raw_url": format!("https://github.com/{full_name}/raw/{head}/{filename}"),
        "contents_url": format!("https://api.github.com/repos/{full_name}/contents/{filename}?ref={head}"),
    })
}

/// The links of file `path` of `full_name` at `git_ref`, blob `sha` (`content-file` and
/// `file-commit`'s `content` share them).
fn file_links(full_name: &str, git_ref: &str, path: &str, sha: &str, size: usize) -> Value {
    let url = format!("https://api.github.com/repos/{full_name}/contents/{path}?ref={git_ref}");
    let git = format!("https://api.github.com/repos/{full_name}/git/blobs/{sha}");
    let html = format!("https://github.com/{full_name}/blob/{git_ref}/{path}");
    json!({
        "type": "file", "name": path.rsplit('/').next().unwrap_or(path), "path": path,
        "sha": sha, "size": size, "url": url, "git_url": git, "html_url": html,
        "download_url": format!("https://raw.githubusercontent.com/{full_name}/{git_ref}/{path}"),
        "_links": { "self": url, "git": git, "html": html },
    })
}

/// File `path` of `full_name` at `git_ref` (`content-file`), `size` bytes, `content` in
/// base64 as GitHub wraps it.
pub fn content_file(
    full_name: &str,
    git_ref: &str,
    path: &str,
    sha: &str,
    size: usize,
    content: String,
) -> Value {
    let mut file = file_links(full_name, git_ref, path, sha, size);
    file["encoding"] = json!("base64");
    file["content"] = json!(content);
    file
}

/// What `repos/create-or-update-file-contents` answers (`file-commit`): the file written on
/// `branch` and commit `commit_sha` with `message`.
pub fn file_commit(
    full_name: &str,
    branch: &str,
    path: &str,
    (sha, size): (&str, usize),
    commit_sha: &str,
    message: &str,
) -> Value {
    let api = format!("https://api.github.com/repos/{full_name}");
    let who = json!({
        "name": "github-actions[bot]", "date": "2026-11-27T09:00:00Z",
        "email": "41898282+github-actions[bot]@users.noreply.github.com",
    });
    json!({
        "content": file_links(full_name, branch, path, sha, size),
        "commit": {
            "sha": commit_sha, "node_id": format!("C_{commit_sha}"),
            "url": format!("{api}/git/commits/{commit_sha}"),
            "html_url": format!("https://github.com/{full_name}/commit/{commit_sha}"),
            "author": who, "committer": who, "message": message,
            "tree": { "sha": commit_sha, "url": format!("{api}/git/trees/{commit_sha}") },
            "parents": [],
            "verification": {
                "verified": false, "reason": "unsigned", "signature": null, "payload": null,
                "verified_at": null,
            },
        },
    })
}

/// A workflow job (`job`, as `actions/get-job-for-workflow-run` answers it) of `owner/name`,
/// in state `status`; its run id is the job id / 10, as the tests number them.
pub fn job(owner: &str, name: &str, id: i64, status: &str) -> Value {
    let (o, r) = (owner, name);
    let done = status == "completed";
    let api = format!("https://api.github.com/repos/{o}/{r}");
    json!({
        "id": id, "node_id": format!("CR_{id}"), "run_id": id / 10,
        "run_url": format!("{api}/actions/runs/{}", id / 10),
        "head_sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", "workflow_name": "CI",
        "head_branch": "main", "name": "build",
        "url": format!("{api}/actions/jobs/{id}"),
        "html_url": format!("https://github.com/{o}/{r}/actions/runs/{}/job/{id}", id / 10),
        "status": status, "conclusion": if done { json!("success") } else { Value::Null },
        "created_at": "2026-01-01T00:00:00Z", "started_at": "2026-01-01T00:00:05Z",
        "completed_at": if done { json!("2026-01-01T00:30:00Z") } else { Value::Null },
        "check_run_url": format!("{api}/check-runs/{id}"), "labels": ["gpu-large"],
        "runner_id": 1, "runner_name": "runner-1", "runner_group_id": 1,
        "runner_group_name": "Default", "steps": [],
    })
}
