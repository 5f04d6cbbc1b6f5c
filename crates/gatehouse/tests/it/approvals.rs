//! `gatehouse approvals` end to end: the binary, an access repository on disk (the pull
//! request's head), and the loopback fake of GitHub (see `support/`) holding the pull request,
//! its reviews, the reviewer teams, the commit statuses and the comments.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use crate::support;
use crate::support::{FakeGitHub, FakePull, GITHUB_TOKEN, serve_github};

const TODAY: &str = "2026-11-28";
const PR: u64 = 7;
const HEAD: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
const OLD: &str = "0000000000000000000000000000000000000001";
const CONTEXT: &str = "gatehouse/approval";
const REQUEST: &str = "requests/x-gpu.yml";

const SETTINGS: &str = "org: conda-forge\nrepo_suffix: \"-feedstock\"\n\
                        reviewers: { teams: [core] }\n\
                        providers:\n  cirun: { kind: cirun, access_repo: .cirun }\n";

struct World {
    dir: tempfile::TempDir,
    /// The base commit's checkout: the rules as they are before the pull request.
    base: tempfile::TempDir,
    api: String,
    github: Arc<FakeGitHub>,
}

/// An access repository whose `cirun-gpu` resource has its own reviewers (team `gpu`), a
/// pull request #7 by `requester` that adds a request for it, and the teams `core` (ada, bob)
/// and `gpu` (ada, cy).
fn world(files: &[&str]) -> World {
    let fake = FakeGitHub::new();
    {
        let mut s = fake.state.lock().unwrap();
        s.pulls.insert(PR, FakePull::new("requester", HEAD, files));
        s.teams
            .insert("core".into(), vec!["ada".into(), "Bob".into()]);
        s.teams
            .insert("gpu".into(), vec!["ada".into(), "cy".into()]);
        s.permissions.insert(
            ("conda-forge/x-feedstock".into(), "requester".into()),
            "maintain".into(),
        );
    }
    let (api, github) = serve_github(fake);
    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in [
        ("gatehouse.yml", SETTINGS),
        (
            "resources/cirun-gpu.yml",
            "name: cirun-gpu\nprovider: cirun\nlabels: [cirun-gpu]\n\
             reviewers: { teams: [gpu], min_approvals: 1 }\n",
        ),
        (
            "grants/y.yml",
            "project: y\ngrants:\n  - { resource: cirun-gpu, granted: 2026-01-01 }\n",
        ),
        (
            REQUEST,
            "action: grant\nprojects: [x]\nresources: [cirun-gpu]\nreason: needs a GPU\n",
        ),
    ] {
        write(dir.path(), path, contents);
    }
    let base = tempfile::tempdir().unwrap();
    for path in ["gatehouse.yml", "resources/cirun-gpu.yml", "grants/y.yml"] {
        let text = std::fs::read_to_string(dir.path().join(path)).unwrap();
        write(base.path(), path, &text);
    }
    World {
        dir,
        base,
        api,
        github,
    }
}

fn write(dir: &Path, path: &str, contents: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl World {
    fn run(&self, extra: &[&str]) -> Run {
        self.run_env(extra, &[])
    }

    fn run_env(&self, extra: &[&str], env: &[(&str, Option<&str>)]) -> Run {
        let pr = PR.to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.arg("approvals");
        if !extra.contains(&"--for-head") {
            cmd.args(["--pr", &pr]);
        }
        if !extra.contains(&"--base") && !extra.contains(&"--no-base") {
            cmd.arg("--base").arg(self.base.path());
        }
        cmd.args(extra.iter().filter(|a| **a != "--no-base"))
            .arg(self.dir.path())
            .env("GATEHOUSE_GITHUB_API", &self.api)
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .env("GITHUB_REPOSITORY", "conda-forge/access")
            .env("GATEHOUSE_HTTP_BACKOFF_MS", "10")
            .env("GATEHOUSE_HTTP_TIMEOUT_MS", "5000")
            .env("GATEHOUSE_GITHUB_MUTATION_SPACING_MS", "0")
            .env("GATEHOUSE_TODAY", TODAY)
            .env("GATEHOUSE_LOG", "trace")
            .env("NO_COLOR", "1");
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = cmd.output().unwrap();
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !run.stdout.contains(GITHUB_TOKEN) && !run.stderr.contains(GITHUB_TOKEN),
            "the token leaked:\n{run}"
        );
        run
    }

    fn review(&self, login: &str, state: &str, commit: &str) {
        self.github.review(PR, login, state, commit);
    }

    /// The state of the last `gatehouse/approval` status on the head commit.
    fn status(&self) -> String {
        let statuses = self.github.statuses(HEAD, CONTEXT);
        let last = statuses.last().expect("no status was set");
        last["state"].as_str().unwrap().to_string()
    }

    fn description(&self) -> String {
        let statuses = self.github.statuses(HEAD, CONTEXT);
        statuses.last().unwrap()["description"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn comment(&self) -> String {
        let comments = self.github.comments(PR);
        assert_eq!(comments.len(), 1, "{comments:#?}");
        comments[0]["body"].as_str().unwrap().to_string()
    }
}

#[test]
fn approved_by_a_team_member_on_the_head_commit() {
    let w = world(&[REQUEST]);
    w.review("cy", "APPROVED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.status(), "success");
    assert!(w.description().contains("cy"), "{}", w.description());
    let comment = w.comment();
    assert!(
        comment.starts_with("<!-- gatehouse:approvals -->"),
        "{comment}"
    );
    // The plan, and the eligibility report: the repository, the requester's role, whether x
    // holds it already, and how many projects hold it now (y).
    assert!(comment.contains("+ grant   x: cirun-gpu"), "{comment}");
    assert!(
        comment.contains("| `requests/x-gpu.yml` | grant | `x` | `cirun-gpu` | `conda-forge/x-feedstock`: exists | maintain | no | 1 |"),
        "{comment}"
    );
}

/// Project names compare case-insensitively: a request for `Y` is for the project that holds
/// the resource as `y`.
#[test]
fn a_request_in_another_case_is_reported_as_already_held() {
    let w = world(&[REQUEST]);
    write(
        w.dir.path(),
        REQUEST,
        "action: grant\nprojects: [Y]\nresources: [cirun-gpu]\nreason: needs a GPU\n",
    );
    w.review("cy", "APPROVED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(0), "{run}");
    let comment = w.comment();
    let row = comment
        .lines()
        .find(|l| l.starts_with("| `requests/x-gpu.yml` | grant | `Y` |"))
        .unwrap_or_else(|| panic!("{comment}"));
    assert!(row.ends_with("| yes | 1 |"), "{row}");
}

#[test]
fn the_requester_cannot_approve_their_own_request() {
    let w = world(&[REQUEST]);
    w.review("requester", "APPROVED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(w.status(), "pending");
    assert!(
        w.description().contains("@conda-forge/gpu"),
        "{}",
        w.description()
    );
    assert!(w.comment().contains("own pull request"));
}

#[test]
fn a_reviewer_who_is_the_requester_still_cannot_approve() {
    // Even a member of the resource's reviewers: logins compare case-insensitively.
    let w = world(&[REQUEST]);
    w.github
        .state
        .lock()
        .unwrap()
        .pulls
        .get_mut(&PR)
        .unwrap()
        .author = "CY".into();
    w.review("cy", "APPROVED", HEAD);
    assert_eq!(w.run(&[]).code, Some(1));
    assert_eq!(w.status(), "pending");
}

#[test]
fn an_outsider_cannot_approve() {
    let w = world(&[REQUEST]);
    // bob reviews the organisation's requests, not this resource.
    w.review("eve", "APPROVED", HEAD);
    w.review("bob", "APPROVED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(w.status(), "pending");
    assert!(w.comment().contains("not a reviewer of resource cirun-gpu"));
}

#[test]
fn an_approval_of_an_older_commit_does_not_count() {
    let w = world(&[REQUEST]);
    w.review("cy", "APPROVED", OLD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(w.status(), "pending");
    assert!(w.comment().contains("older commit"));
}

#[test]
fn changes_requested_after_an_approval_cancels_it() {
    let w = world(&[REQUEST]);
    w.review("cy", "APPROVED", HEAD);
    w.review("cy", "COMMENTED", HEAD);
    assert_eq!(w.run(&[]).code, Some(0));
    w.review("cy", "CHANGES_REQUESTED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(w.status(), "pending");
}

#[test]
fn editing_grants_directly_needs_the_organisation_reviewers() {
    let w = world(&["grants/y.yml"]);
    // cy reviews the resource, but a direct ledger edit needs the organisation (core).
    w.review("cy", "APPROVED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(w.status(), "pending");
    assert!(
        w.description().contains("@conda-forge/core"),
        "{}",
        w.description()
    );
    assert!(w.comment().contains("edits the ledger directly"));

    w.review("BOB", "APPROVED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.status(), "success");
}

#[test]
fn a_request_together_with_a_rules_edit_needs_someone_in_both_groups() {
    let w = world(&[REQUEST, "resources/cirun-gpu.yml"]);
    w.review("cy", "APPROVED", HEAD); // gpu only
    w.review("bob", "APPROVED", HEAD); // core only
    assert_eq!(w.run(&[]).code, Some(1));
    w.review("ada", "APPROVED", HEAD); // both
    assert_eq!(w.run(&[]).code, Some(0));
}

#[test]
fn the_pull_request_cannot_name_its_own_reviewers() {
    let w = world(&[REQUEST, "resources/cirun-gpu.yml", "gatehouse.yml"]);
    // The head makes eve a reviewer of everything.
    write(
        w.dir.path(),
        "gatehouse.yml",
        &SETTINGS.replace("teams: [core]", "users: [eve]"),
    );
    write(
        w.dir.path(),
        "resources/cirun-gpu.yml",
        "name: cirun-gpu\nprovider: cirun\nlabels: [cirun-gpu]\nreviewers: { users: [eve] }\n",
    );
    w.review("eve", "APPROVED", HEAD);
    // Without --base nothing is judged: the rules are never read from the pull request.
    let run = w.run(&["--no-base"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("--base is required"), "{run}");
    assert!(w.github.statuses(HEAD, CONTEXT).is_empty());
    // Read from the base, the rules do not let eve approve.
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(w.status(), "pending");
}

#[test]
fn a_pull_request_with_more_files_than_github_lists_is_refused() {
    let w = world(&[REQUEST]);
    w.github
        .state
        .lock()
        .unwrap()
        .pulls
        .get_mut(&PR)
        .unwrap()
        .changed_files = Some(3001);
    w.review("cy", "APPROVED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(w.status(), "failure");
    assert!(
        w.description().contains("3001 files"),
        "{}",
        w.description()
    );
}

#[test]
fn a_committer_of_the_pull_request_cannot_approve_it() {
    let w = world(&[REQUEST]);
    w.github
        .state
        .lock()
        .unwrap()
        .pulls
        .get_mut(&PR)
        .unwrap()
        .commits = vec![
        ("requester".into(), "requester".into()),
        ("cy".into(), "cy".into()),
    ];
    w.review("cy", "APPROVED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(w.status(), "pending");
    assert!(
        w.comment().contains("author or committer"),
        "{}",
        w.comment()
    );
}

/// `users:` entries are matched by account id (from people/tos.yml): a reviewer who renamed
/// their account leaves the old login free, and whoever registers it is not that reviewer.
#[test]
fn a_reviewer_login_registered_again_by_someone_else_does_not_count() {
    let w = world(&[REQUEST]);
    let rules =
        "name: cirun-gpu\nprovider: cirun\nlabels: [cirun-gpu]\nreviewers: { users: [dee] }\n";
    write(w.base.path(), "resources/cirun-gpu.yml", rules);
    write(
        w.base.path(),
        "people/tos.yml",
        "- { github: dee, id: 4242 }\n",
    );
    // The account now called `dee` is someone else (another id).
    w.github
        .state
        .lock()
        .unwrap()
        .accounts
        .insert("dee".into(), 777);
    w.review("dee", "APPROVED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(w.status(), "pending");
    // The real dee (id 4242) counts.
    w.github
        .state
        .lock()
        .unwrap()
        .accounts
        .insert("dee".into(), 4242);
    w.review("dee", "APPROVED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(0), "{run}");
}

/// The status is written before the comment: a comment GitHub refuses (422, say, past its
/// 65,536-character limit) never leaves an earlier run's `success` standing.
#[test]
fn a_refused_comment_never_leaves_a_stale_success() {
    let w = world(&[REQUEST]);
    w.review("cy", "APPROVED", HEAD);
    assert_eq!(w.run(&[]).code, Some(0));
    assert_eq!(w.status(), "success");
    w.review("cy", "CHANGES_REQUESTED", HEAD);
    let id = w.github.comments(PR)[0]["id"].as_u64().unwrap();
    w.github.gate.fault(
        &format!("PATCH /repos/conda-forge/access/issues/comments/{id}"),
        &[support::Fault::Status(422)],
    );
    let run = w.run(&[]);
    assert_ne!(run.code, Some(0), "{run}");
    assert_eq!(w.status(), "pending", "{run}");
}

#[test]
fn the_comment_stays_under_github_s_limit() {
    let w = world(&[REQUEST]);
    let projects: Vec<String> = (0..3000).map(|i| format!("project-{i:04}")).collect();
    write(
        w.dir.path(),
        REQUEST,
        &format!(
            "action: grant\nprojects: [{}]\nresources: [cirun-gpu]\nreason: many\n",
            projects.join(", ")
        ),
    );
    w.review("cy", "APPROVED", HEAD);
    let run = w.run_env(
        &[],
        &[
            ("GITHUB_SERVER_URL", Some("https://github.com")),
            ("GITHUB_RUN_ID", Some("99")),
        ],
    );
    assert_eq!(run.code, Some(0), "{run}");
    let comment = w.comment();
    assert!(comment.chars().count() < 65_536, "{}", comment.len());
    assert!(
        comment.contains("https://github.com/conda-forge/access/actions/runs/99"),
        "the comment links to the whole plan"
    );
}

/// Anyone can paste the marker into a comment; only the bot's own comment (by account id) is
/// edited.
#[test]
fn only_the_bot_s_own_comment_is_edited() {
    let w = world(&[REQUEST]);
    {
        let mut s = w.github.state.lock().unwrap();
        s.comments.insert(
            1,
            serde_json::json!({ "id": 1, "issue_number": PR, "repo": "conda-forge/access",
                "body": "<!-- gatehouse:approvals -->\n**Approved**",
                "user": { "login": "mallory", "id": 666, "type": "User" } }),
        );
    }
    w.review("cy", "APPROVED", HEAD);
    assert_eq!(w.run(&[]).code, Some(0));
    let comments = w.github.comments(PR);
    assert_eq!(comments.len(), 2, "{comments:#?}");
    assert_eq!(
        comments[0]["body"],
        "<!-- gatehouse:approvals -->\n**Approved**"
    );
    assert_eq!(comments[1]["user"]["id"], 41898282);
}

#[test]
fn a_moved_head_is_not_judged() {
    let w = world(&[REQUEST]);
    w.review("cy", "APPROVED", HEAD);
    let run = w.run(&["--head-sha", OLD]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("moved on"), "{run}");
    assert!(w.github.statuses(HEAD, CONTEXT).is_empty());
}

#[test]
fn two_runs_write_one_comment_and_edit_it() {
    let w = world(&[REQUEST]);
    // One item a page: every listing (files, reviews, team members, comments) needs pages.
    *w.github.page_size.lock().unwrap() = 1;
    {
        let mut s = w.github.state.lock().unwrap();
        for (id, body) in [(1, "looks good"), (2, "what about the quota?")] {
            s.comments.insert(
                id,
                serde_json::json!({ "id": id, "issue_number": PR, "body": body,
                                    "user": { "login": "someone", "type": "User" } }),
            );
        }
    }
    let run = w.run(&[]);
    assert_eq!(run.code, Some(1), "{run}");
    w.review("cy", "APPROVED", HEAD);
    let run = w.run(&[]);
    assert_eq!(run.code, Some(0), "{run}");

    let comments = "/repos/conda-forge/access/issues/7/comments";
    assert_eq!(w.github.gate.count(&format!("POST {comments}")), 1);
    assert_eq!(
        w.github
            .gate
            .count("PATCH /repos/conda-forge/access/issues/comments/"),
        1
    );
    let ours: Vec<_> = w
        .github
        .comments(PR)
        .into_iter()
        .filter(|c| c["body"].as_str().unwrap().contains("gatehouse:approvals"))
        .collect();
    assert_eq!(ours.len(), 1);
    assert!(ours[0]["body"].as_str().unwrap().contains("**Approved**"));
    assert_eq!(w.github.comments(PR).len(), 3);
    // Both runs set the status, `pending` first and then the verdict; each team was asked
    // for once per run.
    assert_eq!(w.github.statuses(HEAD, CONTEXT).len(), 4);
    assert_eq!(w.status(), "success");
    assert!(
        w.github
            .gate
            .count("GET /orgs/conda-forge/teams/gpu/members")
            >= 2
    );
}

#[test]
fn without_a_token_the_error_names_github_token() {
    let w = world(&[REQUEST]);
    let run = w.run_env(&[], &[("GITHUB_TOKEN", None)]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("GITHUB_TOKEN"), "{run}");
    assert!(w.github.gate.calls().is_empty());
}

#[test]
fn a_rejected_token_is_an_error_and_is_never_printed() {
    let w = world(&[REQUEST]);
    let wrong = "ghp_wrongTokenThatMustNotAppear_0000";
    let run = w.run_env(&[], &[("GITHUB_TOKEN", Some(wrong))]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("GITHUB_TOKEN"), "{run}");
    assert!(!run.stderr.contains(wrong) && !run.stdout.contains(wrong));
}

#[test]
fn a_refused_write_is_a_warning_and_the_exit_status_still_tells() {
    // A fork's pull request gets a read-only token: GitHub answers 403 to the writes.
    let w = world(&[REQUEST]);
    w.review("cy", "APPROVED", HEAD);
    w.github.gate.fault(
        &format!("POST /repos/conda-forge/access/statuses/{HEAD}"),
        &[support::Fault::Status(403)],
    );
    let run = w.run(&[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr
            .contains("warning: could not set the commit status"),
        "{run}"
    );
}

/// On `pull_request_target` the pull request's code is never checked out: its files are read
/// through the contents API at its head commit, as data, over the base checkout.
#[test]
fn the_pull_request_s_files_can_be_read_through_the_api() {
    let w = world(&[REQUEST]);
    let text = std::fs::read_to_string(w.dir.path().join(REQUEST)).unwrap();
    {
        let mut s = w.github.state.lock().unwrap();
        s.files
            .entry("conda-forge/access".into())
            .or_default()
            .entry(HEAD.into())
            .or_default()
            .insert(REQUEST.into(), text);
    }
    w.review("cy", "APPROVED", HEAD);
    // DIR is the base checkout itself: nothing of the pull request is on disk.
    let base = w.base.path().to_str().unwrap().to_string();
    let run = w.run(&[
        "--files-from-api",
        "--base",
        &base,
        "--repo",
        "conda-forge/access",
    ]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.status(), "success");
    assert!(
        w.comment().contains("+ grant   x: cirun-gpu"),
        "{}",
        w.comment()
    );
    assert_eq!(
        w.github
            .gate
            .count("GET /repos/conda-forge/access/contents/requests/x-gpu.yml"),
        1
    );
}

/// A review of a fork's pull request starts the judge through `workflow_run`, which carries no
/// pull request number: the open pull request is found by its head commit.
#[test]
fn a_pull_request_is_found_by_its_head_commit() {
    let w = world(&[REQUEST]);
    w.review("cy", "APPROVED", HEAD);
    let run = w.run(&["--for-head", HEAD]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.status(), "success");
    // A commit that is no open pull request's head: nothing to judge, nothing written.
    let before = w.github.gate.mutations();
    let run = w.run(&["--for-head", OLD]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("nothing to judge"), "{run}");
    assert_eq!(w.github.gate.mutations(), before);
}
