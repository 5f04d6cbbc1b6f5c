//! `gatehouse check` end to end: the binary on repositories written to temporary folders.

use std::path::Path;
use std::process::{Command, Output};

const SETTINGS: &str = "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n";
const GPU: &str = "name: gpu\nprovider: cirun\nlabels: [cirun-gpu]\nmax_duration: 1y\n";
const GRANT: &str = "project: pytorch-cpu\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    expires: 2027-03-01\n";

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, contents) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
}

fn valid_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("gatehouse.yml", SETTINGS),
            ("resources/gpu.yml", GPU),
            ("grants/pytorch-cpu.yml", GRANT),
        ],
    );
    dir
}

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap()
}

fn check(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["check", "--today", "2026-11-28"];
    args.extend_from_slice(extra);
    let d = dir.to_str().unwrap();
    args.push(d);
    gatehouse(&args)
}

/// A valid repository whose one grant names the resource `gpx`, which does not exist.
fn with_unknown_resource() -> tempfile::TempDir {
    let dir = valid_repo();
    write(
        dir.path(),
        &[(
            "grants/pytorch-cpu.yml",
            &GRANT.replace("resource: gpu", "resource: gpx"),
        )],
    );
    dir
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_clean_repository_exits_zero() {
    let dir = valid_repo();
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("no problems found"));
}

#[test]
fn findings_exit_one_with_file_line_and_a_caret() {
    let dir = with_unknown_resource();
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("error[unknown-resource]: resource `gpx` does not exist"),
        "{text}"
    );
    assert!(text.contains("grants/pytorch-cpu.yml:3:15"), "{text}");
    assert!(text.contains("  - resource: gpx"), "{text}");
    assert!(text.contains("^^^"), "{text}");
    assert!(text.contains("help: did you mean `gpu`?"), "{text}");
    assert!(text.contains("1 error, 0 warnings"), "{text}");
}

#[test]
fn checks_are_listed_by_name_and_a_named_one_can_be_skipped() {
    let out = gatehouse(&["check", "--list"]);
    assert_eq!(out.status.code(), Some(0));
    let names: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert!(names.iter().any(|n| n == "grant-resources"), "{names:?}");
    assert!(names.iter().any(|n| n == "codeowners"), "{names:?}");

    let dir = with_unknown_resource();
    assert_eq!(check(dir.path(), &[]).status.code(), Some(1));
    let skipped = check(dir.path(), &["--skip", "grant-resources"]);
    assert_eq!(skipped.status.code(), Some(0), "{}", stdout(&skipped));
    assert!(!stdout(&skipped).contains("unknown-resource"));

    // A name that is no check is refused, naming the ones there are.
    let wrong = check(dir.path(), &["--skip", "grant-resource"]);
    assert_eq!(wrong.status.code(), Some(2));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("grant-resources"), "{err}");
}

#[test]
fn warnings_alone_exit_zero() {
    let dir = valid_repo();
    write(
        dir.path(),
        &[(
            "requests/again.yml",
            "action: grant\nprojects: [pytorch-cpu]\nresources: [gpu]\n",
        )],
    );
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("warning[already-granted]"));
}

#[test]
fn json_output_lists_every_finding() {
    let dir = valid_repo();
    write(
        dir.path(),
        &[
            (
                "grants/pytorch-cpu.yml",
                &GRANT.replace("resource: gpu", "resource: gpx"),
            ),
            (
                "requests/bad.yml",
                "action: grant\nprojects: [tinygrad]\nresources: [gpu]\nreason: x\nreasn: y\n",
            ),
        ],
    );
    let out = check(dir.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["errors"], 2);
    assert_eq!(doc["warnings"], 0);
    let first = &doc["diagnostics"][0];
    assert_eq!(first["file"], "grants/pytorch-cpu.yml");
    assert_eq!(first["line"], 3);
    assert_eq!(first["column"], 15);
    assert_eq!(first["code"], "unknown-resource");
    assert_eq!(first["severity"], "error");
    let second = &doc["diagnostics"][1];
    assert_eq!(
        (second["file"].as_str(), second["line"].as_u64()),
        (Some("requests/bad.yml"), Some(5))
    );
    assert_eq!(second["code"], "schema");
}

#[test]
fn github_format_emits_workflow_annotations() {
    let dir = valid_repo();
    write(
        dir.path(),
        &[(
            "grants/pytorch-cpu.yml",
            &GRANT.replace("expires: 2027-03-01", "expires: 2028-03-01"),
        )],
    );
    let out = check(dir.path(), &["--format", "github"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "::error file=grants/pytorch-cpu.yml,line=5,col=14,title=expires-beyond-max::"
        ),
        "{text}"
    );
}

#[test]
fn an_unreadable_repository_exits_two() {
    let out = check(Path::new("/nonexistent/gatehouse"), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/gatehouse"), "{err}");
}

#[test]
fn a_bad_command_line_exits_two() {
    let out = gatehouse(&["check", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_changes_nothing_on_disk() {
    let dir = valid_repo();
    write(dir.path(), &[("grants/broken.yml", "project: [\n")]);
    let before = snapshot(dir.path());
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(snapshot(dir.path()), before);
}

fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn online_without_a_token_warns_and_strict_fails() {
    let dir = valid_repo();
    let out = check(dir.path(), &["--online"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("warning[online-skipped]"));
    let out = check(dir.path(), &["--online", "--strict"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("error[online-skipped]"));
}

#[test]
fn schema_describes_every_file_kind_and_refuses_unknown_fields() {
    let out = gatehouse(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for kind in ["settings", "resource", "grant", "request", "tos", "pool"] {
        assert!(doc.get(kind).is_some(), "{kind}");
    }
    let pool = &doc["pool"];
    assert_eq!(pool["additionalProperties"], false);
    assert_eq!(
        pool["required"],
        serde_json::json!(["sponsor", "start", "end", "resources"])
    );
    let request = &doc["request"];
    assert_eq!(request["additionalProperties"], false);
    for field in [
        "action",
        "projects",
        "feedstocks",
        "resources",
        "pull_request",
        "revoke",
        "send_pr",
        "expires",
    ] {
        assert!(request["properties"].get(field).is_some(), "{field}");
    }
    assert_eq!(request["required"], serde_json::json!(["action"]));
    let grant = &doc["grant"];
    assert_eq!(grant["required"], serde_json::json!(["project"]));
    let out = gatehouse(&["schema", "grant"]);
    let one: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(&one, grant);
}

#[test]
fn import_cirun_writes_a_repository_that_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/conda-forge");
    let out = gatehouse(&[
        "import",
        "cirun",
        "--access",
        fixtures.join("cirun-access.yml").to_str().unwrap(),
        "--runners",
        fixtures.join("cirun-global.yml").to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
        "--granted",
        "2026-03-01",
        "--users-json",
        fixtures.join("conda-forge-users.json").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains("imported 12 resources and 41 grants for 15 projects"),
        "{text}"
    );
    assert!(text.contains("warning[merged-entry]"), "{text}");
    assert!(text.contains("warning[undefined-runner]"), "{text}");
    // Everything checks but the people of Cirun's `users:` lists, whose account ids the policy
    // does not carry (`{ github: LOGIN, id: N }` or people/tos.yml resolves them).
    let out = check(dir.path(), &["--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: std::collections::BTreeSet<&str> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["unresolved-user"].into(), "{report:#}");
    let pytorch = std::fs::read_to_string(dir.path().join("grants/pytorch-cpu.yml")).unwrap();
    assert!(pytorch.contains("- Tobias-Fischer"), "{pytorch}");
    // A second import refuses to overwrite, and says how.
    let again = gatehouse(&[
        "import",
        "cirun",
        "--access",
        fixtures.join("cirun-access.yml").to_str().unwrap(),
        "--runners",
        fixtures.join("cirun-global.yml").to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
        "--users-json",
        fixtures.join("conda-forge-users.json").to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

/// Copies `examples/conda-forge` into a temporary folder.
fn example_copy() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge");
    let dir = tempfile::tempdir().unwrap();
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(&src).unwrap();
            if p.is_dir() {
                std::fs::create_dir_all(dir.path().join(rel)).unwrap();
                stack.push(p);
            } else {
                std::fs::copy(&p, dir.path().join(rel)).unwrap();
            }
        }
    }
    dir
}

/// Replaces the first `from` in `file` with `to`; returns the 1-based line of the change.
fn plant(root: &Path, file: &str, from: &str, to: &str) -> u32 {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("`{from}` not in {file}"));
    std::fs::write(
        &path,
        format!("{}{}{}", &text[..at], to, &text[at + from.len()..]),
    )
    .unwrap();
    text[..at].matches('\n').count() as u32 + 1
}

#[test]
fn every_planted_error_in_a_broken_example_is_reported_and_nothing_else() {
    let dir = example_copy();
    let root = dir.path();
    assert_eq!(
        check(root, &[]).status.code(),
        Some(0),
        "the example starts clean"
    );

    let mut expected: Vec<(String, u32, String)> = Vec::new();
    let mut expect = |file: &str, line: u32, code: &str| {
        expected.push((file.to_string(), line, code.to_string()));
    };
    let l = plant(
        root,
        "grants/pytorch-cpu.yml",
        "resource: cirun-openstack-gpu-large\n",
        "resource: cirun-openstack-gpu-larg\n",
    );
    expect("grants/pytorch-cpu.yml", l, "unknown-resource");
    let l = plant(
        root,
        "grants/libmagma.yml",
        "expires: 2027-03-01",
        "expires: 2027-03-02",
    );
    expect("grants/libmagma.yml", l, "expires-beyond-max");
    let l = plant(root, "grants/jaxlib.yml", "    granted:", "    grnted:");
    expect("grants/jaxlib.yml", l, "schema");
    std::fs::rename(
        root.join("grants/cutlass.yml"),
        root.join("grants/cutlas.yml"),
    )
    .unwrap();
    expect("grants/cutlas.yml", 1, "project-name");
    let l = plant(
        root,
        "resources/depot.yml",
        "provider: depot",
        "provider: depott",
    );
    expect("resources/depot.yml", l, "unknown-provider");
    let l = plant(
        root,
        "resources/travis.yml",
        "labels: [travis-ci]",
        "labels: [travis-ci, Cirun-OpenStack-GPU-Large--x]",
    );
    expect("resources/travis.yml", l, "label-conflict");
    let l2 = plant(
        root,
        "resources/cirun-openstack-gpu-large.yml",
        "labels: [cirun-openstack-gpu-large]",
        "labels: [cirun-openstack-gpu-large]",
    );
    expect(
        "resources/cirun-openstack-gpu-large.yml",
        l2,
        "label-conflict",
    );
    let l = plant(
        root,
        "requests/tinygrad.yml",
        "  - tinygrad\n",
        "  - tinygrad-feedstock\n",
    );
    expect("requests/tinygrad.yml", l, "admin-requests");
    write(
        root,
        &[(
            "requests/revoke-numpy.yml",
            "action: revoke\nprojects: [numpy]\nresources: [cirun-openstack-gpu-large]\n",
        )],
    );
    expect("requests/revoke-numpy.yml", 2, "no-such-grant");
    std::fs::write(
        root.join("requests/latin1.yml"),
        b"action: grant\nreason: caf\xe9\n",
    )
    .unwrap();
    expect("requests/latin1.yml", 2, "not-utf8");
    let l = plant(
        root,
        "people/tos.yml",
        "- { github: aktech, id: 5647941 }",
        "- { github: aktech, id: 5234427 }",
    );
    expect("people/tos.yml", l + 1, "tos-duplicate-id");
    write(
        root,
        &[(
            "grants/bomb.yml",
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
        )],
    );
    expect("grants/bomb.yml", 1, "schema");

    let out = check(root, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut got: Vec<(String, u32, String)> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            (
                d["file"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap_or(0) as u32,
                d["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(
        got,
        expected,
        "{}",
        serde_json::to_string_pretty(&doc).unwrap()
    );
}

/// A tag, a merge key and an id in hexadecimal each fail `check` where they are written, and
/// say what to write instead.
#[test]
fn files_that_hide_values_fail_check_where_they_do_it() {
    let dir = valid_repo();
    write(
        dir.path(),
        &[
            ("people/tos.yml", "- { github: jaimergp, id: 0x270D4E }\n"),
            (
                "requests/numpy.yml",
                "action: grant\nprojects: [numpy]\nresources: [!!str gpu]\n",
            ),
            (
                "grants/numpy.yml",
                "project: numpy\ngrants:\n  - &g { resource: gpu, granted: 2026-03-01, expires: 2027-03-01 }\n  - <<: *g\n    pull_request: true\n",
            ),
        ],
    );
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    for shown in [
        "error[merge-key]: merge keys are not accepted: write the fields out",
        "grants/numpy.yml:4:5",
        "error[schema]: `0x270D4E` is not a plain decimal account id",
        "people/tos.yml:1:27",
        "help: write the account id as plain decimal digits",
        "error[yaml-tag]: the YAML tag `!!str` is not accepted",
        "requests/numpy.yml:3:13",
        "help: delete `!!str` and write the value itself",
        "3 errors, 0 warnings",
    ] {
        assert!(text.contains(shown), "{shown}\n{text}");
    }
}
