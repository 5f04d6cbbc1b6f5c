//! `gatehouse apply`, `expire` and `doctor` end to end: the binary in a temporary git
//! repository against loopback fakes of GitHub and Cirun (see `support/`).

use std::process::Command;

use serde_json::Value;

use crate::support;
use crate::support::Fault;
use crate::support::world::{
    GRANT_ALL, INSTALLATION, Options, World, git, world, world_with, write,
};

/// A world whose Cirun provider goes through Cirun's API (`via: api`).
fn cirun_api_world(background: usize) -> World {
    world_with(
        background,
        Options {
            cirun_api: true,
            ..Default::default()
        },
    )
}

// ---------------------------------------------------------------------------------------------

#[test]
fn grant_revoke_and_expire_reach_every_provider() {
    let w = world(10);
    // Listings come in pages of four, so every observation needs several pages.
    *w.github.page_size.lock().unwrap() = 4;
    w.request(
        "x",
        &format!(
            "action: grant\nprojects: [x, y]\n{GRANT_ALL}expires: 2026-12-31\nreason: GPU tests\n"
        ),
    );
    let before = w.commits();

    // Without --confirm: the plan, and nothing changes anywhere (the request's pull request
    // is read, to judge it).
    let dry = w.run(&["apply"]);
    assert_eq!(dry.code, Some(0), "{dry}");
    assert!(dry.stdout.contains("+ grant   x: cirun-gpu"), "{dry}");
    assert!(w.path().join("requests/x.yml").exists());
    assert!(!w.path().join("grants/x.yml").exists());
    assert_eq!(w.commits(), before);
    assert_eq!(w.mutations(), 0);
    assert_eq!(w.cirun.gate.calls().len(), 0);

    // --confirm: the ledger, one commit, then every provider.
    let env = [("GITHUB_REPOSITORY", Some("conda-forge/access"))];
    let run = w.run_env(&["apply", "--confirm"], &env);
    assert_eq!(run.code, Some(0), "{run}");
    let text = std::fs::read_to_string(w.path().join("grants/x.yml")).unwrap();
    let grant: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(grant["grants"].as_array().unwrap().len(), 3, "{text}");
    let first = &grant["grants"][0];
    assert_eq!(first["granted"], "2026-11-28", "{text}");
    assert_eq!(first["expires"], "2026-12-31", "{text}");
    assert_eq!(
        first["request"], "https://github.com/conda-forge/access/pull/12",
        "{text}"
    );
    // The judge's counted approvers, by login and account id.
    let id = w.github.state.lock().unwrap().id_of("jaimergp");
    assert_eq!(
        first["approved_by"],
        serde_json::json!([format!("jaimergp (id {id})")]),
        "{text}"
    );
    assert!(!w.path().join("requests/x.yml").exists());
    assert_eq!(w.commits(), before + 1);
    let message = git(w.path(), &["log", "-1", "--format=%B"]);
    assert!(
        message.contains("grant x: cirun-gpu (https://github.com/conda-forge/access/pull/12)"),
        "{message}"
    );
    assert!(
        git(w.path(), &["status", "--porcelain"]).trim().is_empty(),
        "the tree is clean"
    );
    assert_eq!(w.holds("x"), (true, true, true));
    assert_eq!(w.holds("y"), (true, true, true));
    assert_eq!(w.holds("b09"), (true, true, true));
    assert_eq!(w.github.installation(INSTALLATION).len(), 12);
    assert_eq!(
        w.github.commits_to("conda-forge/.cirun").len(),
        1,
        "Cirun's policy is one commit of .access.yml"
    );

    // Again: no commit, no mutating call.
    let mutations = w.mutations();
    let again = w.run(&["apply", "--confirm"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(w.commits(), before + 1);
    assert_eq!(w.mutations(), mutations, "{again}");

    // Revoke x: gone everywhere, y untouched.
    w.request(
        "x-revoke",
        &format!("action: revoke\nprojects: [x]\n{GRANT_ALL}"),
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!w.path().join("grants/x.yml").exists());
    assert_eq!(w.holds("x"), (false, false, false));
    assert_eq!(w.holds("y"), (true, true, true));
    let message = git(w.path(), &["log", "-1", "--format=%B"]);
    assert!(
        message.contains("revoke x: namespace (https://github.com/conda-forge/access/pull/13)"),
        "{message}"
    );

    // After y's expiry: `expire` revokes it everywhere and says so in the commit.
    let commits = w.commits();
    let run = w.run(&["--today", "2027-01-02", "expire", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.commits(), commits + 1);
    assert!(!w.path().join("grants/y.yml").exists());
    assert_eq!(w.holds("y"), (false, false, false));
    assert_eq!(w.holds("b00"), (true, true, true));
    let message = git(w.path(), &["log", "-1", "--format=%B"]);
    assert!(
        message.contains("revoke y: gpu-runner (expired on 2026-12-31)"),
        "{message}"
    );
}

#[test]
fn a_run_with_faults_fails_loudly_and_a_rerun_converges_without_a_second_commit() {
    let w = cirun_api_world(3);
    *w.github.page_size.lock().unwrap() = 2;
    w.request("x", &format!("action: grant\nprojects: [x]\n{GRANT_ALL}"));
    w.cirun.gate.fail_all(Some(500));
    w.github.gate.fault(
        "GET /user/installations/77/repositories",
        &[Fault::RetryAfter(1), Fault::Status(502)],
    );
    w.github.gate.fault(
        "PUT /orgs/conda-forge/actions/runner-groups/5/repositories",
        &[Fault::Drop],
    );
    let before = w.commits();

    let first = w.run_env(
        &["apply", "--confirm"],
        &[("GATEHOUSE_NOW", Some("1800000000"))],
    );
    assert_eq!(first.code, Some(1), "{first}");
    assert!(first.stderr.contains("cirun (cirun): failed"), "{first}");
    assert_eq!(w.commits(), before + 1, "the ledger is committed even so");
    // GitHub's faults were retried within the run: the listing after a 429 and a 502, the
    // runner group's update after a dropped connection.
    assert_eq!(w.holds("x"), (false, true, true));
    let calls = w.github.gate.calls();
    let listing = "GET /user/installations/77/repositories";
    assert_eq!(
        calls.iter().filter(|c| *c == listing).count(),
        3,
        "{calls:?}"
    );
    assert_eq!(
        w.github
            .gate
            .count("PUT /orgs/conda-forge/actions/runner-groups/5/"),
        2
    );
    let state = w.state();
    assert_eq!(state["failing"]["cirun"]["since"], 1800000000, "{state}");
    assert!(
        state["failing"]["cirun"]["error"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{state}"
    );
    assert!(state["failing"].get("namespace").is_none(), "{state}");
    assert_eq!(
        std::fs::read_to_string(w.path().join(".gatehouse/.gitignore")).unwrap(),
        "*\n"
    );
    assert!(git(w.path(), &["status", "--porcelain"]).trim().is_empty());

    // Still failing: the first failure's time stays.
    let second = w.run_env(
        &["apply", "--confirm"],
        &[("GATEHOUSE_NOW", Some("1800000600"))],
    );
    assert_eq!(second.code, Some(1), "{second}");
    assert_eq!(w.state()["failing"]["cirun"]["since"], 1800000000);
    assert_eq!(w.state()["failing"]["cirun"]["runs"], 2);

    w.cirun.gate.fail_all(None);
    w.github.gate.reset_calls();
    let third = w.run(&["apply", "--confirm"]);
    assert_eq!(third.code, Some(0), "{third}");
    // The installation's four repositories came in two pages, and nothing changed there.
    assert_eq!(w.github.gate.count(listing), 2);
    // On GitHub, only the merge of the pull request Cirun opened.
    assert_eq!(
        w.github
            .gate
            .calls()
            .iter()
            .filter(|c| !c.starts_with("GET "))
            .collect::<Vec<_>>(),
        ["PUT /repos/conda-forge/.cirun/pulls/100/merge"]
    );
    assert_eq!(w.commits(), before + 1, "no second commit");
    assert_eq!(w.holds("x"), (true, true, true));
    assert_eq!(w.state()["failing"], serde_json::json!({}));
    assert!(
        w.github.issues().is_empty(),
        "not failing for six hours: no issue"
    );
}

#[test]
fn six_hours_of_failure_open_one_issue_which_is_updated_then_closed() {
    let w = cirun_api_world(2);
    w.cirun.gate.fail_all(Some(503));
    let t0 = 1_800_000_000u64;
    let at = |h: u64| (t0 + h * 3600).to_string();
    let run_at = |h: u64| {
        let now = at(h);
        w.run_env(
            &["apply", "--confirm"],
            &[
                ("GATEHOUSE_NOW", Some(now.as_str())),
                ("GITHUB_REPOSITORY", Some("conda-forge/access")),
            ],
        )
    };
    assert_eq!(run_at(0).code, Some(1));
    assert!(w.github.issues().is_empty());
    let late = run_at(7);
    assert_eq!(late.code, Some(1), "{late}");
    let issues = w.github.issues();
    assert_eq!(issues.len(), 1, "{late}");
    assert!(
        issues[0]["body"].as_str().unwrap().contains("`cirun` | 7h"),
        "{issues:?}"
    );
    assert_eq!(run_at(8).code, Some(1));
    let issues = w.github.issues();
    assert_eq!(
        issues.len(),
        1,
        "the same issue is edited, not a second one opened"
    );
    assert!(
        issues[0]["body"].as_str().unwrap().contains("`cirun` | 8h"),
        "{issues:?}"
    );
    assert_eq!(w.github.gate.count("POST "), 1);

    w.cirun.gate.fail_all(None);
    let ok = run_at(9);
    assert_eq!(ok.code, Some(0), "{ok}");
    assert_eq!(w.github.issues()[0]["state"], "closed");
    assert!(w.state().get("issue").is_none());
}

#[test]
fn a_mass_revocation_is_refused_without_the_flag() {
    let w = world(10);
    w.run(&["apply", "--confirm"]);
    w.request(
        "many",
        &format!("action: revoke\nprojects: [b00, b01, b02, b03]\n{GRANT_ALL}"),
    );
    let before = (w.commits(), w.mutations());

    let refused = w.run(&["apply", "--confirm"]);
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused.stderr.contains("12 of 30 active grants")
            && refused.stderr.contains("--allow-mass-revoke"),
        "{refused}"
    );
    assert_eq!((w.commits(), w.mutations()), before);
    assert!(w.path().join("requests/many.yml").exists());

    let allowed = w.run(&["apply", "--confirm", "--allow-mass-revoke"]);
    assert_eq!(allowed.code, Some(0), "{allowed}");
    assert_eq!(w.holds("b00"), (false, false, false));
    assert_eq!(w.holds("b04"), (true, true, true));
}

#[test]
fn a_provider_is_not_emptied_behind_the_ledger_s_back() {
    let w = world(10);
    w.run(&["apply", "--confirm"]);
    // Someone deletes most of the ledger directly, not through requests.
    for i in 0..8 {
        std::fs::remove_file(w.path().join(format!("grants/b{i:02}.yml"))).unwrap();
    }
    git(w.path(), &["commit", "-qam", "oops"]);
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("would lose 8 of the 10"), "{run}");
    assert_eq!(w.holds("b00"), (true, true, true));
}

#[test]
fn calls_grow_with_the_changes_not_with_the_projects() {
    let w = world(50);
    let seed = w.run(&["apply", "--confirm"]);
    assert_eq!(seed.code, Some(0), "{seed}");
    w.github.gate.reset_calls();
    w.cirun.gate.reset_calls();

    w.request("x", &format!("action: grant\nprojects: [x]\n{GRANT_ALL}"));
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.holds("x"), (true, true, true));
    assert!(w.cirun.gate.calls().is_empty());
    // Judging the request: its commit's pull request, the pull request, its files, commits
    // and reviews, the reviewer team, and the issue of held requests. Per request, not per
    // project.
    let all = w.github.gate.calls();
    let (judge, github): (Vec<_>, Vec<_>) = all.iter().partition(|c| {
        c.starts_with("GET /repos/conda-forge/access/")
            || c.starts_with("GET /orgs/conda-forge/teams/")
    });
    assert_eq!(judge.len(), 7, "{judge:?}");
    // Cirun: read .access.yml, commit it. The app: list, look up x's id, add it. The runner
    // group: find the group, list, look up x's id, set. Nothing per project already in place.
    assert_eq!(
        github
            .iter()
            .filter(|c| c.starts_with("GET /repos/"))
            .count(),
        3,
        "{github:?}"
    );
    assert_eq!(w.github.gate.mutations(), 3, "{github:?}");
    assert_eq!(github.len(), 9, "{github:?}");
}

#[test]
fn outside_git_nothing_is_written() {
    let w = world(1);
    std::fs::remove_dir_all(w.path().join(".git")).unwrap();
    write(
        w.path(),
        "requests/x.yml",
        &format!("action: grant\nprojects: [x]\n{GRANT_ALL}"),
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("not a git repository"), "{run}");
    assert!(!w.path().join("grants/x.yml").exists());
    assert!(w.path().join("requests/x.yml").exists());
}

#[test]
fn a_broken_ledger_is_refused() {
    let w = world(1);
    write(
        w.path(),
        "grants/bad.yml",
        "project: bad\ngrants: [{ resource: nope, granted: 2026-01-01 }]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("grants/bad.yml"), "{run}");
    assert_eq!(w.mutations(), 0);
}

/// Project names compare case-insensitively: a request for `PyTorch-CPU` acts on the grant in
/// `grants/pytorch-cpu.yml`. A revoke empties it there (before, it found nothing to revoke),
/// and a grant goes back into that file (before, it wrote `grants/PyTorch-CPU.yml` beside it,
/// which shadowed the real grant and survived its revocation).
#[test]
fn a_revoke_of_pytorch_cpu_in_another_case_removes_the_grant_from_its_file() {
    let w = world(10);
    w.request(
        "p",
        &format!("action: grant\nprojects: [pytorch-cpu]\n{GRANT_ALL}"),
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.holds("pytorch-cpu"), (true, true, true));

    w.request(
        "p-revoke",
        "action: revoke\nprojects: [PyTorch-CPU]\nresources: [cirun-gpu]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!w.path().join("requests/p-revoke.yml").exists(), "{run}");
    let text = std::fs::read_to_string(w.path().join("grants/pytorch-cpu.yml")).unwrap();
    assert!(!text.contains("cirun-gpu"), "{text}");
    assert!(text.contains("project: pytorch-cpu"), "{text}");
    assert_eq!(w.holds("pytorch-cpu"), (false, true, true));
    let message = git(w.path(), &["log", "-1", "--format=%B"]);
    assert!(
        message.contains(
            "revoke pytorch-cpu: cirun-gpu (https://github.com/conda-forge/access/pull/13)"
        ),
        "{message}"
    );

    w.request(
        "p-again",
        "action: grant\nprojects: [PyTorch-CPU]\nresources: [cirun-gpu]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    let tracked = git(w.path(), &["ls-files", "grants"]);
    assert!(
        tracked.contains("grants/pytorch-cpu.yml") && !tracked.contains("PyTorch-CPU"),
        "{tracked}"
    );
    assert_eq!(w.holds("pytorch-cpu"), (true, true, true));
    let check = w.run(&["check"]);
    assert_eq!(check.code, Some(0), "{check}");
}

/// `grants/x.yaml` is not a grant file. `check` says so, and `apply` refuses to run until it
/// is renamed, rather than writing `grants/x.yml` beside it: a second ledger for `x` that a
/// revoke never empties and whose duplicate grant stops every later `apply`.
#[test]
fn a_grant_to_a_project_whose_file_is_yaml_is_refused_before_apply_can_duplicate_it() {
    let w = world(1);
    write(
        w.path(),
        "grants/x.yaml",
        "project: x\ngrants:\n  - { resource: cirun-gpu, granted: 2026-01-01 }\n",
    );
    git(w.path(), &["add", "-A"]);
    git(
        w.path(),
        &["commit", "-q", "-m", "a grant file named .yaml"],
    );
    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [namespace]\n",
    );
    let before = w.commits();

    let check = w.run(&["check"]);
    assert_eq!(check.code, Some(1), "{check}");
    let said = format!("{}{}", check.stdout, check.stderr);
    assert!(
        said.contains("grants/x.yaml") && said.contains("grant-file-name"),
        "{check}"
    );

    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("grants/x.yaml"), "{run}");
    assert_eq!(
        git(w.path(), &["ls-files", "--others", "--cached", "grants"]),
        "grants/b00.yml\ngrants/x.yaml\n"
    );
    assert!(w.path().join("requests/x.yml").exists());
    assert_eq!(w.commits(), before);
    assert_eq!(w.mutations(), 0);
}

#[test]
fn doctor_names_a_rejected_and_a_missing_credential() {
    let w = cirun_api_world(0);
    let good = w.run(&["doctor"]);
    assert_eq!(good.code, Some(0), "{good}");
    assert!(good.stdout.contains("ok        GITHUB_TOKEN"), "{good}");
    assert!(good.stdout.contains("ok        CIRUN_API_KEY"), "{good}");
    assert!(
        good.stdout
            .contains("ok        GATEHOUSE_ADMIN_TOKEN (GitHub, used by namespace)"),
        "{good}"
    );

    let wrong = "ghp_wrongTokenThatMustNotBePrintedEither";
    let bad = w.run_env(
        &["doctor"],
        &[("GITHUB_TOKEN", Some(wrong)), ("CIRUN_API_KEY", None)],
    );
    assert_eq!(bad.code, Some(1), "{bad}");
    assert!(bad.stdout.contains("rejected  GITHUB_TOKEN"), "{bad}");
    assert!(
        bad.stdout
            .contains("GITHUB_TOKEN (GitHub, used by cirun, gpu-pool)"),
        "a Cirun provider with `via: api` merges through GitHub: {bad}"
    );
    // The installation is changed with the owner's token, not GITHUB_TOKEN.
    let no_admin = w.run_env(&["doctor"], &[("GATEHOUSE_ADMIN_TOKEN", None)]);
    assert_eq!(no_admin.code, Some(1), "{no_admin}");
    assert!(
        no_admin
            .stdout
            .contains("missing   GATEHOUSE_ADMIN_TOKEN (GitHub, used by namespace)"),
        "{no_admin}"
    );
    assert!(bad.stdout.contains("missing   CIRUN_API_KEY"), "{bad}");
    assert!(
        !bad.stdout.contains(wrong) && !bad.stderr.contains(wrong),
        "{bad}"
    );

    // Nothing listens on port 9 of loopback.
    let down = w.run_env(
        &["doctor"],
        &[("GATEHOUSE_CIRUN_API", Some("http://127.0.0.1:9/api"))],
    );
    assert_eq!(down.code, Some(1), "{down}");
    assert!(down.stdout.contains("unreachable CIRUN_API_KEY"), "{down}");
    assert!(down.stdout.contains("ok        GITHUB_TOKEN"), "{down}");
}

// ---------------------------------------------------------------------------------------------
// Configuration pull requests (`send_pr`)

const FEEDSTOCK: &str = "conda-forge/x-feedstock";
const CBC: &str = "recipe/conda_build_config.yaml";
const CFG: &str = "conda-forge.yml";
/// Shaped like conda-forge/pytorch-cpu-feedstock's: selectors and comments must survive.
const X_CBC: &str = "MACOSX_SDK_VERSION:         # [osx]\n- 12.3                      # [osx]\n\n# clang 16 is too strict for some pointer conversions\nc_compiler_version:         # [osx]\n- 15                        # [osx]\n\nblas_impl:\n- mkl                          # [x86 or x86_64]\n- generic\n";
const X_CFG: &str = "azure:\n  free_disk_space: true\nconda_build:\n  pkg_format: '2'\ngithub:\n  branch_name: main\n  tooling_branch_name: main\nprovider:\n  linux_aarch64: azure\n";
const RERENDER: &str = "@conda-forge-admin, please rerender";

/// `apply`'s record of sent configuration pull requests no longer names x's feedstock.
fn assert_nothing_left_to_undo(w: &support::world::World) {
    assert!(
        !w.state().to_string().contains("x-feedstock"),
        "nothing left to undo: {}",
        w.state()
    );
}

/// Applies again and checks that nothing was sent to GitHub (reads only).
fn apply_changes_nothing_on_github(w: &support::world::World) {
    w.github.gate.reset_calls();
    let again = w.run(&["apply", "--confirm"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(w.github.gate.mutations(), 0, "{:?}", w.github.gate.calls());
}

fn config_world() -> support::world::World {
    let w = world(2);
    w.github.set_file(FEEDSTOCK, CBC, X_CBC);
    w.github.set_file(FEEDSTOCK, CFG, X_CFG);
    w
}

fn rerenders(w: &support::world::World, pull: &Value) -> usize {
    let n = pull["number"].as_u64().unwrap();
    w.github
        .comments_on(FEEDSTOCK, n)
        .iter()
        .filter(|c| c["body"] == RERENDER)
        .count()
}

/// Merges `pull` (x's pull request adding cirun-gpu), revokes the grant and applies with the
/// removal pull request's creation failing once: the run fails and says why.
fn merge_then_revoke_with_the_removal_failing(w: &support::world::World, pull: &Value) {
    w.github.merge(FEEDSTOCK, pull["number"].as_u64().unwrap());
    w.request(
        "x-revoke",
        "action: revoke\nprojects: [x]\nresources: [cirun-gpu]\n",
    );
    w.github.gate.fault(
        "POST /repos/conda-forge/x-feedstock/pulls",
        &[Fault::Status(502)],
    );
    let failed = w.run(&["apply", "--confirm"]);
    assert_eq!(failed.code, Some(1), "{failed}");
    assert!(
        failed.stderr.contains("feedstock-config: failed"),
        "{failed}"
    );
}

#[test]
fn send_pr_opens_one_pull_request_and_revoking_opens_the_one_that_removes_the_label() {
    let w = config_world();
    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [cirun-gpu]\npull_request: true\nsend_pr: true\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr
            .contains("feedstock-config (feedstock-config): 1 change(s) made"),
        "{run}"
    );
    assert!(
        std::fs::read_to_string(w.path().join("grants/x.yml"))
            .unwrap()
            .contains("send_pr: true")
    );
    let pulls = w.github.pulls_in(FEEDSTOCK);
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert_eq!(pulls[0]["head"]["ref"], "gatehouse/cirun-gpu-add");
    assert_eq!(pulls[0]["base"]["ref"], "main");
    assert_eq!(rerenders(&w, &pulls[0]), 1);
    // The branch changes only what it must; main is untouched until someone merges.
    let branch = "gatehouse/cirun-gpu-add";
    assert_eq!(
        w.github.file(FEEDSTOCK, branch, CBC).unwrap(),
        format!("{X_CBC}github_actions_labels:\n- cirun-gpu\n")
    );
    assert_eq!(
        w.github.file(FEEDSTOCK, branch, CFG).unwrap(),
        format!(
            "{X_CFG}  linux_64: github_actions\ngithub_actions:\n  self_hosted: true\n  triggers:\n  - push\n  - pull_request\n"
        )
    );
    assert_eq!(w.github.file(FEEDSTOCK, "main", CBC).unwrap(), X_CBC);

    // Again, before anyone merged it: nothing at all is sent.
    apply_changes_nothing_on_github(&w);
    assert_eq!(w.github.pulls_in(FEEDSTOCK).len(), 1);

    // Merged; then revoked: a pull request that takes it all out again. It first meets a
    // server error (a POST is not retried within a run): the run fails loudly, the next one
    // sends it.
    merge_then_revoke_with_the_removal_failing(&w, &pulls[0]);
    assert!(!w.holds("x").0, "Cirun no longer lets x in");
    assert_eq!(w.github.pulls_in(FEEDSTOCK).len(), 1);
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    let pulls = w.github.pulls_in(FEEDSTOCK);
    assert_eq!(pulls.len(), 2, "{pulls:?}");
    assert_eq!(pulls[1]["head"]["ref"], "gatehouse/cirun-gpu-remove");
    assert_eq!(pulls[1]["state"], "open");
    assert_eq!(rerenders(&w, &pulls[1]), 1);
    let branch = "gatehouse/cirun-gpu-remove";
    assert_eq!(w.github.file(FEEDSTOCK, branch, CBC).unwrap(), X_CBC);
    assert_eq!(w.github.file(FEEDSTOCK, branch, CFG).unwrap(), X_CFG);

    let again = w.run(&["apply", "--confirm"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(
        w.github.pulls_in(FEEDSTOCK).len(),
        2,
        "no third pull request"
    );
    assert_nothing_left_to_undo(&w);
}

/// `.gatehouse/state.json` (kept between runs by the workflow's cache) lost after a revoke was
/// committed but before its removal pull request went out: the ledger's history says a
/// configuration pull request had been sent, so the next run still sends the removal; a run
/// with nothing left to undo sends nothing.
#[test]
fn a_lost_state_file_does_not_lose_the_removal_pull_request() {
    let w = config_world();
    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [cirun-gpu]\nsend_pr: true\n",
    );
    assert_eq!(w.run(&["apply", "--confirm"]).code, Some(0));
    merge_then_revoke_with_the_removal_failing(&w, &w.github.pulls_in(FEEDSTOCK)[0]);
    assert!(
        !w.path().join("grants/x.yml").exists(),
        "the revoke is committed"
    );
    std::fs::remove_file(w.path().join(".gatehouse/state.json")).unwrap();

    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains("found in the ledger's history"),
        "{run}"
    );
    let pulls = w.github.pulls_in(FEEDSTOCK);
    assert_eq!(pulls.len(), 2, "{pulls:?}");
    assert_eq!(pulls[1]["head"]["ref"], "gatehouse/cirun-gpu-remove");
    assert_eq!(
        w.github
            .file(FEEDSTOCK, "gatehouse/cirun-gpu-remove", CBC)
            .unwrap(),
        X_CBC
    );

    // Merged, and the state lost again: the history still names x, but its configuration no
    // longer has the label, so nothing is sent.
    w.github
        .merge(FEEDSTOCK, pulls[1]["number"].as_u64().unwrap());
    std::fs::remove_file(w.path().join(".gatehouse/state.json")).unwrap();
    apply_changes_nothing_on_github(&w);
    assert_eq!(w.github.pulls_in(FEEDSTOCK).len(), 2);
    assert_nothing_left_to_undo(&w);
}

/// One pull request added two resources; one is revoked before anyone merged it. Merging it
/// would hand the feedstock the revoked label, so it is closed and the other resource gets a
/// pull request of its own.
#[test]
fn revoking_one_of_two_resources_of_an_open_pull_request_replaces_it() {
    let w = config_world();
    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [cirun-gpu, gpu-runner]\nsend_pr: true\n",
    );
    let first = w.run(&["apply", "--confirm"]);
    assert_eq!(first.code, Some(0), "{first}");
    let pulls = w.github.pulls_in(FEEDSTOCK);
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert_eq!(
        pulls[0]["head"]["ref"],
        "gatehouse/cirun-gpu+gpu-runner-add"
    );

    w.request(
        "x-revoke",
        "action: revoke\nprojects: [x]\nresources: [cirun-gpu]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    let pulls = w.github.pulls_in(FEEDSTOCK);
    assert_eq!(pulls.len(), 2, "{pulls:?}");
    assert_eq!(pulls[0]["state"], "closed", "{run}");
    assert_eq!(pulls[1]["head"]["ref"], "gatehouse/gpu-runner-add");
    assert_eq!(pulls[1]["state"], "open");
    assert_eq!(rerenders(&w, &pulls[1]), 1);
    let cbc = w
        .github
        .file(FEEDSTOCK, "gatehouse/gpu-runner-add", CBC)
        .unwrap();
    assert!(cbc.contains("- gpu-runner"), "{cbc}");
    assert!(!cbc.contains("cirun-gpu"), "{cbc}");

    // Settled: the next run sends nothing.
    apply_changes_nothing_on_github(&w);
    assert_eq!(w.github.pulls_in(FEEDSTOCK).len(), 2);
}

#[test]
fn a_revoke_before_the_merge_closes_the_pull_request_instead() {
    let w = config_world();
    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [cirun-gpu]\nsend_pr: true\n",
    );
    assert_eq!(w.run(&["apply", "--confirm"]).code, Some(0));
    w.request(
        "x-revoke",
        "action: revoke\nprojects: [x]\nresources: [cirun-gpu]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    let pulls = w.github.pulls_in(FEEDSTOCK);
    assert_eq!(pulls.len(), 1, "main never had the label: {pulls:?}");
    assert_eq!(pulls[0]["state"], "closed");
    assert!(run.stderr.contains("no pull request needed"), "{run}");
}

#[test]
fn configuration_pull_requests_converge_under_faults_without_a_second_one() {
    let w = config_world();
    w.request(
        "x",
        "action: grant\nprojects: [x, y]\nresources: [cirun-gpu]\nsend_pr: true\n",
    );
    // Opening x's pull request fails (a POST is not retried within a run); y's file write
    // meets a dropped connection and a 502, which are retried.
    w.github.gate.fault(
        "POST /repos/conda-forge/x-feedstock/pulls",
        &[Fault::Status(500)],
    );
    w.github.gate.fault(
        "PUT /repos/conda-forge/y-feedstock/contents/recipe/conda_build_config.yaml",
        &[Fault::Drop, Fault::Status(502)],
    );
    let first = w.run(&["apply", "--confirm"]);
    assert_eq!(first.code, Some(1), "{first}");
    assert!(first.stderr.contains("feedstock-config: failed"), "{first}");
    assert!(first.stderr.contains("x-feedstock (cirun-gpu)"), "{first}");
    assert_eq!(w.state()["failing"]["feedstock-config"]["runs"], 1);
    assert_eq!(w.github.pulls_in(FEEDSTOCK).len(), 0);
    assert_eq!(w.github.pulls_in("conda-forge/y-feedstock").len(), 1);

    let second = w.run(&["apply", "--confirm"]);
    assert_eq!(second.code, Some(0), "{second}");
    assert_eq!(w.github.pulls_in(FEEDSTOCK).len(), 1);
    assert_eq!(w.github.pulls_in("conda-forge/y-feedstock").len(), 1);
    // The branch left by the failed run was started over, not stacked on.
    assert!(
        w.github
            .gate
            .count("PATCH /repos/conda-forge/x-feedstock/git/refs/heads/gatehouse/cirun-gpu-add")
            == 1,
        "{:?}",
        w.github.gate.calls()
    );
    assert_eq!(
        w.github
            .file(FEEDSTOCK, "gatehouse/cirun-gpu-add", CBC)
            .unwrap(),
        format!("{X_CBC}github_actions_labels:\n- cirun-gpu\n")
    );
    assert_eq!(w.state()["failing"], serde_json::json!({}));
    let third = w.run(&["apply", "--confirm"]);
    assert_eq!(third.code, Some(0), "{third}");
    assert_eq!(w.github.pulls_in(FEEDSTOCK).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Cirun through the access repository

#[test]
fn cirun_via_the_access_repository_commits_access_yml_once_per_change() {
    // The default: no `via` in gatehouse.yml.
    let w = world(2);
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    let rendered = w.run(&["render", "cirun"]);
    assert_eq!(rendered.code, Some(0), "{rendered}");
    let file = w
        .github
        .file("conda-forge/.cirun", "main", ".access.yml")
        .unwrap();
    assert_eq!(
        file, rendered.stdout,
        "the file is exactly what render prints"
    );
    assert!(file.contains("b00-feedstock"), "{file}");
    assert_eq!(w.cirun.gate.calls().len(), 0, "Cirun's API is not used");
    let commits = || w.github.state.lock().unwrap().commits.len();
    assert_eq!(commits(), 1);

    // Unchanged: read, no commit.
    let again = w.run(&["apply", "--confirm"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(commits(), 1);

    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [cirun-gpu]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(commits(), 2);
    let state = w.github.state.lock().unwrap();
    let (repo, branch, path, message) = state.commits.last().unwrap();
    assert_eq!(
        (repo.as_str(), branch.as_str(), path.as_str()),
        ("conda-forge/.cirun", "main", ".access.yml")
    );
    assert!(message.contains("x-feedstock"), "{message}");
    drop(state);
    assert!(
        w.github
            .file("conda-forge/.cirun", "main", ".access.yml")
            .unwrap()
            .contains("x-feedstock")
    );
    assert!(
        w.github.pulls_in("conda-forge/.cirun").is_empty(),
        "no pull request"
    );
}

#[test]
fn via_is_only_for_cirun_providers() {
    let w = world(0);
    write(
        w.path(),
        "gatehouse.yml",
        "org: conda-forge\nreviewers: { teams: [core] }\nproviders:\n  \
         cirun: { kind: cirun, access_repo: .cirun, via: access-repo }\n  \
         namespace: { kind: github-app, installation_id: 77, via: api }\n",
    );
    std::fs::remove_dir_all(w.path().join("resources")).unwrap();
    let run = w.run(&["check"]);
    assert_eq!(run.code, Some(1), "{run}");
    // `via` is not a field of `github-app` providers; Cirun's own `via` (line 4) is fine.
    assert!(
        run.stdout.contains("gatehouse.yml:5")
            && run.stdout.contains(
                "unknown field `via`, expected one of kind, installation_id, max_concurrency"
            ),
        "{run}"
    );
    assert!(!run.stdout.contains("gatehouse.yml:4"), "{run}");
    write(
        w.path(),
        "gatehouse.yml",
        "org: conda-forge\nreviewers: { teams: [core] }\nproviders:\n  \
         cirun: { kind: cirun, access_repo: .cirun, via: pull-request }\n",
    );
    let run = w.run(&["check"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("gatehouse.yml:4"), "{run}");
}

// ---------------------------------------------------------------------------------------------
// Expiry notices

#[test]
fn expire_tells_a_project_once_two_weeks_before_its_grant_ends() {
    let w = world(1);
    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [cirun-gpu]\nexpires: 2026-12-20\n",
    );
    assert_eq!(w.run(&["apply", "--confirm"]).code, Some(0));
    let expire_on =
        |day: &str| w.run_env(&["expire", "--confirm"], &[("GATEHOUSE_TODAY", Some(day))]);
    // Three weeks before: nothing.
    let early = expire_on("2026-11-29");
    assert_eq!(early.code, Some(0), "{early}");
    assert!(w.github.issues_in(FEEDSTOCK).is_empty());

    // Within two weeks: one issue on the project's repository; a failure to open it fails the
    // run and the next day's run opens it.
    w.github.gate.fault(
        "POST /repos/conda-forge/x-feedstock/issues",
        &[Fault::Status(500)],
    );
    let failed = expire_on("2026-12-06");
    assert_eq!(failed.code, Some(1), "{failed}");
    assert!(
        failed.stderr.contains("could not tell of the expiry"),
        "{failed}"
    );
    assert!(w.github.issues_in(FEEDSTOCK).is_empty());
    let run = expire_on("2026-12-07");
    assert_eq!(run.code, Some(0), "{run}");
    let issues = w.github.issues_in(FEEDSTOCK);
    assert_eq!(issues.len(), 1, "{run}");
    assert_eq!(
        issues[0]["title"],
        "gatehouse: cirun-gpu access expires on 2026-12-20"
    );
    let body = issues[0]["body"].as_str().unwrap();
    assert!(body.contains("action: renew"), "{body}");
    assert!(body.contains("projects: [x]"), "{body}");

    // The next days: not again, whether the run remembers (state) or has to look (no state).
    assert_eq!(expire_on("2026-12-08").code, Some(0));
    std::fs::remove_file(w.path().join(".gatehouse/state.json")).unwrap();
    let looked = expire_on("2026-12-09");
    assert_eq!(looked.code, Some(0), "{looked}");
    assert!(looked.stderr.contains("already told"), "{looked}");
    assert_eq!(w.github.issues_in(FEEDSTOCK).len(), 1);
    assert!(w.holds("x").0);

    // Past the date: revoked everywhere.
    let late = expire_on("2026-12-21");
    assert_eq!(late.code, Some(0), "{late}");
    assert!(!w.holds("x").0);
    assert_eq!(w.github.issues_in(FEEDSTOCK).len(), 1);
}

/// A grant renewed after its expiry notice went out: the next `apply` closes the notice with a
/// comment giving the new end, once; a failure to close it fails the run and the next run
/// closes it.
#[test]
fn a_renewal_closes_the_expiry_notice() {
    let w = world(1);
    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [cirun-gpu]\nexpires: 2026-12-20\n",
    );
    assert_eq!(w.run(&["apply", "--confirm"]).code, Some(0));
    let on = |day: &str, command: &str| {
        w.run_env(&[command, "--confirm"], &[("GATEHOUSE_TODAY", Some(day))])
    };
    let told = on("2026-12-07", "expire");
    assert_eq!(told.code, Some(0), "{told}");
    let issues = w.github.issues_in(FEEDSTOCK);
    assert_eq!(issues.len(), 1, "{told}");
    let number = issues[0]["number"].as_u64().unwrap();
    assert_eq!(issues[0]["state"], "open");

    w.request(
        "x-renew",
        "action: renew\nprojects: [x]\nresources: [cirun-gpu]\nexpires: 2027-03-01\nreason: still needed\n",
    );
    let path = format!("PATCH /repos/{FEEDSTOCK}/issues/{number}");
    w.github.gate.fault(&path, &[Fault::Status(422)]);
    let failed = on("2026-12-08", "apply");
    assert_eq!(failed.code, Some(1), "{failed}");
    assert!(
        failed.stderr.contains("could not close the expiry notice"),
        "{failed}"
    );
    assert!(
        w.path().join("grants/x.yml").exists() && w.holds("x").0,
        "{failed}"
    );
    assert_eq!(w.github.issues_in(FEEDSTOCK)[0]["state"], "open");

    let run = on("2026-12-09", "apply");
    assert_eq!(run.code, Some(0), "{run}");
    let issues = w.github.issues_in(FEEDSTOCK);
    assert_eq!(issues.len(), 1, "{run}");
    assert_eq!(issues[0]["state"], "closed", "{run}");
    let said: Vec<String> = w
        .github
        .comments_on(FEEDSTOCK, number)
        .iter()
        .map(|c| c["body"].as_str().unwrap().to_string())
        .collect();
    // Commented once although the first run's comment went out before its close failed.
    let renewal_comments = said
        .iter()
        .filter(|c| c.contains("renewed until 2027-03-01"))
        .count();
    assert_eq!(renewal_comments, 1, "{said:?}");
    let state = w.state();
    assert!(
        state["notified"].as_array().is_none_or(|n| n.is_empty()),
        "{state}"
    );

    // Later runs neither close nor comment again, and no new notice opens before 2027-02-15.
    let comments = said.len();
    assert_eq!(on("2026-12-10", "expire").code, Some(0));
    assert_eq!(w.github.comments_on(FEEDSTOCK, number).len(), comments);
    assert_eq!(w.github.issues_in(FEEDSTOCK).len(), 1);
}

#[test]
fn a_temporary_file_left_by_a_killed_run_is_never_committed() {
    let w = world(1);
    // What a run killed between writing grants/x.yml's new text and renaming it leaves.
    write(
        w.path(),
        "grants/.tmpA1b2C3",
        "project: x\ngrants:\n  - resource: cir",
    );
    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [cirun-gpu]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!w.path().join("grants/.tmpA1b2C3").exists());
    let tracked = git(w.path(), &["ls-files", "grants"]);
    assert_eq!(tracked, "grants/b00.yml\ngrants/x.yml\n");
    assert!(git(w.path(), &["status", "--porcelain"]).trim().is_empty());
}

/// On a terminal `apply` draws a progress bar (redrawn in place with escape sequences) and
/// prints its log lines above it; piped, as in CI, it prints plain lines only.
#[test]
fn a_terminal_gets_a_progress_bar_and_a_pipe_plain_lines() {
    let w = world(3);
    w.request(
        "x",
        &format!("action: grant\nprojects: [x]\n{GRANT_ALL}expires: 2026-12-31\nreason: GPU\n"),
    );
    // `script` runs the command on a pseudo-terminal and copies what it wrote to stdout.
    let inner = w.command(&["apply", "--confirm"], &[("CI", None)]);
    let program = inner.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = inner
        .get_args()
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let line = format!("'{program}' {}", args.join(" "));
    let mut on_tty = Command::new("script");
    on_tty.args(["-qefc", &line, "/dev/null"]);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => on_tty.env(k, v),
            None => on_tty.env_remove(k),
        };
    }
    let out = on_tty
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("`script` (util-linux) runs");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(
        tty.contains("cirun-gpu"),
        "the log lines reach the terminal: {tty}"
    );
    assert!(
        tty.contains('\u{1b}') && tty.contains("/4"),
        "a bar of 4 steps (3 providers and the configuration pull requests), drawn with escape sequences: {tty:?}"
    );

    // Piped (the other tests' way, and CI's): the same lines, no escape sequences.
    let piped = w.run(&["apply", "--confirm"]);
    assert_eq!(piped.code, Some(0), "{piped}");
    assert!(piped.stderr.contains("up to date"), "{piped}");
    assert!(!piped.stderr.contains('\u{1b}'), "{piped}");
}
