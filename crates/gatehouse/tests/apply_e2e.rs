//! `gatehouse apply`, `expire` and `doctor` end to end: the binary in a temporary git
//! repository against loopback fakes of GitHub and Cirun (see `support/`).

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;
use support::{CIRUN_KEY, FakeCirun, FakeGitHub, Fault, GITHUB_TOKEN, serve_cirun, serve_github};

const INSTALLATION: u64 = 77;
const GROUP_ID: u64 = 5;
const TODAY: &str = "2026-11-28";

struct World {
    dir: tempfile::TempDir,
    github_api: String,
    cirun_api: String,
    github: Arc<FakeGitHub>,
    cirun: Arc<FakeCirun>,
}

/// An access repository with three resources, one per provider kind, and `background`
/// projects (`b00`, `b01`, ...) that hold all three; committed to a fresh git repository.
fn world(background: usize) -> World {
    let fake = FakeGitHub::new();
    {
        let mut s = fake.state.lock().unwrap();
        s.installations.insert(INSTALLATION, Default::default());
        s.runner_groups
            .insert(GROUP_ID, ("gpu".to_string(), Default::default()));
        s.runner_groups
            .insert(GROUP_ID + 1, ("other".to_string(), Default::default()));
    }
    let (github_api, github) = serve_github(fake);
    let (cirun_api, cirun) = serve_cirun(FakeCirun::new());
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![
        (
            "gatehouse.yml".to_string(),
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\n\
             providers:\n  cirun: { kind: cirun, access_repo: .cirun }\n  \
             namespace: { kind: github-app, installation_id: 77 }\n  \
             gpu-pool: { kind: runner-group, group: gpu }\n"
                .to_string(),
        ),
        (
            "resources/cirun-gpu.yml".to_string(),
            "name: cirun-gpu\nprovider: cirun\nlabels: [cirun-gpu]\n".to_string(),
        ),
        (
            "resources/namespace.yml".to_string(),
            "name: namespace\nprovider: namespace\nlabels: [namespace]\n".to_string(),
        ),
        (
            "resources/gpu-runner.yml".to_string(),
            "name: gpu-runner\nprovider: gpu-pool\nlabels: [gpu-runner]\n".to_string(),
        ),
    ];
    for i in 0..background {
        let p = format!("b{i:02}");
        files.push((
            format!("grants/{p}.yml"),
            format!(
                "project: {p}\ngrants:\n  - {{ resource: cirun-gpu, granted: 2026-01-01 }}\n  \
                 - {{ resource: namespace, granted: 2026-01-01 }}\n  \
                 - {{ resource: gpu-runner, granted: 2026-01-01 }}\n"
            ),
        ));
    }
    for (path, contents) in files {
        write(dir.path(), &path, &contents);
    }
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["config", "user.name", "Test"]);
    git(dir.path(), &["config", "user.email", "test@example.org"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "initial"]);
    World {
        dir,
        github_api,
        cirun_api,
        github,
        cirun,
    }
}

fn write(dir: &Path, path: &str, contents: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const GRANT_ALL: &str = "resources: [cirun-gpu, namespace, gpu-runner]\n";

impl World {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds a request file and commits it, as a merged pull request would.
    fn request(&self, name: &str, contents: &str) {
        write(self.path(), &format!("requests/{name}.yml"), contents);
        git(self.path(), &["add", "-A"]);
        git(
            self.path(),
            &["commit", "-q", "-m", &format!("request {name}")],
        );
    }

    fn commits(&self) -> usize {
        git(self.path(), &["rev-list", "--count", "HEAD"])
            .trim()
            .parse()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.args(args)
            .arg(self.path())
            .env("GATEHOUSE_GITHUB_API", &self.github_api)
            .env("GATEHOUSE_CIRUN_API", &self.cirun_api)
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .env("CIRUN_API_KEY", CIRUN_KEY)
            .env("GATEHOUSE_HTTP_BACKOFF_MS", "10")
            .env("GATEHOUSE_HTTP_TIMEOUT_MS", "5000")
            .env("GATEHOUSE_GITHUB_MUTATION_SPACING_MS", "0")
            .env("GATEHOUSE_TODAY", TODAY)
            .env("GATEHOUSE_LOG", "trace")
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_REPOSITORY")
            .env_remove("GATEHOUSE_NOW")
            .env_remove("GATEHOUSE_HTTP_MAX_WAIT_SECS");
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
        for secret in [GITHUB_TOKEN, CIRUN_KEY] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "a token leaked:\n{run}"
            );
        }
        run
    }

    /// Every provider's view of `project`: (in the Cirun policy, in the installation, in the
    /// runner group).
    fn holds(&self, project: &str) -> (bool, bool, bool) {
        let repo = format!("{project}-feedstock");
        let full = format!("conda-forge/{repo}");
        (
            self.cirun.repos_for("cirun-gpu").contains(&repo),
            self.github.installation(INSTALLATION).contains(&full),
            self.github.runner_group("gpu").contains(&full),
        )
    }

    fn mutations(&self) -> usize {
        self.github.gate.mutations() + self.cirun.gate.mutations()
    }

    fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.path().join(".gatehouse/state.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
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

// ---------------------------------------------------------------------------------------------

#[test]
fn grant_revoke_and_expire_reach_every_provider() {
    let w = world(10);
    {
        let mut s = w.github.state.lock().unwrap();
        s.merged_pull = Some((12, vec!["jaimergp"]));
    }
    // Listings come in pages of four, so every observation needs several pages.
    *w.github.page_size.lock().unwrap() = 4;
    w.request(
        "x",
        &format!(
            "action: grant\nprojects: [x, y]\n{GRANT_ALL}expires: 2026-12-31\nreason: GPU tests\n"
        ),
    );
    let before = w.commits();

    // Without --confirm: the plan, and nothing changes anywhere.
    let dry = w.run(&["apply"]);
    assert_eq!(dry.code, Some(0), "{dry}");
    assert!(dry.stdout.contains("+ grant   x: cirun-gpu"), "{dry}");
    assert!(w.path().join("requests/x.yml").exists());
    assert!(!w.path().join("grants/x.yml").exists());
    assert_eq!(w.commits(), before);
    assert_eq!(w.github.gate.calls().len() + w.cirun.gate.calls().len(), 0);

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
    assert_eq!(
        first["approved_by"],
        serde_json::json!(["jaimergp"]),
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
        w.cirun.gate.count("PUT "),
        1,
        "Cirun takes the policy in one call"
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
        message.contains("revoke x: namespace (requests/x-revoke.yml)"),
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
    let w = world(3);
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
    assert_eq!(w.github.gate.mutations(), 0, "{:?}", w.github.gate.calls());
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
    let w = world(2);
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
    let cirun = w.cirun.gate.calls();
    let github = w.github.gate.calls();
    assert_eq!(
        cirun,
        ["GET /api/v1/access-control", "PUT /api/v1/access-control"]
    );
    // The app: list, look up x's id, add it. The runner group: find the group, list, look up
    // x's id, set. Nothing per project already in place.
    assert_eq!(w.github.gate.count("GET /repos/"), 2, "{github:?}");
    assert_eq!(w.github.gate.mutations(), 2, "{github:?}");
    assert_eq!(github.len(), 7, "{github:?}");
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

#[test]
fn doctor_names_a_rejected_and_a_missing_credential() {
    let w = world(0);
    let good = w.run(&["doctor"]);
    assert_eq!(good.code, Some(0), "{good}");
    assert!(good.stdout.contains("ok        GITHUB_TOKEN"), "{good}");
    assert!(good.stdout.contains("ok        CIRUN_API_KEY"), "{good}");

    let wrong = "ghp_wrongTokenThatMustNotBePrintedEither";
    let bad = w.run_env(
        &["doctor"],
        &[("GITHUB_TOKEN", Some(wrong)), ("CIRUN_API_KEY", None)],
    );
    assert_eq!(bad.code, Some(1), "{bad}");
    assert!(bad.stdout.contains("rejected  GITHUB_TOKEN"), "{bad}");
    assert!(bad.stdout.contains("used by gpu-pool, namespace"), "{bad}");
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
