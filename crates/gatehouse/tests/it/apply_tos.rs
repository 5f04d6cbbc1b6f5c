//! Onboarding in one pull request (issue 18 item 5): a request may carry its author's
//! acceptance of the terms of service (`accept_tos`). `apply` reads the merged pull request's
//! author from GitHub (`pulls/get`, by account id) and, when the claim names them, adds them to
//! `people/tos.yml` in the same ledger commit as the grant; a claim naming anyone else holds
//! the request back, with the reason. End to end: the binary in a git repository against the
//! loopback GitHub of `support/`.

use crate::support::world::{REQUESTER, TODAY, World, git, world};

fn requester_id(w: &World) -> i64 {
    w.github.state.lock().unwrap().id_of(REQUESTER)
}

fn request(claim: &str) -> String {
    format!("action: grant\nprojects: [x]\nresources: [cirun-gpu]\naccept_tos: {claim}\n")
}

#[test]
fn the_authors_acceptance_is_recorded_with_the_grant_in_one_commit() {
    let w = world(1);
    let id = requester_id(&w);
    w.request(
        "x",
        &request(&format!("{{ github: {REQUESTER}, id: {id} }}")),
    );
    let before = w.commits();
    // The plan shows it before anything changes.
    let plan = w.run(&["apply"]);
    assert!(
        plan.stdout.contains(&format!(
            "terms of service: {REQUESTER} (id {id}) accepts them"
        )),
        "{plan}"
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.commits(), before + 1, "one ledger commit: {run}");
    let tos = std::fs::read_to_string(w.path().join("people/tos.yml")).unwrap();
    let list: serde_json::Value = serde_saphyr::from_str(&tos).unwrap();
    assert_eq!(
        list,
        serde_json::json!([{ "github": REQUESTER, "id": id, "accepted": TODAY }]),
        "{tos}"
    );
    let changed = git(w.path(), &["show", "--name-only", "--format=%B", "HEAD"]);
    for path in ["grants/x.yml", "people/tos.yml", "requests/x.yml"] {
        assert!(changed.contains(path), "{path} in the commit: {changed}");
    }
    assert!(
        changed.contains(&format!(
            "terms of service accepted by {REQUESTER} (id {id})"
        )),
        "{changed}"
    );
    assert!(w.path().join("grants/x.yml").exists());
    // The result passes `check`.
    let check = w.run(&["check"]);
    assert_eq!(check.code, Some(0), "{check}");
}

#[test]
fn a_claim_naming_someone_else_holds_the_request_back() {
    let w = world(1);
    let id = requester_id(&w);
    // Someone else's login and id; and the requester's login with another account's id.
    for (name, claim) in [
        ("other", "{ github: wolfv, id: 885054 }".to_string()),
        (
            "renamed",
            format!("{{ github: {REQUESTER}, id: {} }}", id + 1),
        ),
    ] {
        w.request(
            name,
            &request(&claim).replace("projects: [x]", &format!("projects: [{name}]")),
        );
    }
    let before = w.commits();
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "it accepts the terms of service for `wolfv` (id 885054), but its pull request was opened by `{REQUESTER}` (id {id})"
        )),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!(
            "for `{REQUESTER}` (id {}), but its pull request was opened by `{REQUESTER}` (id {id})",
            id + 1
        )),
        "{run}"
    );
    assert_eq!(w.commits(), before, "nothing committed");
    assert!(!w.path().join("people/tos.yml").exists());
    for name in ["other", "renamed"] {
        assert!(w.path().join(format!("requests/{name}.yml")).exists());
        assert!(!w.path().join(format!("grants/{name}.yml")).exists());
    }
}
