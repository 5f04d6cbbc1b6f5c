//! `gatehouse import cirun` end to end on conda-forge's real Cirun files: the imported
//! repository renders back to the same access policy, lets in the people of the real users
//! list, and `site` publishes that list in the format Cirun reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support;

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/conda-forge")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn import(out: &Path, access: &Path, users: Option<&Path>, extra: &[&str]) -> Output {
    let f = fixtures();
    let mut args = vec![
        "import".to_string(),
        "cirun".into(),
        "--access".into(),
        access.display().to_string(),
        "--runners".into(),
        f.join("cirun-global.yml").display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--granted".into(),
        "2026-03-01".into(),
    ];
    if let Some(u) = users {
        args.extend(["--users-json".into(), u.display().to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    gatehouse(&args)
}

/// One Cirun policy's meaning: repository, roles, teams, users (sorted), `users_from_json`
/// and `pull_request`.
type PolicyMeaning = (String, Vec<String>, Vec<String>, Vec<String>, String, bool);

/// resource -> the meanings of the policies its `access_control` entries name (an entry
/// listed twice counts once: Cirun reads the union).
fn meaning(text: &str) -> BTreeMap<String, BTreeSet<PolicyMeaning>> {
    let doc: serde_json::Value = serde_saphyr::from_str(text).unwrap();
    let strings = |v: &serde_json::Value| -> Vec<String> {
        let mut s: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        s.sort_by_key(|x| x.to_ascii_lowercase());
        s
    };
    let policies: BTreeMap<&str, PolicyMeaning> = doc["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap(),
                (
                    p["repo"].as_str().unwrap().to_string(),
                    strings(&p["roles"]),
                    strings(&p["teams"]),
                    strings(&p["users"]),
                    p["users_from_json"].as_str().unwrap_or("").to_string(),
                    p["pull_request"].as_bool().unwrap_or(false),
                ),
            )
        })
        .collect();
    let mut out: BTreeMap<String, BTreeSet<PolicyMeaning>> = BTreeMap::new();
    for entry in doc["access_control"].as_array().unwrap() {
        for pid in entry["policies"].as_array().unwrap() {
            out.entry(entry["resource"].as_str().unwrap().to_string())
                .or_default()
                .insert(policies[pid.as_str().unwrap()].clone());
        }
    }
    out
}

#[test]
fn import_then_render_gives_back_the_real_policy() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures();
    let run = import(
        dir.path(),
        &f.join("cirun-access.yml"),
        Some(&f.join("conda-forge-users.json")),
        &[],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let out = text(&run);
    assert!(
        out.contains("imported 37 people who accepted the terms"),
        "{out}"
    );
    // Cirun's policies never end: every grant is reported.
    assert_eq!(out.matches("warning[no-expiry]").count(), 41, "{out}");

    let settings = std::fs::read_to_string(dir.path().join("gatehouse.yml")).unwrap();
    assert!(
        settings.contains(
            "users_from_json: \"https://raw.githubusercontent.com/Quansight/open-gpu-server/main/access/conda-forge-users.json\""
        ),
        "{settings}"
    );
    let rendered = gatehouse(&[
        "render",
        "cirun",
        "--today",
        "2026-11-28",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(rendered.status.code(), Some(0), "{}", text(&rendered));
    let rendered = String::from_utf8(rendered.stdout).unwrap();
    let original = std::fs::read_to_string(f.join("cirun-access.yml")).unwrap();
    assert_eq!(meaning(&rendered), meaning(&original), "{rendered}");

    // The people of the users list are let in by number: `decide` allows one of them on a GPU
    // grant (and not somebody outside the list).
    let job = |login: &str, id: u64| {
        serde_json::json!({
            "repository": "conda-forge/pytorch-cpu-feedstock",
            "labels": ["cirun-openstack-gpu-large"],
            "event": "push",
            "actor": { "login": login, "id": id, "permission": "write" },
            "triggering_actor": { "login": login, "id": id, "permission": "write" },
        })
    };
    for (login, id, verdict) in [("h-vetinari", 33685575, "allow"), ("someone", 1, "deny")] {
        let path = dir.path().join(format!("job-{login}.json"));
        std::fs::write(&path, job(login, id).to_string()).unwrap();
        let d = gatehouse(&[
            "decide",
            "--today",
            "2026-11-28",
            "--format",
            "json",
            "--job",
            path.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ]);
        let doc: serde_json::Value =
            serde_json::from_slice(&d.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&d)));
        assert_eq!(doc["outcome"], verdict, "{login}: {doc}");
    }

    // The ledger's list, published by `site` in the users_from_json format, is the real list.
    let public = dir.path().join("public");
    let site = gatehouse(&[
        "site",
        "--today",
        "2026-11-28",
        "--out",
        public.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(site.status.code(), Some(0), "{}", text(&site));
    let published: serde_json::Value =
        serde_json::from_slice(&std::fs::read(public.join("v1/tos-users.json")).unwrap()).unwrap();
    let real: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.join("conda-forge-users.json")).unwrap()).unwrap();
    assert_eq!(published, real);
}

/// Cirun policies can let in GitHub teams (cirun-py's `add_repo_to_resources(..., teams=[...])`,
/// docs.cirun.io "Access Control"): the import keeps them on the grants, `render cirun` gives
/// back the same policies, and `decide` lets in a team's members when the job says who they are,
/// refuses someone in none of the teams, and refuses, saying team membership could not be
/// checked, a job that does not say who is in them.
#[test]
fn a_policy_with_teams_round_trips_and_decide_judges_its_members() {
    let dir = tempfile::tempdir().unwrap();
    let access = "version: 1
policies:
  - id: a-feedstock-policy
    repo: a-feedstock
    roles: [admin, maintain, write]
    teams: [core, gpu-team]
    pull_request: true
  - id: b-feedstock-policy
    repo: b-feedstock
    roles: [admin, maintain, write]
    users: [wolfv]
    teams: [core]
    pull_request: false
access_control:
  - resource: cirun-openstack-gpu-large
    policies: [a-feedstock-policy, b-feedstock-policy]
  - resource: cirun-openstack-gpu-xlarge
    policies: [a-feedstock-policy]
";
    let access_path = dir.path().join("access.yml");
    std::fs::write(&access_path, access).unwrap();
    let out = dir.path().join("repo");
    let run = import(&out, &access_path, None, &[]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(
        text(&run).matches("warning[teams]").count(),
        3,
        "{}",
        text(&run)
    );
    let grants = std::fs::read_to_string(out.join("grants/a.yml")).unwrap();
    assert!(grants.contains("teams"), "{grants}");

    let rendered = gatehouse(&[
        "render",
        "cirun",
        "--today",
        "2026-11-28",
        out.to_str().unwrap(),
    ]);
    assert_eq!(rendered.status.code(), Some(0), "{}", text(&rendered));
    let rendered = String::from_utf8(rendered.stdout).unwrap();
    assert_eq!(meaning(&rendered), meaning(access), "{rendered}");
    // A policy of teams alone is written without a list of users, as it was.
    let doc: serde_json::Value = serde_saphyr::from_str(&rendered).unwrap();
    let a = doc["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["repo"] == "a-feedstock")
        .unwrap();
    assert!(a.get("users").is_none(), "{rendered}");
    assert_eq!(a["teams"], serde_json::json!(["core", "gpu-team"]));

    let decide = |teams: Option<serde_json::Value>| {
        let mut job = serde_json::json!({
            "repository": "conda-forge/a-feedstock",
            "labels": ["cirun-openstack-gpu-large"],
            "event": "push",
            "actor": { "login": "a-core-member", "id": 77, "permission": "write" },
            "triggering_actor": { "login": "a-core-member", "id": 77, "permission": "write" },
        });
        if let Some(teams) = teams {
            job["teams"] = teams;
        }
        let path = dir.path().join("job.json");
        std::fs::write(&path, job.to_string()).unwrap();
        let d = gatehouse(&[
            "decide",
            "--today",
            "2026-11-28",
            "--format",
            "json",
            "--job",
            path.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        let doc: serde_json::Value =
            serde_json::from_slice(&d.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&d)));
        doc
    };
    // A member of `core`: let in, as Cirun does.
    let doc = decide(Some(serde_json::json!({ "core": [77], "gpu-team": [] })));
    assert_eq!(doc["outcome"], "allow", "{doc}");
    // In neither team: refused, naming the teams.
    let doc = decide(Some(serde_json::json!({ "core": [1], "gpu-team": [2] })));
    assert_eq!(doc["outcome"], "deny", "{doc}");
    assert_eq!(doc["rule"], "user-not-allowed", "{doc}");
    let message = doc["message"].as_str().unwrap();
    assert!(
        message.contains("none of the teams it names (`conda-forge/core`, `conda-forge/gpu-team`)"),
        "{message}"
    );
    // The job does not say who is in the teams: refused, never let in.
    let doc = decide(None);
    assert_eq!(doc["outcome"], "deny", "{doc}");
    assert_eq!(doc["rule"], "facts-unavailable", "{doc}");
    let message = doc["message"].as_str().unwrap();
    assert!(
        message.contains("team membership could not be checked")
            && message.contains("`core`, `gpu-team`"),
        "{message}"
    );
}

#[test]
fn without_the_users_list_nothing_is_written_and_the_fix_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = import(dir.path(), &fixtures().join("cirun-access.yml"), None, &[]);
    assert_ne!(run.status.code(), Some(0), "{}", text(&run));
    let out = text(&run);
    assert!(
        out.contains("--users-json") && out.contains("--online"),
        "{out}"
    );
    assert!(!dir.path().join("gatehouse.yml").exists());
    assert!(!dir.path().join("people/tos.yml").exists());
}

/// `--online` reads the list from the URL the policies name (here a loopback stand-in serving
/// the real file, as raw.githubusercontent.com serves it: the bytes, `200`).
#[test]
fn online_reads_the_list_the_policies_name() {
    use axum::Router;
    use axum::routing::get;
    let body = std::fs::read(fixtures().join("conda-forge-users.json")).unwrap();
    let app = Router::new().route(
        "/Quansight/open-gpu-server/main/access/conda-forge-users.json",
        get(move || async move { body.clone() }),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
    });
    let dir = tempfile::tempdir().unwrap();
    let access = std::fs::read_to_string(fixtures().join("cirun-access.yml"))
        .unwrap()
        .replace("https://raw.githubusercontent.com", &base);
    let access_path = dir.path().join("access.yml");
    std::fs::write(&access_path, access).unwrap();
    let out = dir.path().join("repo");
    let run = import(&out, &access_path, None, &["--online"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let tos = std::fs::read_to_string(out.join("people/tos.yml")).unwrap();
    assert!(tos.contains("- { github: jaimergp, id: 2559438 }"), "{tos}");
    assert_eq!(tos.matches("- {").count(), 37, "{tos}");

    // A list that is not one is refused, and nothing is written.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"users": [{"github": "a", "id": "12"}]}"#).unwrap();
    let again = dir.path().join("again");
    let run = import(&again, &access_path, Some(&bad), &[]);
    assert_ne!(run.status.code(), Some(0), "{}", text(&run));
    assert!(text(&run).contains("users-json"), "{}", text(&run));
    assert!(!again.join("gatehouse.yml").exists());
}

/// `import github-app` reads the installation (the loopback GitHub stand-in of
/// tests/it/support, which serves `GET /user/installations/{installation_id}/repositories`,
/// operation `apps/list-installation-repos-for-authenticated-user` of @octokit/openapi) with
/// the organisation owner's token of GATEHOUSE_ADMIN_TOKEN, and writes a grant for each
/// project the installation holds that the ledger does not.
#[test]
fn import_github_app_turns_the_installation_into_grants() {
    use support::world::world;
    let w = world(2);
    let applied = w.run(&["apply", "--confirm"]);
    assert_eq!(applied.code, Some(0), "{applied}");
    // b01's namespace grant is missing from the ledger, but the installation holds it.
    support::world::write(
        w.path(),
        "grants/b01.yml",
        "project: b01\ngrants:\n  - { resource: cirun-gpu, granted: 2026-01-01 }\n",
    );
    assert_eq!(
        namespace_drift(&w),
        1,
        "b01 is in the installation without a grant"
    );
    let token = support::GITHUB_TOKEN;
    // Without the owner's token nothing is read, and the fix is named.
    let none = w.run_env(
        &["import", "github-app", "--provider", "namespace"],
        &[("GATEHOUSE_ADMIN_TOKEN", None)],
    );
    assert_ne!(none.code, Some(0), "{none}");
    assert!(none.stderr.contains("GATEHOUSE_ADMIN_TOKEN"), "{none}");
    w.github.gate.reset_calls();
    w.cirun.gate.reset_calls();
    let run = w.run_env(
        &[
            "import",
            "github-app",
            "--provider",
            "namespace",
            "--granted",
            "2026-02-01",
        ],
        &[("GATEHOUSE_ADMIN_TOKEN", Some(token))],
    );
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .contains("imported 1 grants of `namespace` from app installation 77 (2 repositories, 1 already in the ledger)"),
        "{run}"
    );
    assert!(run.stdout.contains("warning[no-expiry]"), "{run}");
    let b01 = std::fs::read_to_string(w.path().join("grants/b01.yml")).unwrap();
    assert!(b01.contains("resource: namespace"), "{b01}");
    assert!(b01.contains("2026-02-01"), "{b01}");
    assert!(b01.contains("resource: cirun-gpu"), "{b01}");
    assert_eq!(w.mutations(), 0, "importing changes nothing at GitHub");
    // The ledger and the installation agree again: shadow mode (`audit --online`) finds no
    // difference at the installation, where it found b01 before.
    assert_eq!(namespace_drift(&w), 0);
}

/// How many differences `audit --online` finds between the ledger and the `namespace`
/// installation.
fn namespace_drift(w: &support::world::World) -> usize {
    let run = w.run(&["audit", "--online", "--format", "json"]);
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{run}"));
    doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["code"] == "audit-drift" && d["message"].as_str().unwrap().contains("`namespace`")
        })
        .count()
}

/// Shadow mode at Cirun's own app installation (its installation id in the Cirun provider, as
/// conda-smithy's `get_cirun_installation_id` names conda-forge's): a repository where Cirun is
/// installed without a grant is reported by `audit --online`; the granted ones are not.
#[test]
fn audit_online_reports_repositories_where_cirun_is_installed_without_a_grant() {
    use support::world::{GROUP_ID, INSTALLATION, world};
    let w = world(2);
    let applied = w.run(&["apply", "--confirm"]);
    assert_eq!(applied.code, Some(0), "{applied}");
    // Cirun's installation holds b00 and b01 (granted) and an intruder (not).
    w.github
        .add_to_runner_group("other", "conda-forge/intruder-feedstock");
    {
        let mut s = w.github.state.lock().unwrap();
        let mut ids = s.installations[&INSTALLATION].clone();
        ids.extend(s.runner_groups[&(GROUP_ID + 1)].1.iter().copied());
        s.installations.insert(78, ids);
    }
    let settings = std::fs::read_to_string(w.path().join("gatehouse.yml")).unwrap();
    let settings = settings.replace(
        "cirun: { kind: cirun, access_repo: .cirun }",
        "cirun: { kind: cirun, access_repo: .cirun, installation_id: 78 }",
    );
    assert!(settings.contains("installation_id: 78"), "{settings}");
    support::world::write(w.path(), "gatehouse.yml", &settings);
    let run = w.run(&["audit", "--online", "--format", "json"]);
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{run}"));
    let found: Vec<&str> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "audit-cirun-ungranted")
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(found.len(), 1, "{run}");
    assert!(found[0].contains("conda-forge/intruder-feedstock"), "{run}");
    assert_eq!(run.code, Some(1), "{run}");
}
