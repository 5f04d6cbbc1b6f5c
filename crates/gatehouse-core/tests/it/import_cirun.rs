//! `import cirun` on conda-forge's real Cirun files: every policy must come through.

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_core::Repo;
use gatehouse_core::check::run_all;
use gatehouse_core::import::cirun::{self, ImportOptions, Imported};
use jiff::civil::date;

const ACCESS: &str = include_str!("../../../../fixtures/conda-forge/cirun-access.yml");
const GLOBAL: &str = include_str!("../../../../fixtures/conda-forge/cirun-global.yml");

fn import() -> Imported {
    let (access, global) = cirun::parse(
        ".access.yml",
        ACCESS.as_bytes(),
        ".cirun.global.yml",
        GLOBAL.as_bytes(),
    )
    .expect("the real files parse");
    assert_eq!(access.policies.len(), 17);
    assert_eq!(access.access_control.len(), 13);
    cirun::import(
        &access,
        ".access.yml",
        &global,
        ".cirun.global.yml",
        &ImportOptions {
            provider: "cirun",
            repo_suffix: "-feedstock",
            granted: date(2026, 1, 1),
        },
    )
}

/// (resource, repository) -> (pull_request, explicit users), computed straight from the YAML
/// without gatehouse's model, as an independent oracle.
/// (resource, repository) -> (pull_request, explicit users).
type AccessMap = BTreeMap<(String, String), (bool, Option<BTreeSet<String>>)>;

fn expected_access() -> AccessMap {
    let doc: serde_json::Value = serde_saphyr::from_str(ACCESS).unwrap();
    let policies: BTreeMap<&str, &serde_json::Value> = doc["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let mut out = BTreeMap::new();
    for entry in doc["access_control"].as_array().unwrap() {
        let resource = entry["resource"].as_str().unwrap();
        for pid in entry["policies"].as_array().unwrap() {
            let p = policies[pid.as_str().unwrap()];
            let users = p["users"].as_array().map(|u| {
                u.iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect::<BTreeSet<_>>()
            });
            let prev = out.insert(
                (
                    resource.to_string(),
                    p["repo"].as_str().unwrap().to_string(),
                ),
                (p["pull_request"].as_bool().unwrap_or(false), users),
            );
            assert!(
                prev.is_none(),
                "the fixture gives one project one resource once"
            );
        }
    }
    out
}

#[test]
fn every_policy_comes_through() {
    let imported = import();
    let mut got = BTreeMap::new();
    for file in &imported.grants {
        for g in &file.grants {
            let users = g.users.as_ref().map(|u| {
                u.users
                    .iter()
                    .map(|x| x.login().to_string())
                    .collect::<BTreeSet<_>>()
            });
            got.insert(
                (
                    g.resource.value.clone(),
                    format!("{}-feedstock", file.project.value),
                ),
                (g.pull_request, users),
            );
            assert_eq!(g.granted.value.0, date(2026, 1, 1));
        }
    }
    assert_eq!(got, expected_access());
    assert_eq!(got.len(), 41);
    assert_eq!(imported.grants.len(), 15);
}

#[test]
fn all_runners_become_resources_in_catalogue_order() {
    let imported = import();
    let names: Vec<&str> = imported.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "cirun-openstack-gpu-large",
            "cirun-openstack-gpu-xlarge",
            "cirun-openstack-gpu-2xlarge",
            "cirun-openstack-gpu-4xlarge",
            "cirun-openstack-cpu-medium",
            "cirun-openstack-cpu-large",
            "cirun-openstack-cpu-xlarge",
            "cirun-openstack-cpu-2xlarge",
            "cirun-openstack-cpu-4xlarge",
            "cirun-azure-windows-2xlarge",
            "cirun-azure-windows-4xlarge",
            "cirun-macos-m4-large",
        ]
    );
    let gpu = &imported.resources[0];
    let labels: Vec<&str> = gpu.labels.iter().map(|l| l.as_str()).collect();
    assert_eq!(
        labels,
        vec!["cirun-openstack-gpu-large"],
        "generic labels are dropped"
    );
    let specs = gpu.specs.as_ref().unwrap();
    assert_eq!(
        (specs.cpu, specs.memory_gb, specs.disk_gb),
        (Some(4), Some(12), Some(60))
    );
    assert_eq!(specs.gpu.as_deref(), Some("1x V100"));
    let win = &imported.resources[10];
    assert_eq!(win.specs.as_ref().unwrap().cpu, Some(16));
}

#[test]
fn users_from_json_means_terms_of_service_and_explicit_lists_stay() {
    let imported = import();
    let tos = |name: &str| {
        imported
            .resources
            .iter()
            .find(|r| r.name.as_str() == name)
            .unwrap()
            .users
            .require_tos
    };
    assert!(tos("cirun-openstack-gpu-large"));
    assert!(tos("cirun-openstack-cpu-medium"));
    assert!(!tos("cirun-azure-windows-2xlarge"));
    assert!(!tos("cirun-macos-m4-large"));
    let temporal = imported
        .grants
        .iter()
        .find(|g| g.project.as_str() == "temporalio-cli")
        .unwrap();
    let users: Vec<&str> = temporal.grants[0]
        .users
        .as_ref()
        .unwrap()
        .users
        .iter()
        .map(|u| u.login())
        .collect();
    assert_eq!(users, vec!["wolfv"]);
}

#[test]
fn the_real_defects_are_repaired_and_reported() {
    let imported = import();
    let codes: Vec<(&str, u32)> = imported
        .warnings
        .iter()
        .filter(|w| w.code != "no-expiry")
        .map(|w| (w.code, w.span.line))
        .collect();
    assert_eq!(
        codes,
        vec![("merged-entry", 222), ("undefined-runner", 219)]
    );
    let macos = imported
        .resources
        .iter()
        .find(|r| r.name.as_str() == "cirun-macos-m4-large")
        .unwrap();
    assert_eq!(macos.labels[0].as_str(), "cirun-macos-m4-large");
    // Both entries' policies survive the merge.
    let holders: BTreeSet<&str> = imported
        .grants
        .iter()
        .filter(|f| {
            f.grants
                .iter()
                .any(|g| g.resource.as_str() == "cirun-macos-m4-large")
        })
        .map(|f| f.project.as_str())
        .collect();
    assert_eq!(holders, BTreeSet::from(["temporalio-cli", "tensorflow"]));
}

#[test]
fn the_imported_repository_passes_check() {
    let imported = import();
    let mut files = vec![(
        "gatehouse.yml".to_string(),
        "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n".to_string(),
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
    let diags = run_all(&Repo::from_sources(files), date(2026, 11, 28)).sorted();
    // Cirun's `users:` lists name people by login; the ledger needs their account ids, which
    // the policy does not carry: each such login is reported, and nothing else.
    let unresolved: BTreeSet<String> = diags
        .iter()
        .filter(|d| d.code == "unresolved-user")
        .map(|d| d.message.split('`').nth(1).unwrap_or_default().to_string())
        .collect();
    let listed: BTreeSet<String> = imported
        .grants
        .iter()
        .flat_map(|g| g.grants.iter())
        .filter_map(|g| g.users.as_ref())
        .flat_map(|u| u.users.iter().map(|x| x.login().to_string()))
        .collect();
    assert_eq!(unresolved, listed);
    let others: Vec<_> = diags
        .iter()
        .filter(|d| d.code != "unresolved-user")
        .collect();
    assert!(others.is_empty(), "{others:#?}");
}

#[test]
fn a_malformed_access_file_is_an_error_with_its_place() {
    let err = cirun::parse(
        ".access.yml",
        b"version: 1\npolicies:\n  - id: x\n    repo: y\n    rolez: [admin]\n",
        ".cirun.global.yml",
        GLOBAL.as_bytes(),
    )
    .unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!((err[0].file.as_str(), err[0].span.line), (".access.yml", 5));
}

/// Cirun's policies never end, so every imported grant is reported as having no `expires`,
/// at the policy that gives it; and the terms-of-service list the policies read is kept.
#[test]
fn every_grant_without_an_end_is_reported_and_the_users_list_is_kept() {
    let imported = import();
    let no_expiry: Vec<&gatehouse_core::Diagnostic> = imported
        .warnings
        .iter()
        .filter(|w| w.code == "no-expiry")
        .collect();
    let grants: usize = imported.grants.iter().map(|g| g.grants.len()).sum();
    assert_eq!(no_expiry.len(), grants);
    assert!(no_expiry.iter().all(|w| w.span.line > 0));
    assert!(
        no_expiry.iter().any(|w| w
            .message
            .contains("`temporalio-cli` holds `cirun-macos-m4-large`")),
        "{no_expiry:?}"
    );
    assert_eq!(
        imported.users_from_json.as_deref(),
        Some(
            "https://raw.githubusercontent.com/Quansight/open-gpu-server/main/access/conda-forge-users.json"
        )
    );
}

/// A resource takes the roles its policies allow when they all agree.
#[test]
fn roles_come_from_the_policies() {
    let access = "version: 1\npolicies:\n  - id: p\n    repo: a-feedstock\n    roles: [admin]\n    pull_request: false\naccess_control:\n  - resource: r\n    policies: [p]\n";
    let global = "runners:\n  - name: r\n    labels: [r]\n";
    let (a, g) = cirun::parse("a", access.as_bytes(), "g", global.as_bytes()).unwrap();
    let imported = cirun::import(
        &a,
        "a",
        &g,
        "g",
        &ImportOptions {
            provider: "cirun",
            repo_suffix: "-feedstock",
            granted: date(2026, 1, 1),
        },
    );
    let roles: Vec<gatehouse_core::model::Role> = imported.resources[0]
        .users
        .roles
        .iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(roles, [gatehouse_core::model::Role::Admin]);
}

/// A policy that lets in teams keeps them on its grant's `users` (with the people it names,
/// or none), and the import says, at the policy, how the guard judges the teams' members.
#[test]
fn a_policy_with_teams_keeps_them_on_its_grant() {
    let access = "version: 1\npolicies:\n  - id: p\n    repo: a-feedstock\n    teams: [core, gpu-team]\n    pull_request: false\n  - id: q\n    repo: b-feedstock\n    users: [wolfv]\n    teams: [core]\n    pull_request: false\n  - id: o\n    repo: c-feedstock\n    pull_request: false\n    users_from_json: https://example.org/u.json\naccess_control:\n  - resource: r\n    policies: [p, q, o]\n";
    let global = "runners:\n  - name: r\n    labels: [r]\n";
    let (a, g) = cirun::parse("a", access.as_bytes(), "g", global.as_bytes()).unwrap();
    let imported = cirun::import(
        &a,
        "a",
        &g,
        "g",
        &ImportOptions {
            provider: "cirun",
            repo_suffix: "-feedstock",
            granted: date(2026, 1, 1),
        },
    );
    let users = |project: &str| {
        let file = imported
            .grants
            .iter()
            .find(|f| f.project.as_str() == project)
            .unwrap();
        file.grants[0].users.as_ref().map(|u| {
            (
                u.users
                    .iter()
                    .map(|x| x.value.login().to_string())
                    .collect::<Vec<_>>(),
                u.teams.iter().map(|t| t.value.clone()).collect::<Vec<_>>(),
            )
        })
    };
    assert_eq!(
        users("a"),
        Some((vec![], vec!["core".to_string(), "gpu-team".to_string()]))
    );
    assert_eq!(
        users("b"),
        Some((vec!["wolfv".to_string()], vec!["core".to_string()]))
    );
    assert_eq!(users("c"), None);
    let teams: Vec<_> = imported
        .warnings
        .iter()
        .filter(|w| w.code == "teams")
        .map(|w| (w.span.line, w.message.clone()))
        .collect();
    assert_eq!(teams.len(), 2, "{teams:?}");
    assert_eq!(teams[0].0, 18);
    assert!(
        teams[0].1.contains("core, gpu-team")
            && teams[0].1.contains("lets in their members")
            && teams[0].1.contains("facts-unavailable"),
        "{teams:?}"
    );
}
