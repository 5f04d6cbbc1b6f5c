//! `render cirun`: deterministic, lint-ordered, and a faithful round trip of the real
//! conda-forge `.access.yml` through `import cirun`.

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_core::Repo;
use gatehouse_core::import::cirun::{self, ImportOptions};
use gatehouse_policy::render::cirun::render;
use jiff::civil::date;

const ACCESS: &str = include_str!("../../../../fixtures/conda-forge/cirun-access.yml");
const GLOBAL: &str = include_str!("../../../../fixtures/conda-forge/cirun-global.yml");
const TOS_URL: &str = "https://raw.githubusercontent.com/Quansight/open-gpu-server/main/access/conda-forge-users.json";

/// The repository `import cirun` makes of the real files, as (path, contents).
fn imported_files() -> Vec<(String, String)> {
    let (access, global) = cirun::parse("a", ACCESS.as_bytes(), "g", GLOBAL.as_bytes()).unwrap();
    let imported = cirun::import(
        &access,
        "a",
        &global,
        "g",
        &ImportOptions {
            provider: "cirun",
            repo_suffix: "-feedstock",
            granted: date(2026, 1, 1),
        },
    );
    let mut files = vec![(
        "gatehouse.yml".to_string(),
        format!(
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: {{ teams: [core] }}\nproviders:\n  cirun: {{ kind: cirun, access_repo: .cirun, users_from_json: \"{TOS_URL}\" }}\n"
        ),
    )];
    for r in &imported.resources {
        files.push((
            format!("resources/{}.yml", r.name.value),
            serde_saphyr::to_string(r).unwrap(),
        ));
    }
    for g in &imported.grants {
        files.push((
            format!("grants/{}.yml", g.project.value),
            serde_saphyr::to_string(g).unwrap(),
        ));
    }
    files
}

type Access = BTreeMap<String, BTreeSet<(String, bool, String)>>;

/// resource -> {(repo, pull_request, who)} of an `.access.yml`, `who` being the sorted user
/// list or the users_from_json URL.
fn access_of(text: &str) -> Access {
    let doc: serde_json::Value = serde_saphyr::from_str(text).unwrap();
    let policies: BTreeMap<&str, &serde_json::Value> = doc["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let mut out = Access::new();
    for entry in doc["access_control"].as_array().unwrap() {
        for pid in entry["policies"].as_array().unwrap() {
            let p = policies[pid.as_str().unwrap()];
            assert_eq!(
                p["roles"],
                serde_json::json!(["admin", "maintain", "write"])
            );
            let who = match p["users"].as_array() {
                Some(users) => {
                    let mut u: Vec<&str> = users.iter().map(|u| u.as_str().unwrap()).collect();
                    u.sort_by_key(|s| s.to_ascii_lowercase());
                    u.join(",")
                }
                None => p["users_from_json"].as_str().unwrap().to_string(),
            };
            out.entry(entry["resource"].as_str().unwrap().to_string())
                .or_default()
                .insert((
                    p["repo"].as_str().unwrap().to_string(),
                    p["pull_request"].as_bool().unwrap_or(false),
                    who,
                ));
        }
    }
    out
}

#[test]
fn import_then_render_gives_the_same_access() {
    let repo = Repo::from_sources(imported_files());
    let rendered = render(&repo, None, date(2026, 11, 28)).unwrap();
    assert_eq!(access_of(&rendered), access_of(ACCESS));
}

#[test]
fn rendering_is_deterministic_whatever_the_file_order() {
    let mut files = imported_files();
    let first = render(&Repo::from_sources(files.clone()), None, date(2026, 11, 28)).unwrap();
    files.reverse();
    let second = render(&Repo::from_sources(files), None, date(2026, 11, 28)).unwrap();
    assert_eq!(first, second);
}

#[test]
fn output_is_ordered_for_the_lint() {
    let repo = Repo::from_sources(imported_files());
    let rendered = render(&repo, None, date(2026, 11, 28)).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&rendered).unwrap();
    let ids: Vec<&str> = doc["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "policy ids sorted");
    let resources: Vec<&str> = doc["access_control"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].as_str().unwrap())
        .collect();
    let mut sorted_r = resources.clone();
    sorted_r.sort();
    sorted_r.dedup();
    assert_eq!(
        resources, sorted_r,
        "one entry per resource, in catalogue order"
    );
    for e in doc["access_control"].as_array().unwrap() {
        let p: Vec<&str> = e["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        let mut s = p.clone();
        s.sort();
        assert_eq!(p, s);
    }
    // pytorch-cpu needs two user sets (everyone with terms accepted; a list for Windows).
    assert!(ids.contains(&"pytorch-cpu-feedstock-policy"));
    assert!(ids.contains(&"pytorch-cpu-feedstock-policy-2"));
    insta::assert_snapshot!(rendered);
}

#[test]
fn expired_grants_are_not_rendered() {
    let mut files = imported_files();
    let (_, text) = files
        .iter_mut()
        .find(|(p, _)| p == "grants/temporalio-cli.yml")
        .unwrap();
    text.push_str("");
    *text = text.replace(
        "granted: \"2026-01-01\"",
        "granted: \"2026-01-01\"\n  expires: \"2026-06-01\"",
    );
    assert!(text.contains("expires"), "{text}");
    let rendered = render(&Repo::from_sources(files), None, date(2026, 11, 28)).unwrap();
    assert!(!rendered.contains("temporalio-cli"), "{rendered}");
}
