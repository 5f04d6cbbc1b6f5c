//! Cirun's policy in both modes, against the stand-in that speaks cirun-py's shapes and opens
//! a pull request on `conda-forge/.cirun` for every `PUT` (see `support::FakeCirun`): from
//! nothing, from conda-forge's real `.access.yml`, after a revoke; one write per run that
//! changes something and none on a rerun; in `via: api`, the pull request Cirun opens is
//! checked and merged, and while one is open nothing is sent again.

use serde_json::Value;

use crate::support;
use crate::support::world::{Options, World, git, world_with, write};

const ACCESS_REPO: &str = "conda-forge/.cirun";
const REAL_POLICY: &str = include_str!("../../../../fixtures/conda-forge/cirun-access.yml");

fn world_in(api: bool, background: usize) -> World {
    world_with(
        background,
        Options {
            cirun_api: api,
            ..Default::default()
        },
    )
}

/// The writes that reach Cirun's policy: (Cirun `PUT`s, pull requests merged on `.cirun`,
/// commits straight to `.cirun`'s default branch).
fn writes(w: &World) -> (usize, usize, usize) {
    let merges = w
        .github
        .gate
        .calls()
        .iter()
        .filter(|c| c.starts_with("PUT /repos/conda-forge/.cirun/pulls/"))
        .count();
    let direct = w
        .github
        .commits_to(ACCESS_REPO)
        .iter()
        .filter(|(branch, ..)| branch == "main")
        .count();
    (w.cirun.gate.count("PUT "), merges, direct)
}

/// One write in the mode's way: a commit, or a `PUT` and the merge of its pull request.
fn one_write(api: bool) -> (usize, usize, usize) {
    if api { (1, 1, 0) } else { (0, 0, 1) }
}

/// The merged policy is what `render cirun` prints (as data; in `via: access-repo`, as text).
fn assert_live_is_rendered(w: &World, api: bool) {
    let rendered = w.run(&["render", "cirun"]);
    assert_eq!(rendered.code, Some(0), "{rendered}");
    let live = w.github.file(ACCESS_REPO, "main", ".access.yml").unwrap();
    if !api {
        assert_eq!(live, rendered.stdout);
    }
    let norm = |text: &str| -> Value {
        let mut v: Value = serde_saphyr::from_str(text).unwrap();
        for list in ["policies", "access_control"] {
            if let Some(items) = v[list].as_array_mut() {
                items.sort_by_key(|i| i.to_string());
            }
        }
        v
    };
    assert_eq!(norm(&live), norm(&rendered.stdout), "{live}");
    let open: Vec<Value> = w
        .github
        .pulls_in(ACCESS_REPO)
        .into_iter()
        .filter(|p| p["state"] == "open")
        .collect();
    assert!(open.is_empty(), "{open:?}");
}

fn converges_from_empty_and_after_a_revoke(api: bool) {
    let mode = if api { "api" } else { "access-repo" };
    let w = world_in(api, 2);
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{mode}: {run}");
    assert_eq!(
        w.cirun.repos_for("cirun-gpu"),
        ["b00-feedstock", "b01-feedstock"]
    );
    assert_eq!(writes(&w), one_write(api), "{mode}");
    assert_live_is_rendered(&w, api);

    let again = w.run(&["apply", "--confirm"]);
    assert_eq!(again.code, Some(0), "{mode}: {again}");
    assert_eq!(writes(&w), one_write(api), "{mode}: a rerun writes nothing");
    assert_eq!(w.cirun.pulls().len(), usize::from(api), "{mode}");

    w.request(
        "x",
        "action: grant\nprojects: [x, y]\nresources: [cirun-gpu]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{mode}: {run}");
    let (p, m, c) = one_write(api);
    assert_eq!(
        writes(&w),
        (2 * p, 2 * m, 2 * c),
        "{mode}: two projects, one write"
    );
    assert!(w.holds("x").0 && w.holds("y").0, "{mode}");

    w.request(
        "x-revoke",
        "action: revoke\nprojects: [x]\nresources: [cirun-gpu]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{mode}: {run}");
    assert_eq!(writes(&w), (3 * p, 3 * m, 3 * c), "{mode}");
    assert_eq!(
        w.cirun.repos_for("cirun-gpu"),
        ["b00-feedstock", "b01-feedstock", "y-feedstock"],
        "{mode}"
    );
    assert_live_is_rendered(&w, api);
    let again = w.run(&["apply", "--confirm"]);
    assert_eq!(again.code, Some(0), "{mode}: {again}");
    assert_eq!(
        writes(&w),
        (3 * p, 3 * m, 3 * c),
        "{mode}: a rerun writes nothing"
    );
    if api {
        // What went to Cirun: cirun-py's body, only the repositories that changed.
        let pulls = w.cirun.pulls();
        assert_eq!(pulls.len(), 3);
        assert!(
            pulls
                .iter()
                .all(|p| p["state"] == "closed" && p["merged"] == true)
        );
    }
}

#[test]
fn access_repo_converges_from_empty_and_after_a_revoke() {
    converges_from_empty_and_after_a_revoke(false);
}

#[test]
fn api_converges_from_empty_and_after_a_revoke() {
    converges_from_empty_and_after_a_revoke(true);
}

/// conda-forge's real `.access.yml` is live; the ledger keeps one of its grants
/// (pytorch-cpu on the GPU server, as it is there) and knows nothing of the rest.
fn converges_from_conda_forge_s_real_policy(api: bool) {
    let mode = if api { "api" } else { "access-repo" };
    let w = world_in(api, 2);
    w.github.set_file(ACCESS_REPO, ".access.yml", REAL_POLICY);
    let via = if api { ", via: api" } else { "" };
    write(
        w.path(),
        "gatehouse.yml",
        &format!(
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: {{ teams: [core] }}\n\
             providers:\n  cirun: {{ kind: cirun, access_repo: .cirun{via}, users_from_json: \
             https://raw.githubusercontent.com/Quansight/open-gpu-server/main/access/conda-forge-users.json }}\n  \
             namespace: {{ kind: github-app, installation_id: 77 }}\n  \
             gpu-pool: {{ kind: runner-group, group: gpu }}\n"
        ),
    );
    write(
        w.path(),
        "resources/cirun-openstack-gpu-large.yml",
        "name: cirun-openstack-gpu-large\nprovider: cirun\nlabels: [cirun-openstack-gpu-large]\n\
         users: { roles: [admin, maintain, write], require_tos: true }\n",
    );
    write(
        w.path(),
        "grants/pytorch-cpu.yml",
        "project: pytorch-cpu\ngrants:\n  - { resource: cirun-openstack-gpu-large, pull_request: true, granted: 2026-03-01 }\n",
    );
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-qm", "pytorch-cpu"]);

    // Everything else in the real policy is unknown to the ledger: a mass revocation.
    let refused = w.run(&["apply", "--confirm"]);
    assert_eq!(refused.code, Some(1), "{mode}: {refused}");
    assert_eq!(writes(&w), (0, 0, 0), "{mode}");
    let run = w.run(&["apply", "--confirm", "--allow-mass-revoke"]);
    assert_eq!(run.code, Some(0), "{mode}: {run}");
    assert_eq!(writes(&w), one_write(api), "{mode}: one write");
    assert_eq!(
        w.cirun.repos_for("cirun-openstack-gpu-large"),
        ["pytorch-cpu-feedstock"],
        "{mode}"
    );
    assert!(
        w.cirun.repos_for("cirun-openstack-cpu-large").is_empty(),
        "{mode}"
    );
    assert_eq!(
        w.cirun.repos_for("cirun-gpu"),
        ["b00-feedstock", "b01-feedstock"]
    );
    assert_live_is_rendered(&w, api);
    let again = w.run(&["apply", "--confirm"]);
    assert_eq!(again.code, Some(0), "{mode}: {again}");
    assert_eq!(writes(&w), one_write(api), "{mode}: a rerun writes nothing");
}

#[test]
fn access_repo_converges_from_conda_forge_s_real_policy() {
    converges_from_conda_forge_s_real_policy(false);
}

#[test]
fn api_converges_from_conda_forge_s_real_policy() {
    converges_from_conda_forge_s_real_policy(true);
}

#[test]
fn api_a_pull_request_the_token_cannot_merge_is_reported_and_never_sent_again() {
    let w = world_in(true, 1);
    w.github
        .state
        .lock()
        .unwrap()
        .merge_forbidden
        .insert(ACCESS_REPO.to_string());
    let first = w.run(&["apply", "--confirm"]);
    assert_eq!(first.code, Some(1), "{first}");
    assert!(
        first
            .stderr
            .contains("https://github.com/conda-forge/.cirun/pull/100")
            && first.stderr.contains("must merge it"),
        "{first}"
    );
    assert!(
        w.cirun.repos_for("cirun-gpu").is_empty(),
        "not live before the merge"
    );
    for _ in 0..2 {
        let again = w.run(&["apply", "--confirm"]);
        assert_eq!(again.code, Some(1), "{again}");
        assert!(again.stderr.contains("pull/100"), "{again}");
    }
    assert_eq!(
        w.cirun.gate.count("PUT "),
        1,
        "never sent again while it is open"
    );
    assert_eq!(w.cirun.pulls().len(), 1);

    // Someone who may merges it: live, and nothing more is sent.
    w.github.merge(ACCESS_REPO, 100);
    let after = w.run(&["apply", "--confirm"]);
    assert_eq!(after.code, Some(0), "{after}");
    assert_eq!(w.cirun.repos_for("cirun-gpu"), ["b00-feedstock"]);
    assert_eq!(w.cirun.gate.count("PUT "), 1);
}

/// Someone's pull request `number` on `.cirun`, open from `branch`: `main`'s files with `files`
/// changed, as `pulls/get` and `pulls/list` answer it.
fn open_pull_on_cirun(w: &World, number: u64, branch: &str, files: &[(&str, &str)]) {
    let mut s = w.github.state.lock().unwrap();
    let mut tree = s
        .files
        .entry(ACCESS_REPO.into())
        .or_default()
        .entry("main".into())
        .or_default()
        .clone();
    for (path, text) in files {
        tree.insert(path.to_string(), text.to_string());
    }
    s.files
        .get_mut(ACCESS_REPO)
        .unwrap()
        .insert(branch.into(), tree);
    s.opened.insert(
        (ACCESS_REPO.into(), number),
        serde_json::json!({
            "number": number,
            "html_url": format!("https://github.com/conda-forge/.cirun/pull/{number}"),
            "state": "open",
            "user": { "login": "someone", "type": "User" },
            "head": { "ref": branch, "label": format!("conda-forge:{branch}") },
            "base": { "ref": "main" },
        }),
    );
}

#[test]
fn api_a_pull_request_with_another_change_is_not_merged() {
    let w = world_in(true, 1);
    // Someone else's change to the policy, waiting on .cirun.
    open_pull_on_cirun(&w, 7, "someone/add", &[(".access.yml", REAL_POLICY)]);
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("pull/7") && run.stderr.contains("not what the ledger wants"),
        "{run}"
    );
    assert_eq!(
        w.cirun.gate.count("PUT "),
        0,
        "nothing sent while it is open"
    );
    assert_eq!(
        w.github.pulls_in(ACCESS_REPO)[0]["state"],
        "open",
        "not merged"
    );

    // Closed: the next run sends the change and merges Cirun's pull request.
    w.github
        .state
        .lock()
        .unwrap()
        .opened
        .get_mut(&(ACCESS_REPO.into(), 7))
        .unwrap()["state"] = "closed".into();
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(w.cirun.repos_for("cirun-gpu"), ["b00-feedstock"]);
    assert_eq!(w.cirun.gate.count("PUT "), 1);
}

#[test]
fn api_a_pull_request_that_changes_more_than_the_policy_is_not_merged() {
    let w = world_in(true, 1);
    let rendered = w.run(&["render", "cirun"]);
    assert_eq!(rendered.code, Some(0), "{rendered}");
    // The very policy the ledger wants, and a workflow besides.
    open_pull_on_cirun(
        &w,
        8,
        "someone/both",
        &[
            (".access.yml", rendered.stdout.as_str()),
            (".github/workflows/x.yml", "on: push\n"),
        ],
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("pull/8") && run.stderr.contains("changes more than .access.yml"),
        "{run}"
    );
    assert_eq!(
        w.github.pulls_in(ACCESS_REPO)[0]["state"],
        "open",
        "not merged"
    );
    assert_eq!(w.cirun.gate.count("PUT "), 0);
    assert!(w.cirun.repos_for("cirun-gpu").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Cirun's own switch: its app installation and `set_repo` (see `providers::cirun_app`).

/// Cirun's app installation in these tests (conda-forge's is 18453316).
const CIRUN_APP: u64 = 78;

/// The world, its Cirun provider naming Cirun's app installation [`CIRUN_APP`], which holds
/// `installed` (`owner/name`).
fn world_with_switch(api: bool, background: usize, installed: &[&str]) -> World {
    let w = world_in(api, background);
    {
        let mut s = w.github.state.lock().unwrap();
        s.installations.insert(CIRUN_APP, Default::default());
    }
    for full in installed {
        // Through the fake's own API state: the repository gets its id on first sight.
        w.github.add_to_runner_group("other", full);
        let mut s = w.github.state.lock().unwrap();
        let ids = s.runner_groups[&(support::world::GROUP_ID + 1)].1.clone();
        s.installations.get_mut(&CIRUN_APP).unwrap().extend(ids);
    }
    let path = w.path().join("gatehouse.yml");
    let settings = std::fs::read_to_string(&path).unwrap();
    let via = if api { ", via: api" } else { "" };
    let from = format!("cirun: {{ kind: cirun, access_repo: .cirun{via} }}");
    let to =
        format!("cirun: {{ kind: cirun, access_repo: .cirun{via}, installation_id: {CIRUN_APP} }}");
    assert!(settings.contains(&from), "{settings}");
    std::fs::write(&path, settings.replace(&from, &to)).unwrap();
    git(w.path(), &["commit", "-qam", "Cirun's app installation"]);
    w
}

/// `owner/name` of every repository in Cirun's app installation.
fn installed(w: &World) -> Vec<String> {
    w.github.installation(CIRUN_APP)
}

fn feedstock(p: &str) -> String {
    format!("conda-forge/{p}-feedstock")
}

/// As conda-smithy enables a feedstock (`enable_cirun_for_project`: cirun-py's `set_repo`
/// with the installation, then `add_repo_to_resources`): a repository that gains a Cirun grant
/// is switched on at Cirun and added to Cirun's app installation, in the run that writes the
/// policy; a rerun sends nothing; a revoked one stays switched on (reported) until
/// `--deactivate-ungranted`, which switches it off and takes it out of the installation.
fn switch_follows_the_ledger(api: bool) {
    let mode = if api { "api" } else { "access-repo" };
    let w = world_with_switch(api, 2, &[]);
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{mode}: {run}");
    assert_eq!(
        installed(&w),
        [feedstock("b00"), feedstock("b01")],
        "{mode}"
    );
    assert_eq!(w.cirun.is_active(&feedstock("b00")), Some(true), "{mode}");
    assert_eq!(w.cirun.is_active(&feedstock("b01")), Some(true), "{mode}");
    assert_eq!(w.cirun.gate.count("POST /api/v1/repo"), 2, "{mode}");
    assert_eq!(
        writes(&w),
        one_write(api),
        "{mode}: the policy in one write"
    );
    assert!(
        run.stderr
            .contains("Cirun switched on at conda-forge/b00-feedstock"),
        "{run}"
    );

    let before = w.mutations();
    let again = w.run(&["apply", "--confirm"]);
    assert_eq!(again.code, Some(0), "{mode}: {again}");
    assert_eq!(w.mutations(), before, "{mode}: a rerun changes nothing");

    w.request(
        "x",
        "action: grant\nprojects: [x]\nresources: [cirun-gpu]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{mode}: {run}");
    assert_eq!(w.cirun.is_active(&feedstock("x")), Some(true), "{mode}");
    assert!(installed(&w).contains(&feedstock("x")), "{mode}");
    assert_eq!(w.cirun.gate.count("POST /api/v1/repo"), 3, "{mode}: x only");

    w.request(
        "x-revoke",
        "action: revoke\nprojects: [x]\nresources: [cirun-gpu]\n",
    );
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{mode}: {run}");
    assert!(!w.holds("x").0, "{mode}: out of the policy");
    assert!(
        run.stderr
            .contains("Cirun is installed on conda-forge/x-feedstock, which holds no grant")
            && run.stderr.contains("--deactivate-ungranted"),
        "{mode}: {run}"
    );
    assert_eq!(
        w.cirun.is_active(&feedstock("x")),
        Some(true),
        "{mode}: only on request"
    );
    assert!(installed(&w).contains(&feedstock("x")), "{mode}");

    let run = w.run(&["apply", "--confirm", "--deactivate-ungranted"]);
    assert_eq!(run.code, Some(0), "{mode}: {run}");
    assert_eq!(w.cirun.is_active(&feedstock("x")), Some(false), "{mode}");
    assert_eq!(
        installed(&w),
        [feedstock("b00"), feedstock("b01")],
        "{mode}"
    );
    assert_eq!(w.cirun.is_active(&feedstock("b00")), Some(true), "{mode}");
    let before = w.mutations();
    let again = w.run(&["apply", "--confirm", "--deactivate-ungranted"]);
    assert_eq!(again.code, Some(0), "{mode}: {again}");
    assert_eq!(w.mutations(), before, "{mode}: a rerun changes nothing");
}

/// `plan` shows where `apply` switches Cirun on or off before it does, so that review sees it:
/// offline it says the switch was not read; `--online` reads Cirun's app installation and lists
/// each repository switched on (it gains a grant), left on and reported, or, planned as
/// `--deactivate-ungranted`, switched off. Planning changes nothing, and `apply` then does
/// exactly what the plan listed.
#[test]
fn plan_lists_cirun_switches_before_apply_makes_them() {
    let intruder = feedstock("intruder");
    let w = world_with_switch(false, 2, &[intruder.as_str()]);
    let offline = w.run(&["plan"]);
    assert_eq!(offline.code, Some(0), "{offline}");
    assert!(
        offline.stdout.contains("cirun: Cirun's switch not read")
            && offline.stdout.contains("plan --online"),
        "{offline}"
    );
    let before = w.mutations();
    let online = w.run(&["plan", "--online"]);
    assert_eq!(online.code, Some(0), "{online}");
    for r in [feedstock("b00"), feedstock("b01")] {
        assert!(
            online.stdout.contains(&format!(
                "cirun: switch Cirun on at {r}, which gains a grant"
            )),
            "{online}"
        );
    }
    assert!(
        online.stdout.contains(&format!(
            "cirun: Cirun stays on at {intruder}, which holds no grant"
        )),
        "{online}"
    );
    assert!(!online.stdout.contains("not read"), "{online}");

    let json = w.run(&[
        "plan",
        "--online",
        "--deactivate-ungranted",
        "--format",
        "json",
    ]);
    assert_eq!(json.code, Some(0), "{json}");
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let switches: Vec<(String, String)> = doc["cirun_switches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["repository"].as_str().unwrap().to_string(),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        switches,
        [
            (feedstock("b00"), "on".to_string()),
            (feedstock("b01"), "on".to_string()),
            (intruder.clone(), "off".to_string()),
        ]
    );
    let markdown = w.run(&[
        "plan",
        "--online",
        "--deactivate-ungranted",
        "--format",
        "markdown",
    ]);
    assert!(
        markdown.stdout.contains(&format!(
            "| `cirun` | switch off (no grant; `--deactivate-ungranted`) | `{intruder}` |"
        )),
        "{markdown}"
    );
    assert_eq!(w.mutations(), before, "planning changes nothing");

    let run = w.run(&["apply", "--confirm", "--deactivate-ungranted"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(installed(&w), [feedstock("b00"), feedstock("b01")]);
    assert_eq!(w.cirun.is_active(&intruder), Some(false));
    let after = w.run(&["plan", "--online", "--deactivate-ungranted"]);
    assert_eq!(after.code, Some(0), "{after}");
    assert!(after.stdout.starts_with("nothing to do"), "{after}");
    assert!(!after.stdout.contains("Cirun"), "{after}");
}

#[test]
fn access_repo_switches_cirun_on_where_a_grant_is_gained_and_off_on_request() {
    switch_follows_the_ledger(false);
}

#[test]
fn api_switches_cirun_on_where_a_grant_is_gained_and_off_on_request() {
    switch_follows_the_ledger(true);
}

/// Switching Cirun off at many repositories at once is a mass revocation: refused without
/// `--allow-mass-revoke`, and nothing is switched off.
#[test]
fn deactivating_many_ungranted_repositories_needs_the_mass_revoke_flag() {
    let intruders: Vec<String> = (0..5).map(|i| feedstock(&format!("intruder{i}"))).collect();
    let names: Vec<&str> = intruders.iter().map(String::as_str).collect();
    let w = world_with_switch(false, 2, &names);
    let refused = w.run(&["apply", "--confirm", "--deactivate-ungranted"]);
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused
            .stderr
            .contains("would lose 5 of its 5 repositories")
            && refused.stderr.contains("--allow-mass-revoke"),
        "{refused}"
    );
    assert_eq!(
        w.cirun.gate.count("POST /api/v1/repo"),
        0,
        "nothing switched"
    );
    assert_eq!(installed(&w).len(), 5);
    // The policy itself was written: only the switch waits.
    assert_eq!(
        w.cirun.repos_for("cirun-gpu"),
        ["b00-feedstock", "b01-feedstock"]
    );

    let run = w.run(&[
        "apply",
        "--confirm",
        "--deactivate-ungranted",
        "--allow-mass-revoke",
    ]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(installed(&w), [feedstock("b00"), feedstock("b01")]);
    for r in &intruders {
        assert_eq!(w.cirun.is_active(r), Some(false), "{r}");
    }
}

/// Cirun failing or hanging at `set_repo`: the run fails naming the repository and what went
/// wrong; the installation is left as it was for that repository (so the next run does the
/// whole step again), the others are done; the next run converges.
#[test]
fn a_failing_or_hanging_set_repo_is_reported_and_the_next_run_converges() {
    let w = world_with_switch(false, 2, &[]);
    w.cirun
        .gate
        .fault("POST /api/v1/repo", &[support::Fault::Status(500)]);
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("switching on Cirun at conda-forge/b00-feedstock")
            && run.stderr.contains("500"),
        "{run}"
    );
    assert_eq!(installed(&w), [feedstock("b01")], "b00 is not installed");
    assert_eq!(w.cirun.is_active(&feedstock("b00")), None);
    assert_eq!(
        w.cirun.repos_for("cirun-gpu"),
        ["b00-feedstock", "b01-feedstock"]
    );
    assert!(
        w.state()["failing"].to_string().contains("cirun"),
        "the failure is recorded: {}",
        w.state()
    );

    // Cirun hangs: a timeout, not a wait without end, and nothing half done.
    *w.cirun.repo_delay.lock().unwrap() = Some(std::time::Duration::from_secs(3));
    let run = w.run_env(
        &["apply", "--confirm"],
        &[("GATEHOUSE_HTTP_TIMEOUT_MS", Some("300"))],
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("switching on Cirun at conda-forge/b00-feedstock")
            && run.stderr.contains("no usable answer from Cirun"),
        "{run}"
    );
    assert_eq!(installed(&w), [feedstock("b01")]);

    *w.cirun.repo_delay.lock().unwrap() = None;
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(installed(&w), [feedstock("b00"), feedstock("b01")]);
    assert_eq!(w.cirun.is_active(&feedstock("b00")), Some(true));
    let before = w.mutations();
    let again = w.run(&["apply", "--confirm"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(w.mutations(), before);
}

/// A Cirun provider naming Cirun's installation needs Cirun's key in either `via`: `doctor`
/// says so, and `apply` without it switches nothing and names the variable (the policy is
/// still written through GitHub).
#[test]
fn switching_cirun_needs_its_key_and_doctor_says_so() {
    let w = world_with_switch(false, 1, &[]);
    let doctor = w.run_env(&["doctor"], &[("CIRUN_API_KEY", None)]);
    assert_eq!(doctor.code, Some(1), "{doctor}");
    assert!(
        doctor.stdout.lines().any(|l| l.starts_with("missing")
            && l.contains("CIRUN_API_KEY")
            && l.contains("cirun")),
        "{doctor}"
    );
    let run = w.run_env(&["apply", "--confirm"], &[("CIRUN_API_KEY", None)]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("set_repo") && run.stderr.contains("CIRUN_API_KEY"),
        "{run}"
    );
    assert!(installed(&w).is_empty(), "nothing switched");
    assert_eq!(w.cirun.repos_for("cirun-gpu"), ["b00-feedstock"]);
    let run = w.run(&["apply", "--confirm"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(installed(&w), [feedstock("b00")]);
    let doctor = w.run(&["doctor"]);
    assert_eq!(doctor.code, Some(0), "{doctor}");
}
