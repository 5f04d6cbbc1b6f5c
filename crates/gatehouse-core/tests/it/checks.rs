//! One test per check rule: a valid repository with one planted problem must produce exactly
//! the expected finding, at the expected place.

use gatehouse_core::check::run_all;
use gatehouse_core::{Diagnostic, Repo, Severity};
use jiff::civil::{Date, date};

const TODAY: Date = date(2026, 11, 28);

const SETTINGS: &str = "\
org: conda-forge
repo_suffix: \"-feedstock\"
reviewers: { teams: [core], min_approvals: 1 }
providers:
  cirun: { kind: cirun, access_repo: .cirun }
  namespace: { kind: github-app, installation_id: 1 }
";

const GPU: &str = "\
name: gpu-large
provider: cirun
labels: [cirun-openstack-gpu-large]
max_duration: 1y
users: { roles: [admin, maintain, write], require_tos: true }
";

const CPU: &str = "\
name: cpu-large
provider: cirun
labels: [cirun-openstack-cpu-large]
";

const GRANT: &str = "\
project: pytorch-cpu
grants:
  - resource: gpu-large
    pull_request: true
    granted: 2026-03-01
    expires: 2027-03-01
    approved_by: [jaimergp]
";

const TOS: &str = "\
- { github: jaimergp, id: 2559438, accepted: 2023-11-07 }
- { github: wolfv, id: 885054 }
";

fn base() -> Vec<(String, String)> {
    [
        ("gatehouse.yml", SETTINGS),
        ("resources/gpu-large.yml", GPU),
        ("resources/cpu-large.yml", CPU),
        ("grants/pytorch-cpu.yml", GRANT),
        ("people/tos.yml", TOS),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_string(), c.to_string()))
    .collect()
}

/// Runs every check on the base repository with `changes` applied (a file set to `None` is
/// removed).
fn check_with(changes: &[(&str, Option<&str>)]) -> Vec<Diagnostic> {
    let mut files = base();
    for (path, contents) in changes {
        files.retain(|(p, _)| p != path);
        if let Some(c) = contents {
            files.push((path.to_string(), c.to_string()));
        }
    }
    run_all(&Repo::from_sources(files), TODAY).sorted()
}

/// Asserts exactly one finding, with this code, severity, file and line.
#[track_caller]
fn only(diags: &[Diagnostic], code: &str, severity: Severity, file: &str, line: u32) -> Diagnostic {
    assert_eq!(diags.len(), 1, "expected one finding, got {diags:#?}");
    let d = &diags[0];
    assert_eq!(
        (d.code, d.severity, d.file.as_str(), d.span.line),
        (code, severity, file, line),
        "{d:#?}"
    );
    assert!(d.help.is_some(), "every finding says what to do: {d:#?}");
    d.clone()
}

#[test]
fn the_base_repository_is_clean() {
    assert_eq!(check_with(&[]), vec![]);
}

#[test]
fn schema_errors_point_at_line_and_column() {
    let d = check_with(&[(
        "grants/pytorch-cpu.yml",
        Some(
            "project: pytorch-cpu\ngrants:\n  - resource: gpu-large\n    granted: 2026-03-01\n    expire: 2027-03-01\n",
        ),
    )]);
    let d = only(&d, "schema", Severity::Error, "grants/pytorch-cpu.yml", 5);
    assert_eq!(d.span.column, 5);
    assert!(
        d.message.contains("unknown field `expire`"),
        "{}",
        d.message
    );
}

#[test]
fn missing_settings_is_an_error() {
    let d = check_with(&[("gatehouse.yml", None)]);
    // Providers cannot be checked without settings, so only this one is reported.
    only(&d, "no-settings", Severity::Error, "gatehouse.yml", 0);
}

#[test]
fn providers_need_their_kinds_fields() {
    let d = check_with(&[(
        "gatehouse.yml",
        Some(
            "org: conda-forge\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n  pool: { kind: runner-group }\n",
        ),
    )]);
    // Refused when the file is read (the kinds' fields are `ProviderSettings`' own).
    let d = only(&d, "schema", Severity::Error, "gatehouse.yml", 5);
    assert_eq!(d.message, "missing field `group`");
}

#[test]
fn reviewers_must_be_able_to_approve() {
    let d = check_with(&[(
        "gatehouse.yml",
        Some(
            "org: conda-forge\nreviewers: { teams: [core], min_approvals: 0 }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n",
        ),
    )]);
    only(&d, "reviewers", Severity::Error, "gatehouse.yml", 2);
}

#[test]
fn grant_project_must_match_its_file_name() {
    let d = check_with(&[
        ("grants/pytorch-cpu.yml", None),
        ("grants/pytorch.yml", Some(GRANT)),
    ]);
    only(&d, "project-name", Severity::Error, "grants/pytorch.yml", 1);
}

/// The file name must spell the project exactly as `project:` does: `gatehouse history` and
/// `apply` find a project's file by that name, on file systems that tell case apart.
#[test]
fn a_grant_file_name_differing_from_its_project_in_case_is_a_project_name_error() {
    let d = check_with(&[
        ("grants/pytorch-cpu.yml", None),
        ("grants/PyTorch-CPU.yml", Some(GRANT)),
    ]);
    let d = only(
        &d,
        "project-name",
        Severity::Error,
        "grants/PyTorch-CPU.yml",
        1,
    );
    assert!(
        d.help.unwrap().contains("grants/pytorch-cpu.yml"),
        "the help names the file to rename it to"
    );
}

/// A second file for the same project in another case would shadow the real grant and
/// survive its revocation; it is refused, at both files so that a pull request that adds
/// either sees it.
#[test]
fn two_grant_files_whose_projects_differ_only_in_case_are_a_duplicate_project() {
    let d = check_with(&[(
        "grants/PyTorch-CPU.yml",
        Some("project: PyTorch-CPU\ngrants:\n  - resource: cpu-large\n    granted: 2026-03-01\n"),
    )]);
    let got: Vec<(&str, Severity, &str, u32)> = d
        .iter()
        .map(|d| (d.code, d.severity, d.file.as_str(), d.span.line))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "duplicate-project",
                Severity::Error,
                "grants/PyTorch-CPU.yml",
                1
            ),
            (
                "duplicate-project",
                Severity::Error,
                "grants/pytorch-cpu.yml",
                1
            ),
        ],
        "{d:#?}"
    );
    assert!(
        d[0].message.contains("grants/pytorch-cpu.yml"),
        "{}",
        d[0].message
    );
    assert!(
        d[1].message.contains("grants/PyTorch-CPU.yml"),
        "{}",
        d[1].message
    );
    assert!(d.iter().all(|d| d.help.is_some()));
}

/// `grants/<project>.yml` and nothing else: `apply` writes that name, so any other file in
/// `grants/` would be a second ledger for the project that revocations never touch.
#[test]
fn anything_in_grants_but_project_yml_is_a_grant_file_name_error() {
    for stray in [
        "grants/pytorch-cpu.yaml",
        "grants/README.md",
        "grants/old/pytorch-cpu.yml",
        "grants/pytorch-cpu.yml.bak",
    ] {
        let d = check_with(&[("grants/pytorch-cpu.yml", None), (stray, Some(GRANT))]);
        let d = only(&d, "grant-file-name", Severity::Error, stray, 0);
        assert!(
            d.help
                .as_deref()
                .is_some_and(|h| h.contains("grants/<project>.yml")),
            "{d:#?}"
        );
    }
    // The `.yaml` file's help names the file to rename it to.
    let d = check_with(&[
        ("grants/pytorch-cpu.yml", None),
        ("grants/pytorch-cpu.yaml", Some(GRANT)),
    ]);
    assert!(
        d[0].help
            .as_deref()
            .unwrap()
            .contains("rename it to `grants/pytorch-cpu.yml`"),
        "{d:#?}"
    );
    // Hidden files are not project files (a project name cannot start with `.`): `.gitkeep`,
    // and the temporary file of an interrupted `apply`, which the next run removes.
    assert_eq!(check_with(&[("grants/.gitkeep", Some(""))]), vec![]);
}

#[test]
fn grant_project_names_cannot_be_paths() {
    let d = check_with(&[(
        "grants/pytorch-cpu.yml",
        Some(&GRANT.replace("project: pytorch-cpu", "project: ../../etc/passwd")),
    )]);
    let d = only(
        &d,
        "project-name",
        Severity::Error,
        "grants/pytorch-cpu.yml",
        1,
    );
    assert!(d.message.contains("../../etc/passwd"));
}

#[test]
fn grant_project_must_not_carry_the_repository_suffix() {
    let d = check_with(&[
        ("grants/pytorch-cpu.yml", None),
        (
            "grants/pytorch-cpu-feedstock.yml",
            Some(&GRANT.replace("pytorch-cpu", "pytorch-cpu-feedstock")),
        ),
    ]);
    only(
        &d,
        "project-suffix",
        Severity::Error,
        "grants/pytorch-cpu-feedstock.yml",
        1,
    );
}

#[test]
fn grants_must_name_existing_resources() {
    let d = check_with(&[(
        "grants/pytorch-cpu.yml",
        Some(&GRANT.replace("resource: gpu-large", "resource: gpu-lrage")),
    )]);
    let d = only(
        &d,
        "unknown-resource",
        Severity::Error,
        "grants/pytorch-cpu.yml",
        3,
    );
    assert_eq!(d.span.column, 15);
    assert!(d.help.unwrap().contains("did you mean `gpu-large`"));
}

#[test]
fn resources_must_name_defined_providers() {
    let d = check_with(&[(
        "resources/cpu-large.yml",
        Some(&CPU.replace("provider: cirun", "provider: cirrun")),
    )]);
    only(
        &d,
        "unknown-provider",
        Severity::Error,
        "resources/cpu-large.yml",
        2,
    );
}

#[test]
fn resource_name_must_match_its_file_name() {
    let d = check_with(&[
        ("resources/cpu-large.yml", None),
        ("resources/cpu.yml", Some(CPU)),
    ]);
    only(&d, "resource-name", Severity::Error, "resources/cpu.yml", 1);
}

#[test]
fn a_resource_defined_twice_is_an_error() {
    let d = check_with(&[(
        "resources/cpu-large.yaml",
        Some("name: cpu-large\nprovider: cirun\nlabels: [cpu-other]\n"),
    )]);
    only(
        &d,
        "duplicate-resource",
        Severity::Error,
        "resources/cpu-large.yml",
        1,
    );
}

#[test]
fn labels_conflict_case_insensitively_and_without_suffix() {
    let d = check_with(&[(
        "resources/cpu-large.yml",
        Some("name: cpu-large\nprovider: cirun\nlabels: [CIRUN-OpenStack-GPU-Large--linux_64]\n"),
    )]);
    let found: Vec<(&str, &str)> = d.iter().map(|d| (d.code, d.file.as_str())).collect();
    assert_eq!(
        found,
        vec![
            ("label-conflict", "resources/cpu-large.yml"),
            ("label-conflict", "resources/gpu-large.yml")
        ]
    );
    assert!(d[0].message.contains("`gpu-large`"));
}

#[test]
fn generic_labels_cannot_select_a_resource() {
    let d = check_with(&[(
        "resources/cpu-large.yml",
        Some(
            "name: cpu-large\nprovider: cirun\nlabels: [cirun-openstack-cpu-large, Self-Hosted]\n",
        ),
    )]);
    let d = only(
        &d,
        "generic-label",
        Severity::Error,
        "resources/cpu-large.yml",
        3,
    );
    assert_eq!(d.span.column, 37);
}

#[test]
fn duplicate_grants_point_at_the_first() {
    let twice = format!(
        "{GRANT}  - resource: gpu-large\n    granted: 2026-04-01\n    expires: 2027-04-01\n"
    );
    let d = check_with(&[("grants/pytorch-cpu.yml", Some(&twice))]);
    let d = only(
        &d,
        "duplicate-grant",
        Severity::Error,
        "grants/pytorch-cpu.yml",
        8,
    );
    assert!(
        d.message.contains("grants/pytorch-cpu.yml:3"),
        "{}",
        d.message
    );
}

#[test]
fn expiry_before_grant_is_an_error() {
    let d = check_with(&[(
        "grants/pytorch-cpu.yml",
        Some(&GRANT.replace("expires: 2027-03-01", "expires: 2026-02-01")),
    )]);
    only(
        &d,
        "expires-before-granted",
        Severity::Error,
        "grants/pytorch-cpu.yml",
        6,
    );
}

#[test]
fn expiry_beyond_max_duration_is_an_error() {
    let d = check_with(&[(
        "grants/pytorch-cpu.yml",
        Some(&GRANT.replace("expires: 2027-03-01", "expires: 2027-03-02")),
    )]);
    let d = only(
        &d,
        "expires-beyond-max",
        Severity::Error,
        "grants/pytorch-cpu.yml",
        6,
    );
    assert!(d.help.unwrap().contains("2027-03-01"));
}

#[test]
fn a_grant_of_a_time_limited_resource_needs_an_expiry() {
    let d = check_with(&[(
        "grants/pytorch-cpu.yml",
        Some(&GRANT.replace("    expires: 2027-03-01\n", "")),
    )]);
    only(
        &d,
        "no-expiry",
        Severity::Error,
        "grants/pytorch-cpu.yml",
        3,
    );
}

#[test]
fn expired_grants_are_a_warning_with_the_date() {
    let d = check_with(&[(
        "grants/pytorch-cpu.yml",
        Some(
            &GRANT
                .replace("granted: 2026-03-01", "granted: 2025-10-01")
                .replace("expires: 2027-03-01", "expires: 2026-10-01"),
        ),
    )]);
    let d = only(
        &d,
        "expired",
        Severity::Warning,
        "grants/pytorch-cpu.yml",
        6,
    );
    assert!(d.message.contains("2026-10-01"));
}

#[test]
fn expiry_on_today_is_not_yet_expired() {
    let d = check_with(&[(
        "grants/pytorch-cpu.yml",
        Some(
            &GRANT
                .replace("granted: 2026-03-01", "granted: 2026-01-01")
                .replace("expires: 2027-03-01", "expires: 2026-11-28"),
        ),
    )]);
    assert_eq!(d, vec![]);
}

#[test]
fn revoking_a_grant_that_does_not_exist_is_an_error() {
    let d = check_with(&[(
        "requests/revoke.yml",
        Some("action: revoke\nprojects: [pytorch]\nresources: [gpu-large]\n"),
    )]);
    let d = only(
        &d,
        "no-such-grant",
        Severity::Error,
        "requests/revoke.yml",
        2,
    );
    assert!(d.message.contains("`pytorch`"));
}

#[test]
fn renewing_a_grant_that_does_not_exist_is_an_error() {
    let d = check_with(&[(
        "requests/renew.yml",
        Some("action: renew\nprojects: [pytorch-cpu]\nresources: [cpu-large]\n"),
    )]);
    only(
        &d,
        "no-such-grant",
        Severity::Error,
        "requests/renew.yml",
        2,
    );
}

#[test]
fn granting_what_is_held_is_a_warning() {
    let d = check_with(&[(
        "requests/again.yml",
        Some("action: grant\nprojects: [pytorch-cpu]\nresources: [gpu-large]\n"),
    )]);
    only(
        &d,
        "already-granted",
        Severity::Warning,
        "requests/again.yml",
        2,
    );
}

/// A request names the project as its maintainers spell it; the ledger's file decides nothing
/// about case.
#[test]
fn a_request_for_a_project_in_another_case_is_the_same_project() {
    let d = check_with(&[(
        "requests/again.yml",
        Some("action: grant\nprojects: [PyTorch-CPU]\nresources: [gpu-large]\n"),
    )]);
    only(
        &d,
        "already-granted",
        Severity::Warning,
        "requests/again.yml",
        2,
    );
    for action in ["revoke", "renew"] {
        let d = check_with(&[(
            "requests/r.yml",
            Some(&format!(
                "action: {action}\nprojects: [PyTorch-CPU]\nresources: [gpu-large]\n"
            )),
        )]);
        assert_eq!(d, vec![], "{action} finds the grant of pytorch-cpu");
    }
}

#[test]
fn a_request_listing_a_project_twice_in_two_cases_is_a_warning() {
    let d = check_with(&[(
        "requests/two.yml",
        Some("action: grant\nprojects: [tinygrad, TinyGrad]\nresources: [gpu-large]\n"),
    )]);
    let d = only(
        &d,
        "duplicate-project",
        Severity::Warning,
        "requests/two.yml",
        2,
    );
    assert_eq!(d.span.column, 22);
}

#[test]
fn requests_must_name_existing_resources() {
    let d = check_with(&[(
        "requests/new.yml",
        Some("action: grant\nprojects: [tinygrad]\nresources: [gpu-huge]\n"),
    )]);
    only(
        &d,
        "unknown-resource",
        Severity::Error,
        "requests/new.yml",
        3,
    );
}

#[test]
fn request_expiry_respects_max_duration() {
    let d = check_with(&[(
        "requests/new.yml",
        Some("action: grant\nprojects: [tinygrad]\nresources: [gpu-large]\nexpires: 2028-01-01\n"),
    )]);
    only(
        &d,
        "expires-beyond-max",
        Severity::Error,
        "requests/new.yml",
        4,
    );
    let d = check_with(&[(
        "requests/new.yml",
        Some("action: grant\nprojects: [tinygrad]\nresources: [gpu-large]\nexpires: 2026-11-01\n"),
    )]);
    only(
        &d,
        "expires-in-past",
        Severity::Error,
        "requests/new.yml",
        4,
    );
}

#[test]
fn unknown_actions_are_refused() {
    let d = check_with(&[(
        "requests/new.yml",
        Some("action: give\nprojects: [tinygrad]\nresources: [gpu-large]\n"),
    )]);
    only(
        &d,
        "invalid-request",
        Severity::Error,
        "requests/new.yml",
        1,
    );
}

#[test]
fn admin_requests_cirun_needs_resources() {
    let d = check_with(&[(
        "requests/tinygrad.yml",
        Some("action: cirun\nfeedstocks: [tinygrad]\npull_request: true\n"),
    )]);
    only(
        &d,
        "admin-requests",
        Severity::Error,
        "requests/tinygrad.yml",
        1,
    );
}

#[test]
fn admin_requests_travis_cannot_revoke() {
    let mut travis = base();
    travis.push((
        "resources/travis.yml".into(),
        "name: travis\nprovider: namespace\nlabels: [travis-ci]\n".into(),
    ));
    travis.push((
        "grants/conda-smithy.yml".into(),
        "project: conda-smithy\ngrants:\n  - resource: travis\n    granted: 2026-01-01\n".into(),
    ));
    travis.push((
        "requests/travis.yml".into(),
        "action: travis\nfeedstocks:\n- conda-smithy\nrevoke: true\n".into(),
    ));
    let d = run_all(&Repo::from_sources(travis), TODAY).sorted();
    only(
        &d,
        "admin-requests",
        Severity::Error,
        "requests/travis.yml",
        4,
    );
}

#[test]
fn admin_requests_feedstocks_are_written_without_suffix() {
    let d = check_with(&[(
        "requests/tinygrad.yml",
        Some("action: cirun\nfeedstocks: [tinygrad-feedstock]\nresources: [gpu-large]\n"),
    )]);
    let d = only(
        &d,
        "admin-requests",
        Severity::Error,
        "requests/tinygrad.yml",
        2,
    );
    assert!(d.help.unwrap().contains("`tinygrad`"));
}

#[test]
fn admin_requests_and_native_forms_normalise_alike() {
    let repo = Repo::from_sources([
        (
            "requests/a.yml",
            "action: cirun\nfeedstocks: [tinygrad]\nresources: [gpu-large]\npull_request: true\nrevoke: false\nsend_pr: true\n",
        ),
        (
            "requests/b.yml",
            "action: grant\nprojects: [tinygrad]\nresources: [gpu-large]\npull_request: true\nsend_pr: true\n",
        ),
        (
            "requests/c.yml",
            "action: namespace\nfeedstocks: [pytorch-cpu]\nrevoke: true\n",
        ),
    ]);
    let r: Vec<_> = repo
        .requests
        .iter()
        .map(|e| e.value.request.clone().unwrap())
        .collect();
    let (a, b) = (&r[0], &r[1]);
    assert_eq!(a.action.value, b.action.value);
    assert_eq!(a.projects, b.projects);
    assert_eq!(a.resources, b.resources);
    assert_eq!((a.pull_request, a.send_pr), (b.pull_request, b.send_pr));
    assert_eq!(
        r[2].action.value,
        gatehouse_core::model::RequestAction::Revoke
    );
    assert_eq!(r[2].resources[0].value, "namespace");
}

#[test]
fn mixing_the_two_request_forms_is_refused() {
    let d = check_with(&[(
        "requests/mixed.yml",
        Some("action: grant\nfeedstocks: [tinygrad]\nresources: [gpu-large]\n"),
    )]);
    only(
        &d,
        "invalid-request",
        Severity::Error,
        "requests/mixed.yml",
        2,
    );
}

#[test]
fn tos_logins_are_unique_case_insensitively() {
    let d = check_with(&[(
        "people/tos.yml",
        Some(&format!("{TOS}- {{ github: JaimeRGP, id: 12 }}\n")),
    )]);
    let d = only(
        &d,
        "tos-duplicate-login",
        Severity::Error,
        "people/tos.yml",
        3,
    );
    assert!(d.message.contains("line 1"));
}

#[test]
fn tos_ids_are_unique_and_positive() {
    let d = check_with(&[(
        "people/tos.yml",
        Some(&format!(
            "{TOS}- {{ github: someone, id: 885054 }}\n- {{ github: nobody, id: -4 }}\n"
        )),
    )]);
    let codes: Vec<(&str, u32)> = d.iter().map(|d| (d.code, d.span.line)).collect();
    assert_eq!(codes, vec![("tos-duplicate-id", 3), ("tos-id", 4)]);
}

#[test]
fn every_problem_is_reported_at_once_sorted_by_file_and_line() {
    let d = check_with(&[
        (
            "grants/pytorch-cpu.yml",
            Some(&GRANT.replace("gpu-large", "nope")),
        ),
        (
            "resources/cpu-large.yml",
            Some(&CPU.replace("cirun\n", "elsewhere\n")),
        ),
        (
            "requests/x.yml",
            Some("action: revoke\nprojects: [tinygrad]\nresources: [gpu-large]\n"),
        ),
        ("people/tos.yml", Some("- { github: a, id: 0 }\n")),
    ]);
    let got: Vec<(&str, u32, &str)> = d
        .iter()
        .map(|d| (d.file.as_str(), d.span.line, d.code))
        .collect();
    assert_eq!(
        got,
        vec![
            ("grants/pytorch-cpu.yml", 3, "unknown-resource"),
            ("people/tos.yml", 1, "tos-id"),
            ("requests/x.yml", 2, "no-such-grant"),
            ("resources/cpu-large.yml", 2, "unknown-provider"),
        ]
    );
}

/// `check_with` plus Namespace's resource by pattern.
const NAMESPACE: &str = "name: namespace\nprovider: namespace\nlabels: ['namespace-profile-*']\n";

fn codes(d: &[Diagnostic]) -> Vec<(&'static str, Severity, &str, u32)> {
    d.iter()
        .map(|d| (d.code, d.severity, d.file.as_str(), d.span.line))
        .collect()
}

#[test]
fn a_pattern_and_an_exact_label_under_it_are_fine() {
    let d = check_with(&[
        ("resources/namespace.yml", Some(NAMESPACE)),
        (
            "resources/namespace-gpu.yml",
            Some("name: namespace-gpu\nprovider: namespace\nlabels: [namespace-profile-gpu]\n"),
        ),
    ]);
    assert_eq!(d, vec![]);
}

#[test]
fn patterns_of_two_resources_may_not_overlap() {
    let d = check_with(&[
        ("resources/namespace.yml", Some(NAMESPACE)),
        (
            "resources/namespace-gpu.yml",
            Some(
                "name: namespace-gpu\nprovider: namespace\nlabels:\n  - namespace-gpu\n  - Namespace-Profile-GPU-*\n",
            ),
        ),
    ]);
    assert_eq!(
        codes(&d),
        [
            (
                "pattern-overlap",
                Severity::Error,
                "resources/namespace-gpu.yml",
                5
            ),
            (
                "pattern-overlap",
                Severity::Error,
                "resources/namespace.yml",
                3
            ),
        ]
    );
    assert!(d.iter().all(|d| d.help.is_some()));
    assert!(
        d[0].message
            .contains("`namespace-profile-*` of `namespace`"),
        "{}",
        d[0].message
    );
    // Within one resource the narrower pattern is only redundant.
    let d = check_with(&[(
        "resources/namespace.yml",
        Some(
            "name: namespace\nprovider: namespace\nlabels: ['namespace-profile-*', 'namespace-profile-gpu-*']\n",
        ),
    )]);
    only(
        &d,
        "duplicate-label",
        Severity::Warning,
        "resources/namespace.yml",
        3,
    );
}

#[test]
fn a_star_must_end_a_pattern() {
    for (label, says) in [
        ("'*'", "`*` alone"),
        ("'namespace-*-profile'", "not its last character"),
        ("'namespace-**'", "more than one `*`"),
    ] {
        let d = check_with(&[(
            "resources/namespace.yml",
            Some(&format!(
                "name: namespace\nprovider: namespace\nlabels: [{label}]\n"
            )),
        )]);
        let d = only(
            &d,
            "label-pattern",
            Severity::Error,
            "resources/namespace.yml",
            3,
        );
        assert!(d.message.contains(says), "{label}: {}", d.message);
    }
}

#[test]
fn labels_of_githubs_hosted_runners_cannot_be_claimed() {
    for label in [
        "ubuntu-latest",
        "Windows-2022",
        "'macos-*'",
        "'mac*'",
        "'u*'",
    ] {
        let d = check_with(&[(
            "resources/cpu-large.yml",
            Some(&format!(
                "name: cpu-large\nprovider: cirun\nlabels: [cirun-openstack-cpu-large, {label}]\n"
            )),
        )]);
        let d = only(
            &d,
            "hosted-label",
            Severity::Error,
            "resources/cpu-large.yml",
            3,
        );
        assert!(
            d.message.contains("GitHub's own hosted runners"),
            "{}",
            d.message
        );
    }
    // Not a hosted runner's label, though it names one.
    let d = check_with(&[(
        "resources/cpu-large.yml",
        Some(
            "name: cpu-large\nprovider: cirun\nlabels: [cirun-azure-windows-2xlarge, 'blacksmith-*']\n",
        ),
    )]);
    assert_eq!(d, vec![]);
}

#[test]
fn self_hosted_alone_is_no_resource_of_its_own() {
    let d = check_with(&[(
        "resources/cpu-large.yml",
        Some("name: cpu-large\nprovider: cirun\nlabels: [self-hosted]\n"),
    )]);
    let d = only(
        &d,
        "hosted-label",
        Severity::Error,
        "resources/cpu-large.yml",
        3,
    );
    assert!(
        d.message.contains("every self-hosted runner"),
        "{}",
        d.message
    );
}

#[test]
fn namespace_options_do_not_make_a_label_new() {
    let d = check_with(&[
        (
            "resources/namespace.yml",
            Some("name: namespace\nprovider: namespace\nlabels: [namespace-profile-default]\n"),
        ),
        (
            "resources/namespace-big.yml",
            Some(
                "name: namespace-big\nprovider: namespace\nlabels: ['namespace-profile-default;container.privileged=true']\n",
            ),
        ),
    ]);
    assert_eq!(
        codes(&d),
        [
            (
                "label-conflict",
                Severity::Error,
                "resources/namespace-big.yml",
                3
            ),
            (
                "label-conflict",
                Severity::Error,
                "resources/namespace.yml",
                3
            ),
        ]
    );
}

#[test]
fn a_runner_group_resource_needs_no_labels() {
    let settings = format!("{SETTINGS}  pool: {{ kind: runner-group, group: gpu }}\n");
    let d = check_with(&[
        ("gatehouse.yml", Some(&settings)),
        ("resources/pool.yml", Some("name: pool\nprovider: pool\n")),
    ]);
    assert_eq!(d, vec![]);
    let d = check_with(&[(
        "resources/pool.yml",
        Some("name: pool\nprovider: namespace\n"),
    )]);
    only(&d, "no-labels", Severity::Warning, "resources/pool.yml", 1);
}

#[test]
fn a_user_list_names_people_by_account_id() {
    // A login people/tos.yml resolves, and one written with its id: both fine.
    let listed = "project: pytorch-cpu\ngrants:\n  - resource: gpu-large\n    granted: 2026-03-01\n    expires: 2027-03-01\n    users: { users: [Wolfv, { github: isuruf, id: 5234427 }] }\n";
    assert!(check_with(&[("grants/pytorch-cpu.yml", Some(listed))]).is_empty());
    // A login nothing resolves matches nobody: an error at the entry, saying what to write.
    let unknown = listed.replace("Wolfv", "baszalmstra");
    let diags = check_with(&[("grants/pytorch-cpu.yml", Some(&unknown))]);
    let d = only(
        &diags,
        "unresolved-user",
        Severity::Error,
        "grants/pytorch-cpu.yml",
        6,
    );
    assert!(d.message.contains("baszalmstra"), "{}", d.message);
    assert!(
        d.help
            .as_deref()
            .unwrap_or_default()
            .contains("{ github: baszalmstra, id:"),
        "{:?}",
        d.help
    );
    // The same in a request.
    let request = "action: grant\nprojects: [numpy]\nresources: [gpu-large]\nusers: [nobody-knows]\nreason: GPU tests\n";
    let diags = check_with(&[("requests/numpy.yml", Some(request))]);
    only(
        &diags,
        "unresolved-user",
        Severity::Error,
        "requests/numpy.yml",
        4,
    );
    // A written id that people/tos.yml gives another login's owner: someone is wrong.
    let mismatch = listed.replace("isuruf, id: 5234427", "wolfv, id: 4242");
    let diags = check_with(&[("grants/pytorch-cpu.yml", Some(&mismatch))]);
    only(
        &diags,
        "user-id-mismatch",
        Severity::Warning,
        "grants/pytorch-cpu.yml",
        6,
    );
}

#[test]
fn a_concurrency_cap_of_zero_is_an_error() {
    let cpu = format!("{CPU}quota: {{ concurrency: 0 }}\n");
    let d = only(
        &check_with(&[("resources/cpu-large.yml", Some(&cpu))]),
        "concurrency-cap",
        Severity::Error,
        "resources/cpu-large.yml",
        4,
    );
    assert!(
        d.message.contains("`concurrency: 0` lets no job run"),
        "{d:?}"
    );

    let settings = SETTINGS.replace(
        "access_repo: .cirun }",
        "access_repo: .cirun, max_concurrency: 0 }",
    );
    only(
        &check_with(&[("gatehouse.yml", Some(&settings))]),
        "concurrency-cap",
        Severity::Error,
        "gatehouse.yml",
        5,
    );
}

#[test]
fn a_project_cap_above_its_resources_cap_is_a_warning() {
    let cpu = format!("{CPU}quota: {{ concurrency: 2, project_concurrency: 3 }}\n");
    let d = only(
        &check_with(&[("resources/cpu-large.yml", Some(&cpu))]),
        "concurrency-cap",
        Severity::Warning,
        "resources/cpu-large.yml",
        4,
    );
    assert!(d.message.contains("never limits anything"), "{d:?}");
}

#[test]
fn on_exceed_without_a_cap_is_a_warning_unless_its_provider_has_one() {
    let cpu = format!("{CPU}quota: {{ on_exceed: record }}\n");
    only(
        &check_with(&[("resources/cpu-large.yml", Some(&cpu))]),
        "concurrency-cap",
        Severity::Warning,
        "resources/cpu-large.yml",
        4,
    );
    let settings = SETTINGS.replace(
        "access_repo: .cirun }",
        "access_repo: .cirun, max_concurrency: 8 }",
    );
    let diags = check_with(&[
        ("resources/cpu-large.yml", Some(&cpu)),
        ("gatehouse.yml", Some(&settings)),
    ]);
    assert!(diags.is_empty(), "{diags:#?}");
}

#[test]
fn a_pools_concurrency_wait_must_be_a_duration() {
    let settings = format!(
        "{SETTINGS}gate:\n  pools:\n    gpu-pool: {{ resource: gpu-large, concurrency_wait: ten minutes }}\n"
    );
    let d = only(
        &check_with(&[("gatehouse.yml", Some(&settings))]),
        "gate-pool",
        Severity::Error,
        "gatehouse.yml",
        9,
    );
    assert!(d.message.contains("concurrency_wait"), "{d:?}");
    for good in ["90s", "10m", "1h"] {
        let settings = format!(
            "{SETTINGS}gate:\n  pools:\n    gpu-pool: {{ resource: gpu-large, concurrency_wait: {good} }}\n"
        );
        let diags = check_with(&[("gatehouse.yml", Some(&settings))]);
        assert!(diags.is_empty(), "{good}: {diags:#?}");
    }
    let settings = format!(
        "{SETTINGS}gate:\n  pools:\n    gpu-pool: {{ resource: gpu-large, concurrency_wait: 25h }}\n"
    );
    let d = only(
        &check_with(&[("gatehouse.yml", Some(&settings))]),
        "gate-pool",
        Severity::Error,
        "gatehouse.yml",
        9,
    );
    assert!(d.message.contains("longer than 24 hours"), "{d:?}");
}

#[test]
fn bots_are_named_by_account_id() {
    let named = format!("{SETTINGS}bots:\n  - {{ github: regro-cf-autotick-bot, id: 36490558 }}\n");
    assert_eq!(check_with(&[("gatehouse.yml", Some(&named))]), vec![]);
    let login_only = format!(
        "{SETTINGS}bots:\n  - {{ github: regro-cf-autotick-bot, id: 36490558 }}\n  - some-bot\n"
    );
    let d = only(
        &check_with(&[("gatehouse.yml", Some(&login_only))]),
        "settings",
        Severity::Error,
        "gatehouse.yml",
        9,
    );
    assert!(d.message.contains("bot `some-bot`"), "{d:#?}");
}

#[test]
fn run_approval_settings_that_approve_nothing_are_refused() {
    for (settings, says) in [
        ("run_approvals: { hours: 0 }", "never be in force"),
        ("run_approvals: { phrase: \" \" }", "is empty"),
        ("run_approvals: { audit: { days: 0 } }", "from 1 to 3650"),
        ("run_approvals: { audit: { factor: 0 } }", "every approver"),
        (
            "run_approvals: { audit: { many_pulls: 0 } }",
            "every approver",
        ),
    ] {
        let text = format!("{SETTINGS}{settings}\n");
        let d = only(
            &check_with(&[("gatehouse.yml", Some(&text))]),
            "settings",
            Severity::Error,
            "gatehouse.yml",
            1,
        );
        assert!(d.message.contains(says), "{d:#?}");
    }
    let fine = format!(
        "{SETTINGS}run_approvals: {{ phrase: \"@gatehouse ok\", runs: 1, hours: 2, audit: {{ days: 30, many_pulls: 3, factor: 2, min_minutes: 10, min_jobs: 3 }} }}\n"
    );
    assert_eq!(check_with(&[("gatehouse.yml", Some(&fine))]), vec![]);
}

#[test]
fn outlier_settings_that_flag_everyone_or_read_years_are_refused() {
    for (settings, says) in [
        ("guard: { outliers: { factor: 0 } }", "is 0"),
        ("guard: { outliers: { weeks: 0 } }", "from 1 to 52"),
        ("guard: { outliers: { weeks: 4000000000 } }", "from 1 to 52"),
    ] {
        let text = format!("{SETTINGS}{settings}\n");
        let d = only(
            &check_with(&[("gatehouse.yml", Some(&text))]),
            "settings",
            Severity::Error,
            "gatehouse.yml",
            1,
        );
        assert!(d.message.contains(says), "{d:#?}");
    }
    let fine = format!("{SETTINGS}guard: {{ outliers: {{ factor: 2, weeks: 52 }} }}\n");
    assert_eq!(check_with(&[("gatehouse.yml", Some(&fine))]), vec![]);
}

#[test]
fn a_job_time_limit_must_let_a_job_run_and_stay_below_github_s_own() {
    let cpu = format!("{CPU}max_job_minutes: 0\n");
    let d = only(
        &check_with(&[("resources/cpu-large.yml", Some(&cpu))]),
        "job-time-limit",
        Severity::Error,
        "resources/cpu-large.yml",
        4,
    );
    assert!(d.message.contains("lets no job run"), "{d:?}");
    let cpu = format!("{CPU}max_job_minutes: 10000\n");
    let d = only(
        &check_with(&[("resources/cpu-large.yml", Some(&cpu))]),
        "job-time-limit",
        Severity::Warning,
        "resources/cpu-large.yml",
        4,
    );
    assert!(d.message.contains("5 days"), "{d:?}");
    let cpu = format!("{CPU}max_job_minutes: 360\n");
    let diags = check_with(&[("resources/cpu-large.yml", Some(&cpu))]);
    assert!(diags.is_empty(), "{diags:#?}");
    // A word where minutes belong is named at its place.
    let cpu = format!("{CPU}max_job_minutes: six hours\n");
    let diags = check_with(&[("resources/cpu-large.yml", Some(&cpu))]);
    assert!(
        diags
            .iter()
            .any(|d| d.file == "resources/cpu-large.yml" && d.span.line == 4),
        "{diags:#?}"
    );
}

#[test]
fn a_price_must_read_and_should_have_a_ceiling() {
    let cpu = format!("{CPU}cost: {{ per_minute: 0.01, per_hour: 0.6, currency: USD }}\n");
    let d = only(
        &check_with(&[("resources/cpu-large.yml", Some(&cpu))]),
        "cost",
        Severity::Error,
        "resources/cpu-large.yml",
        4,
    );
    assert!(
        d.message.contains("both `per_minute` and `per_hour`"),
        "{d:?}"
    );
    let cpu = format!("{CPU}cost: {{ per_minute: 0.01, currency: usd }}\n");
    let d = only(
        &check_with(&[("resources/cpu-large.yml", Some(&cpu))]),
        "cost",
        Severity::Error,
        "resources/cpu-large.yml",
        4,
    );
    assert!(d.message.contains("ISO 4217"), "{d:?}");
    // A price with no cap anywhere: no ceiling.
    let cpu = format!("{CPU}cost: {{ per_minute: 0.01, currency: USD }}\n");
    let d = only(
        &check_with(&[("resources/cpu-large.yml", Some(&cpu))]),
        "cost-ceiling",
        Severity::Warning,
        "resources/cpu-large.yml",
        4,
    );
    assert!(d.message.contains("no ceiling"), "{d:?}");
    // A cap gives it one.
    let cpu =
        format!("{CPU}cost: {{ per_minute: 0.01, currency: USD }}\nquota: {{ concurrency: 2 }}\n");
    let diags = check_with(&[("resources/cpu-large.yml", Some(&cpu))]);
    assert!(diags.is_empty(), "{diags:#?}");
}

/// A valid pool of money for the priced `cpu-large`, in force on TODAY.
fn priced_cpu() -> String {
    format!("{CPU}cost: {{ per_hour: 0.6, currency: USD }}\nquota: {{ concurrency: 2 }}\n")
}

const POOL: &str = "\
sponsor: Example Cloud
amount: 500
currency: USD
start: 2026-11-01
end: 2027-10-31
resources: [cpu-large]
";

#[test]
fn a_pool_funds_resources_that_exist_in_its_own_unit() {
    let cpu = priced_cpu();
    let ok = check_with(&[
        ("resources/cpu-large.yml", Some(&cpu)),
        ("pools/cloud.yml", Some(POOL)),
    ]);
    assert!(ok.is_empty(), "{ok:#?}");
    // A pool of money cannot count the minutes of an unpriced resource.
    only(
        &check_with(&[("pools/cloud.yml", Some(POOL))]),
        "pool-resource",
        Severity::Error,
        "pools/cloud.yml",
        6,
    );
    // ... nor of one priced in another currency; a pool of minutes can.
    let eur = cpu.replace("USD", "EUR");
    let d = only(
        &check_with(&[
            ("resources/cpu-large.yml", Some(&eur)),
            ("pools/cloud.yml", Some(POOL)),
        ]),
        "pool-resource",
        Severity::Error,
        "pools/cloud.yml",
        6,
    );
    assert!(d.message.contains("priced in EUR"), "{d:?}");
    let minutes = POOL.replace("amount: 500\ncurrency: USD\n", "minutes: 6000\n");
    assert!(check_with(&[("pools/cloud.yml", Some(&minutes))]).is_empty());
    // A resource nobody defined.
    let ghost = minutes.replace("[cpu-large]", "[cpu-large, tpu]");
    let d = only(
        &check_with(&[("pools/cloud.yml", Some(&ghost))]),
        "pool-resource",
        Severity::Error,
        "pools/cloud.yml",
        5,
    );
    assert!(d.message.contains("`tpu`"), "{d:?}");
}

#[test]
fn a_pools_credit_dates_and_alerts_must_read() {
    let cpu = priced_cpu();
    let with = |pool: &str| {
        check_with(&[
            ("resources/cpu-large.yml", Some(&cpu)),
            ("pools/cloud.yml", Some(pool)),
        ])
    };
    let both = POOL.replace("currency: USD\n", "currency: USD\nminutes: 10\n");
    only(
        &with(&both),
        "pool-credit",
        Severity::Error,
        "pools/cloud.yml",
        2,
    );
    let lower = POOL.replace("USD", "usd");
    only(
        &with(&lower),
        "pool-credit",
        Severity::Error,
        "pools/cloud.yml",
        3,
    );
    let negative = POOL.replace("amount: 500", "amount: -1");
    only(
        &with(&negative),
        "pool-credit",
        Severity::Error,
        "pools/cloud.yml",
        2,
    );
    let backwards = POOL.replace("end: 2027-10-31", "end: 2026-10-31");
    let d = only(
        &with(&backwards),
        "pool-dates",
        Severity::Error,
        "pools/cloud.yml",
        5,
    );
    assert!(d.message.contains("before it starts"), "{d:?}");
    let over = POOL.replace("end: 2027-10-31", "end: 2026-11-27");
    only(
        &with(&over),
        "pool-dates",
        Severity::Warning,
        "pools/cloud.yml",
        5,
    );
    let alerts = format!("{POOL}alerts: [80, 120]\n");
    only(
        &with(&alerts),
        "pool-alerts",
        Severity::Error,
        "pools/cloud.yml",
        7,
    );
    let unknown = format!("{POOL}budget: 3\n");
    only(
        &with(&unknown),
        "schema",
        Severity::Error,
        "pools/cloud.yml",
        7,
    );
    let stranger = format!("{POOL}projects: [numpy]\n");
    only(
        &with(&stranger),
        "pool-projects",
        Severity::Warning,
        "pools/cloud.yml",
        7,
    );
}

#[test]
fn pools_that_can_pay_for_one_job_say_which_pays_first() {
    let cpu = priced_cpu();
    let second = POOL.replace("Example Cloud", "Another Cloud");
    let diags = check_with(&[
        ("resources/cpu-large.yml", Some(&cpu)),
        ("pools/a.yml", Some(POOL)),
        ("pools/b.yml", Some(&second)),
    ]);
    let d = only(&diags, "pool-order", Severity::Error, "pools/b.yml", 6);
    assert!(
        d.message.contains("`a` and `b` both fund `cpu-large`"),
        "{d:?}"
    );
    // Distinct orders settle it; the same order does not.
    let ordered = |x: u32, y: u32| {
        check_with(&[
            ("resources/cpu-large.yml", Some(&cpu)),
            ("pools/a.yml", Some(&format!("{POOL}order: {x}\n"))),
            ("pools/b.yml", Some(&format!("{second}order: {y}\n"))),
        ])
    };
    assert!(ordered(1, 2).is_empty());
    only(
        &ordered(1, 1),
        "pool-order",
        Severity::Error,
        "pools/b.yml",
        7,
    );
    // Pools for different projects, or different times, never meet.
    let apart = check_with(&[
        ("resources/cpu-large.yml", Some(&cpu)),
        (
            "pools/a.yml",
            Some(&format!("{POOL}projects: [pytorch-cpu]\n")),
        ),
        ("pools/b.yml", Some(&format!("{second}projects: [numpy]\n"))),
    ]);
    assert!(apart.iter().all(|d| d.code != "pool-order"), "{apart:#?}");
}

/// `accept_tos` in a request (both forms): a positive id, agreeing with people/tos.yml, on a
/// request that grants; someone listed already is told the field is not needed.
#[test]
fn a_requests_terms_of_service_acceptance_is_checked() {
    let request = |extra: &str| {
        format!("action: grant\nprojects: [tinygrad]\nresources: [gpu-large]\n{extra}")
    };
    // A newcomer, in the native and the admin-requests form: clean.
    let d = check_with(&[(
        "requests/new.yml",
        Some(&request("accept_tos: { github: newcomer, id: 424242 }\n")),
    )]);
    assert_eq!(d, vec![]);
    let d = check_with(&[(
        "requests/new.yml",
        Some(
            "action: cirun\nfeedstocks: [tinygrad]\nresources: [gpu-large]\naccept_tos:\n  github: newcomer\n  id: 424242\n",
        ),
    )]);
    assert_eq!(d, vec![]);
    let d = check_with(&[(
        "requests/new.yml",
        Some(&request("accept_tos: { github: newcomer, id: -3 }\n")),
    )]);
    only(&d, "request-tos-id", Severity::Error, "requests/new.yml", 4);
    let d = check_with(&[(
        "requests/new.yml",
        Some(
            "action: revoke\nprojects: [pytorch-cpu]\nresources: [gpu-large]\naccept_tos: { github: newcomer, id: 424242 }\n",
        ),
    )]);
    only(
        &d,
        "request-tos-revoke",
        Severity::Error,
        "requests/new.yml",
        4,
    );
    // Someone else's login with the requester's id.
    let d = check_with(&[(
        "requests/new.yml",
        Some(&request("accept_tos: { github: WOLFV, id: 424242 }\n")),
    )]);
    let d = only(
        &d,
        "request-tos-mismatch",
        Severity::Error,
        "requests/new.yml",
        4,
    );
    assert!(d.message.contains("lists `wolfv` with id 885054"), "{d:?}");
    let d = check_with(&[(
        "requests/new.yml",
        Some(&request("accept_tos: { github: wolfv, id: 885054 }\n")),
    )]);
    only(
        &d,
        "request-tos-known",
        Severity::Warning,
        "requests/new.yml",
        4,
    );
    // A typo is an error, never ignored; so is a claim without its id.
    for bad in [
        "accept_tos: { github: newcomer, id: 424242, accepted: true }\n",
        "accept_tos: { github: newcomer }\n",
    ] {
        let d = check_with(&[("requests/new.yml", Some(&request(bad)))]);
        assert!(
            d.iter()
                .any(|d| d.severity == Severity::Error && d.file == "requests/new.yml"),
            "{bad}: {d:#?}"
        );
    }
}
