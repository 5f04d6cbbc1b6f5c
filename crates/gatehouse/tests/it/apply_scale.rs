//! `gatehouse apply` on the generated conda-forge-scale repository (`gen-fixture --scale 2`:
//! 4,000 grants, then 1,000 pending requests) against the loopback fakes: the number of API
//! calls follows the number of changes, not the number of projects, and Cirun gets the whole
//! batch in one write, in both of its modes: the commit of `.access.yml` to `.cirun`
//! (`via: access-repo`, the default) and cirun-py's batched `PUT access-control`, whose pull
//! request on `.cirun` `apply` checks and merges (`via: api`; the stand-in speaks cirun-py's
//! shapes, see `crates/gatehouse-fake`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support;
use crate::support::world::{TODAY, git};
use crate::support::{CIRUN_KEY, FakeCirun, FakeGitHub, GITHUB_TOKEN, serve_cirun, serve_github};

/// Cirun's API keeps one policy per repository (cirun-py's `repository_resource_access`
/// entries: one set of roles, users and `policy_args` a repository), so a ledger that gives a
/// project different ones on different Cirun resources is refused in `via: api`. The generated
/// fixture varies them at random; for the API mode it is made uniform: every grant without
/// pull requests (and so without a fork setting), no grant's own user list, every resource
/// requiring the terms of service (read by Cirun from `users_from_json`).
fn one_policy_per_project(dir: &Path) {
    for folder in ["grants", "requests", "resources"] {
        for entry in std::fs::read_dir(dir.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let uniform: String = text
                .lines()
                .filter(|l| {
                    let l = l.trim_start();
                    !l.starts_with("forks:") && !l.starts_with("users: { users:")
                })
                .map(|l| {
                    l.replace("pull_request: true", "pull_request: false")
                        .replace("require_tos: false", "require_tos: true")
                        + "\n"
                })
                .collect();
            std::fs::write(&path, uniform).unwrap();
        }
    }
}

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
    scale(false);
}

#[test]
fn through_cirun_s_api_a_thousand_pending_changes_are_one_batched_put_and_one_merge() {
    scale(true);
}

fn scale(api: bool) {
    let mode = if api { "api" } else { "access-repo" };
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
    if api {
        one_policy_per_project(&dir);
        let from = "cirun: { kind: cirun, access_repo: .cirun,";
        assert!(settings.contains(from), "{settings}");
        std::fs::write(
            dir.join("gatehouse.yml"),
            settings.replace(from, "cirun: { kind: cirun, access_repo: .cirun, via: api,"),
        )
        .unwrap();
    }

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
    eprintln!("{mode}: seeding: {:?}", started.elapsed());
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
    eprintln!("{mode}: the 1,000 changes: {:?}", started.elapsed());
    assert!(
        git(&dir, &["status", "--porcelain"]).trim().is_empty(),
        "the ledger is committed"
    );

    let calls = github.gate.calls();
    let access_file = "/repos/conda-forge/.cirun/contents/.access.yml";
    let cirun_calls = cirun.gate.calls();
    // What Cirun's write costs at GitHub: in `access-repo`, the read and the commit of
    // `.access.yml`; in `api`, finding Cirun's pull request, checking it and merging it.
    let on_cirun_repo: Vec<&String> = calls
        .iter()
        .filter(|c| c.contains("/repos/conda-forge/.cirun/"))
        .collect();
    if api {
        // The whole batch in one `PUT access-control` (after one `GET` of the merged policy),
        // and one merge of the pull request it opened; nothing committed directly.
        let puts: Vec<&String> = cirun_calls
            .iter()
            .filter(|c| c.starts_with("PUT "))
            .collect();
        assert_eq!(puts.len(), 1, "{cirun_calls:?}");
        assert!(puts[0].ends_with("/access-control"), "{puts:?}");
        let merges = on_cirun_repo
            .iter()
            .filter(|c| c.starts_with("PUT ") && c.ends_with("/merge"))
            .count();
        assert_eq!(merges, 1, "{on_cirun_repo:?}");
        assert!(
            !calls.contains(&format!("PUT {access_file}")),
            "{on_cirun_repo:?}"
        );
    } else {
        // The whole batch in one commit of `.access.yml` to `conda-forge/.cirun`, after one
        // read; Cirun's API is not called.
        assert!(cirun_calls.is_empty(), "{cirun_calls:?}");
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.ends_with(access_file))
                .collect::<Vec<_>>(),
            [&format!("GET {access_file}"), &format!("PUT {access_file}")]
        );
    }
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
    // Cirun's pull request (`api`): the open pull requests of `.cirun`, Cirun's one, its files
    // and its `.access.yml`, the merge: a fixed handful, in place of the read and the commit.
    let cirun_write = if api { 6 } else { 2 };
    let bound = pages + 2 * app_adds + app_removals + group_adds + 1 + 14 * configs + cirun_write;
    eprintln!(
        "{mode}: {ledger} ledger changes, {} provider changes ({configs} configuration pull \
         requests); {} GitHub calls (bound {bound}): {provider_calls} to the installation and \
         the runner group ({pages} listing pages over {held_app} + {held_group} held), \
         {other_calls} repository lookups and pull request calls, of which {} on `.cirun` \
         ({on_cirun_repo:?}); {} calls to Cirun's API ({cirun_calls:?})",
        changes.len(),
        calls.len(),
        on_cirun_repo.len(),
        cirun_calls.len()
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

    // And a second run changes nothing and costs only the listings (with `api`, Cirun's
    // `GET` of the merged policy and the look for open pull requests on `.cirun`).
    let repo = gatehouse_core::repo::load_dir(&dir).unwrap();
    let capped_groups = repo
        .settings
        .iter()
        .flat_map(|s| s.value.providers.iter())
        .filter(|(name, p)| {
            p.kind() == gatehouse_core::model::ProviderKind::RunnerGroup
                && !gatehouse_core::desired::runner_limits(&repo, name).is_empty()
        })
        .count();
    let pages = github.installation(12345).len().div_ceil(100)
        + github.runner_group("gpu").len().div_ceil(100)
        // The larger runners (none here), read for a runner group whose resources have caps.
        + capped_groups
        + 2
        // The issue of held requests, looked up to close it if one is open.
        + 1;
    github.gate.reset_calls();
    cirun.gate.reset_calls();
    let (code, out) = gatehouse(&dir, &["apply", "--confirm"], &github_api, &cirun_api);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(github.gate.mutations(), 0);
    assert_eq!(cirun.gate.mutations(), 0, "{:?}", cirun.gate.calls());
    let calls = github.gate.calls();
    assert!(calls.len() <= pages, "{mode}: {calls:?}");
    eprintln!(
        "{mode}: a second run: {} GitHub calls, {} to Cirun's API",
        calls.len(),
        cirun.gate.calls().len()
    );
}
