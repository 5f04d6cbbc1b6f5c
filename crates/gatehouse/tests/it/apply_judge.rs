//! `apply` judges every request again (issue 14): a request is granted only when the merged
//! pull request that brought it was approved by the reviewers of its base commit, at its final
//! head, by someone who wrote and committed none of it. Anything else stays in `requests/`,
//! changes nothing, and is listed in one issue. End to end: the binary in a git repository
//! against the loopback GitHub of `support/`.

use serde_json::Value;

use crate::support;
use crate::support::world::{GRANT_ALL, REQUESTER, REVIEWER, World, world};

const HELD: &str = "gatehouse: merged requests held back";

fn held_issues(w: &World) -> Vec<Value> {
    w.github
        .issues_in("conda-forge/access")
        .into_iter()
        .filter(|i| i["title"] == HELD)
        .collect()
}

fn nothing_granted(w: &World, name: &str) {
    assert!(w.path().join(format!("requests/{name}.yml")).exists());
    assert!(!w.path().join("grants/x.yml").exists());
    assert_eq!(w.holds("x"), (false, false, false));
}

#[test]
fn a_request_committed_straight_to_main_is_held_and_reported_once() {
    let w = world(1);
    w.commit_direct("x", &format!("action: grant\nprojects: [x]\n{GRANT_ALL}"));
    let before = w.commits();
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("no pull request"), "{run}");
    nothing_granted(&w, "x");
    assert_eq!(w.commits(), before, "no ledger commit");
    let issues = held_issues(&w);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(
        issues[0]["body"]
            .as_str()
            .unwrap()
            .contains("requests/x.yml"),
        "{issues:?}"
    );
    // Again: the same one issue, not a second.
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(held_issues(&w).len(), 1);
    assert_eq!(
        w.github.gate.count("POST /repos/conda-forge/access/issues"),
        1
    );
}

#[test]
fn a_request_merged_without_approval_is_held() {
    let w = world(1);
    let n = w.request_unreviewed("x", &format!("action: grant\nprojects: [x]\n{GRANT_ALL}"));
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains(&format!("#{n} was merged without")),
        "{run}"
    );
    nothing_granted(&w, "x");

    // An approval of an older commit (before a last push) does not count either.
    w.github.review(
        n,
        REVIEWER,
        "APPROVED",
        "0000000000000000000000000000000000000001",
    );
    let run = w.run(&["apply", "--confirm"]);
    nothing_granted(&w, "x");
    assert!(
        run.stderr.contains("older commit") || run.stderr.contains("without"),
        "{run}"
    );

    // Approved at its head: granted, and the issue is closed.
    let head = w.head();
    w.github.review(n, REVIEWER, "APPROVED", &head);
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!w.path().join("requests/x.yml").exists(), "{run}");
    assert_eq!(w.holds("x"), (true, true, true));
    let issues = held_issues(&w);
    assert_eq!(issues[0]["state"], "closed", "{issues:?}");
}

#[test]
fn the_ledger_records_only_the_approvals_that_counted() {
    let w = world(1);
    let n = w.request_unreviewed("x", &format!("action: grant\nprojects: [x]\n{GRANT_ALL}"));
    let head = w.head();
    w.github.review(n, "eve", "APPROVED", &head); // not a reviewer
    w.github.review(
        n,
        REVIEWER,
        "APPROVED",
        "0000000000000000000000000000000000000001",
    );
    w.github.review(n, "bob", "APPROVED", &head);
    w.github
        .state
        .lock()
        .unwrap()
        .teams
        .insert("core".into(), vec![REVIEWER.into(), "bob".into()]);
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    let text = std::fs::read_to_string(w.path().join("grants/x.yml")).unwrap();
    let grant: Value = serde_saphyr::from_str(&text).unwrap();
    let id = w.github.state.lock().unwrap().id_of("bob");
    assert_eq!(
        grant["grants"][0]["approved_by"],
        serde_json::json!([format!("bob (id {id})")]),
        "{text}"
    );
}

#[test]
fn a_reviewer_who_committed_to_the_pull_request_cannot_approve_it() {
    let w = world(1);
    let n = w.request("x", &format!("action: grant\nprojects: [x]\n{GRANT_ALL}"));
    w.github
        .state
        .lock()
        .unwrap()
        .pulls
        .get_mut(&n)
        .unwrap()
        .commits = vec![
        (REQUESTER.into(), REQUESTER.into()),
        (REQUESTER.into(), REVIEWER.into()),
    ];
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    nothing_granted(&w, "x");
    assert!(
        held_issues(&w)[0]["body"]
            .as_str()
            .unwrap()
            .contains("without the approvals")
    );
}

#[test]
fn accept_unreviewed_grants_a_direct_commit_only_by_the_listed_account_id() {
    let w = world(1);
    let admin_id = w.github.state.lock().unwrap().id_of("admin");
    let settings = std::fs::read_to_string(w.path().join("gatehouse.yml")).unwrap();
    std::fs::write(
        w.path().join("gatehouse.yml"),
        format!("{settings}accept_unreviewed:\n  - {{ github: admin, id: {admin_id} }}\n"),
    )
    .unwrap();
    support::world::git(w.path(), &["commit", "-qam", "accept admin"]);

    // Someone else's direct commit stays.
    let sha = w.commit_direct(
        "y",
        "action: grant\nprojects: [y]\nresources: [cirun-gpu]\n",
    );
    w.github
        .state
        .lock()
        .unwrap()
        .direct_commits
        .insert(sha, ("mallory".into(), "mallory".into()));
    // The admin's is granted.
    let sha = w.commit_direct("x", &format!("action: grant\nprojects: [x]\n{GRANT_ALL}"));
    w.github
        .state
        .lock()
        .unwrap()
        .direct_commits
        .insert(sha, ("admin".into(), "admin".into()));
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.holds("x"), (true, true, true), "{run}");
    assert!(w.path().join("requests/y.yml").exists(), "{run}");
    assert!(!w.path().join("grants/y.yml").exists(), "{run}");
}

#[test]
fn a_merged_request_that_check_rejects_is_reported_at_once() {
    let w = world(1);
    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [no-such-resource]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    let issues = held_issues(&w);
    assert_eq!(issues.len(), 1, "{run}");
    assert!(
        issues[0]["body"]
            .as_str()
            .unwrap()
            .contains("requests/x.yml"),
        "{issues:?}"
    );
}

#[test]
fn without_github_nothing_is_granted() {
    let w = world(1);
    w.request("x", &format!("action: grant\nprojects: [x]\n{GRANT_ALL}"));
    let run = w.run_env(&["apply", "--confirm"], &[("GITHUB_REPOSITORY", None)]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("GITHUB_REPOSITORY"), "{run}");
    nothing_granted(&w, "x");
}

/// Expiry is judged on the day `apply` runs: a request whose end lies beyond the resource's
/// `max_duration` from that day is held and reported, not granted.
#[test]
fn expiry_is_judged_against_the_day_apply_runs() {
    let w = world(0);
    support::world::write(
        w.path(),
        "resources/cirun-gpu.yml",
        "name: cirun-gpu\nprovider: cirun\nlabels: [cirun-gpu]\nmax_duration: 30d\n",
    );
    support::world::git(
        w.path(),
        &["commit", "-qam", "cirun-gpu for 30 days at most"],
    );
    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [cirun-gpu]\nexpires: 2026-12-20\n",
    );
    // Merged on the 28th of November, applied two months later: past its end.
    let run = w.run(&["--today", "2027-01-28", "apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!w.path().join("grants/x.yml").exists(), "{run}");
    let issues = held_issues(&w);
    assert_eq!(issues.len(), 1, "{run}");
    assert!(
        issues[0]["body"]
            .as_str()
            .unwrap()
            .contains("requests/x.yml"),
        "{issues:?}"
    );
}
