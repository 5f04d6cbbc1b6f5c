//! A temporary access repository in git with loopback fakes of GitHub and Cirun, and the
//! binary run against them: shared by the `apply`, `expire` and kill tests.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

use super::{
    CIRUN_KEY, FakeCirun, FakeGitHub, GITHUB_TOKEN, Hold, serve_cirun_held, serve_github_held,
};

pub const INSTALLATION: u64 = 77;
pub const GROUP_ID: u64 = 5;
pub const TODAY: &str = "2026-11-28";
/// The member of team `core` who approves the world's merged requests.
pub const REVIEWER: &str = "jaimergp";
/// Who opens the world's pull requests.
pub const REQUESTER: &str = "requester";
/// The first pull request number the world's requests get.
pub const FIRST_PULL: u64 = 12;

pub struct World {
    pub dir: tempfile::TempDir,
    pub github_api: String,
    pub cirun_api: String,
    pub github: Arc<FakeGitHub>,
    pub cirun: Arc<FakeCirun>,
    pub hold: Arc<Hold>,
}

/// How the world is set up beyond the defaults.
#[derive(Default)]
pub struct Options {
    /// Cirun's policy goes through Cirun's API (`via: api`: a `PUT`, then the pull request
    /// Cirun opens on `conda-forge/.cirun`, merged) instead of committed to `.cirun` directly
    /// (the default).
    pub cirun_api: bool,
    /// Stops the fakes at a chosen call (shared by both).
    pub hold: Option<Arc<Hold>>,
}

/// An access repository with three resources, one per provider kind, and `background`
/// projects (`b00`, `b01`, ...) that hold all three; committed to a fresh git repository.
pub fn world(background: usize) -> World {
    world_with(background, Options::default())
}

pub fn world_with(background: usize, options: Options) -> World {
    let hold = options.hold.unwrap_or_default();
    let fake = FakeGitHub::new();
    {
        let mut s = fake.state.lock().unwrap();
        s.installations.insert(INSTALLATION, Default::default());
        s.runner_groups
            .insert(GROUP_ID, ("gpu".to_string(), Default::default()));
        s.runner_groups
            .insert(GROUP_ID + 1, ("other".to_string(), Default::default()));
        // The organisation's reviewers (gatehouse.yml's `reviewers: { teams: [core] }`).
        s.teams.insert("core".into(), vec![REVIEWER.into()]);
    }
    let (github_api, github) = serve_github_held(fake, hold.clone());
    let (cirun_api, cirun) =
        serve_cirun_held(FakeCirun::new(github.clone(), "conda-forge"), hold.clone());
    let via = if options.cirun_api { ", via: api" } else { "" };
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![
        (
            "gatehouse.yml".to_string(),
            format!(
                "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: {{ teams: [core] }}\n\
             providers:\n  cirun: {{ kind: cirun, access_repo: .cirun{via} }}\n  \
             namespace: {{ kind: github-app, installation_id: 77 }}\n  \
             gpu-pool: {{ kind: runner-group, group: gpu }}\n"
            ),
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
        hold,
    }
}

pub fn write(dir: &Path, path: &str, contents: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

pub fn git(dir: &Path, args: &[&str]) -> String {
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

pub const GRANT_ALL: &str = "resources: [cirun-gpu, namespace, gpu-runner]\n";

impl World {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds a request file and commits it, as a merged pull request would: the fake GitHub
    /// links the commit to a merged pull request (numbered from [`FIRST_PULL`]) by
    /// [`REQUESTER`], based on the commit before, that [`REVIEWER`] approved at its head.
    /// Its number.
    pub fn request(&self, name: &str, contents: &str) -> u64 {
        let number = self.request_unreviewed(name, contents);
        let sha = self.head();
        self.github.review(number, REVIEWER, "APPROVED", &sha);
        number
    }

    /// [`World::request`] without the approval: merged with no review.
    pub fn request_unreviewed(&self, name: &str, contents: &str) -> u64 {
        let path = format!("requests/{name}.yml");
        let base = self.head();
        let sha = self.commit_direct(name, contents);
        let mut s = self.github.state.lock().unwrap();
        let number = FIRST_PULL + s.pulls.len() as u64;
        let mut pull = super::FakePull::new(REQUESTER, &sha, &[path.as_str()]);
        pull.base_sha = base;
        pull.merged = true;
        pull.merged_commits = vec![sha];
        s.pulls.insert(number, pull);
        number
    }

    /// Adds a request file and commits it straight to the branch, with no pull request. The
    /// commit's id.
    pub fn commit_direct(&self, name: &str, contents: &str) -> String {
        write(self.path(), &format!("requests/{name}.yml"), contents);
        git(self.path(), &["add", "-A"]);
        git(
            self.path(),
            &["commit", "-q", "-m", &format!("request {name}")],
        );
        self.head()
    }

    /// Writes `path` (a resource, gatehouse.yml) and commits it straight to the branch, as a
    /// merged change of core's would.
    pub fn commit_file(&self, path: &str, contents: &str) {
        write(self.path(), path, contents);
        git(self.path(), &["add", "-A"]);
        git(
            self.path(),
            &["commit", "-q", "-m", &format!("change {path}")],
        );
    }

    /// Sets the `quota:` of resource `gpu-runner` (the runner group's), committed; `""`: none.
    pub fn cap_gpu_runner(&self, quota: &str) {
        self.commit_file(
            "resources/gpu-runner.yml",
            &format!("name: gpu-runner\nprovider: gpu-pool\nlabels: [gpu-runner]\n{quota}"),
        );
    }

    /// The id of the checked-out commit.
    pub fn head(&self) -> String {
        git(self.path(), &["rev-parse", "HEAD"]).trim().to_string()
    }

    pub fn commits(&self) -> usize {
        git(self.path(), &["rev-list", "--count", "HEAD"])
            .trim()
            .parse()
            .unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
        let out = self.command(args, env).output().unwrap();
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

    /// The command that runs the binary on this world, not yet started.
    pub fn command(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.args(args)
            .arg(self.path())
            .env("GATEHOUSE_GITHUB_API", &self.github_api)
            .env("GATEHOUSE_CIRUN_API", &self.cirun_api)
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .env("GATEHOUSE_ADMIN_TOKEN", GITHUB_TOKEN)
            .env("CIRUN_API_KEY", CIRUN_KEY)
            .env("GATEHOUSE_HTTP_BACKOFF_MS", "10")
            .env("GATEHOUSE_HTTP_TIMEOUT_MS", "5000")
            .env("GATEHOUSE_GITHUB_MUTATION_SPACING_MS", "0")
            .env("GATEHOUSE_TODAY", TODAY)
            .env("GATEHOUSE_LOG", "trace")
            .env("NO_COLOR", "1")
            .env("GITHUB_REPOSITORY", "conda-forge/access")
            .env_remove("GATEHOUSE_NOW")
            .env_remove("GATEHOUSE_HTTP_MAX_WAIT_SECS");
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// Every provider's view of `project`: (in the Cirun policy as merged in `.cirun`, in the
    /// installation, in the runner group).
    pub fn holds(&self, project: &str) -> (bool, bool, bool) {
        let repo = format!("{project}-feedstock");
        let full = format!("conda-forge/{repo}");
        (
            self.cirun.repos_for("cirun-gpu").contains(&repo),
            self.github.installation(INSTALLATION).contains(&full),
            self.github.runner_group("gpu").contains(&full),
        )
    }

    pub fn mutations(&self) -> usize {
        self.github.gate.mutations() + self.cirun.gate.mutations()
    }

    pub fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.path().join(".gatehouse/state.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
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
