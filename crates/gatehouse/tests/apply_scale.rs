//! `gatehouse apply` on the generated conda-forge-scale repository (`gen-fixture --scale 2`:
//! 4,000 grants, then 1,000 pending requests) against the loopback fakes: the number of API
//! calls follows the number of changes, not the number of projects, and Cirun gets the whole
//! batch in one call.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::world::{TODAY, git};
use support::{CIRUN_KEY, FakeCirun, FakeGitHub, GITHUB_TOKEN, serve_cirun, serve_github};

fn gatehouse(dir: &Path, args: &[&str], github: &str, cirun: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .arg(dir)
        .env("GATEHOUSE_GITHUB_API", github)
        .env("GATEHOUSE_CIRUN_API", cirun)
        .env("GITHUB_TOKEN", GITHUB_TOKEN)
        .env("CIRUN_API_KEY", CIRUN_KEY)
        .env("GATEHOUSE_GITHUB_MUTATION_SPACING_MS", "0")
        .env("GATEHOUSE_TODAY", TODAY)
        .env("GITHUB_REPOSITORY", "conda-forge/access")
        .env_remove("GATEHOUSE_NOW")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_thousand_pending_changes_cost_calls_in_proportion_to_the_changes() {
    let fake = FakeGitHub::new();
    {
        let mut s = fake.state.lock().unwrap();
        s.installations.insert(12345, Default::default());
        s.runner_groups
            .insert(1, ("gpu".to_string(), Default::default()));
    }
    let (github_api, github) = serve_github(fake);
    let (cirun_api, cirun) = serve_cirun(FakeCirun::new(github.clone(), "conda-forge"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("access");
    let (code, out) = gatehouse(
        &dir,
        &["gen-fixture", "--scale", "2", "--out"],
        &github_api,
        &cirun_api,
    );
    assert_eq!(code, Some(0), "{out}");

    // As at conda-forge, Cirun reads the ToS list from a URL instead of every policy listing
    // every login: the generator says so itself.
    let settings = std::fs::read_to_string(dir.join("gatehouse.yml")).unwrap();
    assert!(settings.contains("users_from_json"), "{settings}");

    // The providers first hold the 4,000 grants, with the requests still to come.
    let parked = tmp.path().join("requests");
    std::fs::rename(dir.join("requests"), &parked).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["config", "user.name", "Test"]);
    git(&dir, &["config", "user.email", "test@example.org"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "generated"]);
    let started = std::time::Instant::now();
    let (code, out) = gatehouse(&dir, &["apply", "--confirm"], &github_api, &cirun_api);
    assert_eq!(code, Some(0), "{out}");
    eprintln!("seeding: {:?}", started.elapsed());
    std::fs::rename(&parked, dir.join("requests")).unwrap();
    let base = git(&dir, &["rev-parse", "HEAD"]).trim().to_string();
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "1,000 merged requests"]);
    // One merged pull request brought them, approved by a member of the reviewers (`core`).
    let head = git(&dir, &["rev-parse", "HEAD"]).trim().to_string();
    let files = git(&dir, &["ls-files", "requests"]);
    {
        let mut s = github.state.lock().unwrap();
        let files: Vec<&str> = files.lines().collect();
        let mut pull = support::FakePull::new("requester", &head, &files);
        pull.base_sha = base;
        pull.merged = true;
        pull.merged_commits = vec![head.clone()];
        s.pulls.insert(1, pull);
        s.teams.insert("core".into(), vec!["ada".into()]);
    }
    github.review(1, "ada", "APPROVED", &head);

    let (code, plan) = {
        let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["plan", "--format", "json", "--today", TODAY])
            .arg(&dir)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    assert_eq!(code, Some(0));
    let plan: Value = serde_json::from_str(&plan).unwrap();
    let ledger = plan["ledger"].as_array().unwrap().len();
    assert!(ledger >= 900, "{ledger} ledger changes");
    let changes = plan["providers"].as_array().unwrap();
    let count = |kind: &str, add: bool| {
        changes
            .iter()
            .filter(|c| c["kind"] == kind && c["add"] == add)
            .count()
    };
    let app_adds = count("github-app", true);
    let app_removals = count("github-app", false);
    let group_adds = count("runner-group", true);
    let configs = count("feedstock-config", true) + count("feedstock-config", false);
    let held_app = github.installation(12345).len();
    let held_group = github.runner_group("gpu").len();
    github.gate.reset_calls();
    cirun.gate.reset_calls();

    let started = std::time::Instant::now();
    let (code, out) = gatehouse(
        &dir,
        &["apply", "--confirm", "--allow-mass-revoke"],
        &github_api,
        &cirun_api,
    );
    assert_eq!(code, Some(0), "{out}");
    eprintln!("the 1,000 changes: {:?}", started.elapsed());
    assert!(
        git(&dir, &["status", "--porcelain"]).trim().is_empty(),
        "the ledger is committed"
    );

    // Cirun (the default `via: access-repo`): the whole batch in one commit of `.access.yml`
    // to `conda-forge/.cirun`, after one read; Cirun's API is not called.
    assert!(cirun.gate.calls().is_empty());
    let calls = github.gate.calls();
    let access_file = "/repos/conda-forge/.cirun/contents/.access.yml";
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.ends_with(access_file))
            .collect::<Vec<_>>(),
        [&format!("GET {access_file}"), &format!("PUT {access_file}")]
    );
    let provider_calls = calls
        .iter()
        .filter(|c| c.contains("/installations/") || c.contains("/runner-groups"))
        .count();
    let other_calls = calls.len() - provider_calls;
    // Listing what is held costs a page per 100 repositories; everything else is per change:
    // the app looks a new repository up and adds it (2), removes one it listed (1); the
    // runner group looks up repositories new to it and sets the list once; a configuration
    // pull request costs a fixed number of calls (about a dozen).
    let pages = held_app.div_ceil(100) + held_group.div_ceil(100) + 1;
    let bound = pages + 2 * app_adds + app_removals + group_adds + 1 + 14 * configs + 2;
    eprintln!(
        "{ledger} ledger changes, {} provider changes ({configs} configuration pull requests); \
         {} GitHub calls (bound {bound}): {provider_calls} to the installation and the runner \
         group ({pages} listing pages over {held_app} + {held_group} held), {other_calls} \
         repository lookups and pull request calls, including Cirun's read and commit of \
         .access.yml",
        changes.len(),
        calls.len()
    );
    assert!(calls.len() <= bound, "{} > {bound}", calls.len());
    // The app is sent one call per repository that comes or goes, as apply reports them.
    let reported: usize = out
        .lines()
        .filter_map(|l| l.strip_prefix("namespace (github-app): "))
        .filter_map(|l| l.strip_suffix(" change(s) made"))
        .map(|n| n.parse::<usize>().unwrap())
        .sum();
    let app_mutations = calls
        .iter()
        .filter(|c| !c.starts_with("GET ") && c.contains("/installations/"))
        .count();
    assert!(reported > 100, "{out}");
    assert_eq!(app_mutations, reported);

    // And a second run changes nothing and costs only the listings.
    let pages = github.installation(12345).len().div_ceil(100)
        + github.runner_group("gpu").len().div_ceil(100)
        + 2
        // The issue of held requests, looked up to close it if one is open.
        + 1;
    github.gate.reset_calls();
    let (code, out) = gatehouse(&dir, &["apply", "--confirm"], &github_api, &cirun_api);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(github.gate.mutations(), 0);
    let calls = github.gate.calls();
    assert!(calls.len() <= pages, "{calls:?}");
}
