//! `gatehouse apply --confirm` killed (SIGKILL) at every call it makes to the providers, then
//! run again: the second run converges to exactly what one clean run leaves. No second ledger
//! commit, no lost or doubled grant, no second configuration pull request or rerender comment,
//! no stray file in the access repository.
//!
//! The fakes hold the chosen call (see `support::Hold`), either before acting on it (the
//! service never saw it) or after (the service acted, the client never heard); the test kills
//! the process while it waits.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::Hold;
use crate::support::world::{GRANT_ALL, Options, World, git, world_with};

const FEEDSTOCK: &str = "conda-forge/x-feedstock";
const ACCESS: [(&str, Option<&str>); 1] = [("GITHUB_REPOSITORY", Some("conda-forge/access"))];

/// Two background projects, feedstock files for `x`, and a merged request that grants `x`
/// all three resources with a configuration pull request. Cirun's policy is committed to
/// `.cirun`, or with `api` sent to Cirun, which opens a pull request there for apply to merge.
fn scenario(hold: std::sync::Arc<Hold>, api: bool) -> (World, usize) {
    let w = world_with(
        2,
        Options {
            hold: Some(hold),
            cirun_api: api,
        },
    );
    w.github.set_file(
        FEEDSTOCK,
        "recipe/conda_build_config.yaml",
        "# pinned\nzlib:\n- 1.3\n",
    );
    w.github.set_file(
        FEEDSTOCK,
        "conda-forge.yml",
        "conda_build:\n  pkg_format: '2'\n",
    );
    w.request(
        "x",
        &format!("action: grant\nprojects: [x]\n{GRANT_ALL}send_pr: true\n"),
    );
    let commits = w.commits();
    (w, commits)
}

/// What one clean run leaves, checked on `w`.
fn assert_converged(w: &World, commits_before: usize, context: &str) {
    assert_eq!(
        w.commits(),
        commits_before + 1,
        "one ledger commit: {context}"
    );
    assert!(
        git(w.path(), &["status", "--porcelain"]).trim().is_empty(),
        "the work tree is clean: {context}"
    );
    let mut names: Vec<String> = std::fs::read_dir(w.path().join("grants"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["b00.yml", "b01.yml", "x.yml"], "{context}");
    assert!(!w.path().join("requests/x.yml").exists(), "{context}");
    let text = std::fs::read_to_string(w.path().join("grants/x.yml")).unwrap();
    let grant: Value = serde_saphyr::from_str(&text).unwrap();
    let resources: Vec<&str> = grant["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["resource"].as_str().unwrap())
        .collect();
    assert_eq!(
        resources,
        ["cirun-gpu", "namespace", "gpu-runner"],
        "each grant once: {context}"
    );
    assert_eq!(w.holds("x"), (true, true, true), "{context}");
    assert_eq!(w.holds("b01"), (true, true, true), "{context}");
    let pulls = w.github.pulls_in(FEEDSTOCK);
    assert_eq!(pulls.len(), 1, "one pull request: {context}: {pulls:?}");
    assert_eq!(pulls[0]["state"], "open", "{context}");
    let n = pulls[0]["number"].as_u64().unwrap();
    let rerenders = w
        .github
        .comments_on(FEEDSTOCK, n)
        .iter()
        .filter(|c| c["body"] == "@conda-forge-admin, please rerender")
        .count();
    assert_eq!(rerenders, 1, "one rerender comment: {context}");
    // One pull request for the three resources, each label once.
    let branch = "gatehouse/cirun-gpu+gpu-runner+namespace-add";
    assert_eq!(pulls[0]["head"]["ref"], branch, "{context}");
    assert_eq!(
        w.github
            .file(FEEDSTOCK, branch, "recipe/conda_build_config.yaml")
            .unwrap(),
        "# pinned\nzlib:\n- 1.3\ngithub_actions_labels:\n- cirun-gpu\n- gpu-runner\n- namespace\n",
        "{context}"
    );
    assert_eq!(w.state()["failing"], serde_json::json!({}), "{context}");
    // Cirun's policy: no pull request left open on `.cirun`, and with the API at most one
    // sent and merged (a run killed before Cirun acted sends it again, never twice).
    let cirun = w.github.pulls_in("conda-forge/.cirun");
    assert!(
        cirun.iter().all(|p| p["state"] == "closed"),
        "{context}: {cirun:?}"
    );
    assert!(cirun.len() <= 1, "{context}: {cirun:?}");
}

#[test]
fn a_run_killed_at_any_provider_call_converges_when_run_again() {
    killed_at_every_call(false);
}

#[test]
fn a_run_killed_at_any_call_converges_with_cirun_s_api_too() {
    killed_at_every_call(true);
}

fn killed_at_every_call(api: bool) {
    // A clean run, to count its calls and to check the checks.
    let (clean, before) = scenario(Hold::new(), api);
    let run = clean.run_env(&["apply", "--confirm"], &ACCESS);
    assert_eq!(run.code, Some(0), "{run}");
    assert_converged(&clean, before, "clean run");
    let total = clean.hold.calls();
    assert!(total > 15, "{total} calls");

    // Every call, held before and after the service acts; four at a time (each case is its
    // own world, and mostly waits on processes).
    let cases: Vec<(usize, bool)> = [false, true]
        .into_iter()
        .flat_map(|act_first| (0..total).map(move |n| (n, act_first)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&(n, act_first)) = cases.get(i) else {
                        break;
                    };
                    kill_at(n, act_first, total, api);
                }
            });
        }
    });
}

/// Kills a run at call `n + 1` (held before or after the service acts), runs again, checks.
fn kill_at(n: usize, act_first: bool, total: usize, api: bool) {
    let context = format!(
        "killed at call {} of {total}, {} the service acted{}",
        n + 1,
        if act_first { "after" } else { "before" },
        if api { " (Cirun via api)" } else { "" }
    );
    let hold = Hold::new();
    hold.after(n, act_first);
    let (w, before) = scenario(hold.clone(), api);
    let mut child = w
        .command(&["apply", "--confirm"], &ACCESS)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !hold.holding() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{context}: the run ended ({status}) before the held call");
        }
        assert!(Instant::now() < deadline, "{context}: never reached");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    hold.release();

    let again = w.run_env(&["apply", "--confirm"], &ACCESS);
    assert_eq!(again.code, Some(0), "{context}\n{again}");
    assert_converged(&w, before, &context);
}
