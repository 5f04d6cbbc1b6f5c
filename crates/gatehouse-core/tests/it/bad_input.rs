//! Hostile and broken input: each kind is reported as an error that names the file (and, where
//! it means something, the line and column), and none of them makes gatehouse panic, hang or
//! read outside the repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use gatehouse_core::{Diagnostic, Repo, Severity, check, repo};
use jiff::civil::{Date, date};

const TODAY: Date = date(2026, 11, 28);

/// A small valid repository; each test adds one bad file to it.
const VALID: &[(&str, &str)] = &[
    (
        "gatehouse.yml",
        "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n",
    ),
    (
        "resources/gpu.yml",
        "name: gpu\nprovider: cirun\nlabels: [cirun-openstack-gpu-large]\nmax_duration: 1y\n",
    ),
    (
        "grants/pytorch-cpu.yml",
        "project: pytorch-cpu\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    expires: 2027-03-01\n",
    ),
];

/// Runs `gatehouse check`'s loader and checks on the valid repository plus `path`.
fn check_with(path: &str, bytes: &[u8]) -> Vec<Diagnostic> {
    let sources = VALID
        .iter()
        .map(|(p, c)| (*p, c.as_bytes()))
        .chain([(path, bytes)]);
    check::run_all(&Repo::from_sources(sources), TODAY).sorted()
}

/// The errors must all be in `path`, and one of them has `code`; returns that one.
fn error_in<'a>(diags: &'a [Diagnostic], path: &str, code: &str) -> &'a Diagnostic {
    let errors: Vec<&Diagnostic> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(
        errors.iter().all(|d| d.file == path),
        "errors outside {path}: {errors:#?}"
    );
    let found = errors.iter().find(|d| d.code == code);
    let d = found.unwrap_or_else(|| panic!("no `{code}` error in {path}: {diags:#?}"));
    assert!(!d.message.is_empty());
    d
}

fn at(d: &Diagnostic) -> (u32, u32) {
    (d.span.line, d.span.column)
}

#[test]
fn the_valid_repository_passes() {
    let sources = VALID.iter().map(|(p, c)| (*p, c.as_bytes()));
    let diags = check::run_all(&Repo::from_sources(sources), TODAY);
    assert!(diags.is_empty(), "{:#?}", diags.sorted());
}

#[test]
fn malformed_yaml() {
    let path = "requests/numpy.yml";
    let diags = check_with(
        path,
        b"action: grant\nprojects: [\"numpy]\nresources: [gpu]\n",
    );
    let d = error_in(&diags, path, "schema");
    assert_eq!(at(d), (2, 12), "{d:?}");
    assert!(d.message.contains("quote"), "{d:?}");

    let diags = check_with(
        path,
        b"action: grant\n  projects: [numpy]\n resources: [gpu]\n",
    );
    assert_eq!(at(error_in(&diags, path, "schema")), (2, 11));
}

#[test]
fn wrong_types() {
    let path = "grants/numpy.yml";
    let diags = check_with(
        path,
        b"project: numpy\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    pull_request: maybe\n",
    );
    let d = error_in(&diags, path, "schema");
    assert_eq!(at(d), (5, 19), "{d:?}");
    assert!(d.message.contains("boolean"), "{d:?}");

    let path = "requests/numpy.yml";
    let diags = check_with(path, b"action: grant\nprojects: numpy\nresources: [gpu]\n");
    assert_eq!(at(error_in(&diags, path, "schema")), (2, 11));

    let path = "grants/numpy.yml";
    let diags = check_with(
        path,
        b"project: numpy\ngrants:\n  - resource: gpu\n    granted: 2026-02-30\n",
    );
    let d = error_in(&diags, path, "schema");
    assert_eq!(at(d), (4, 14), "{d:?}");
    assert!(d.message.contains("2026-02-30"), "{d:?}");
}

#[test]
fn unknown_fields() {
    let path = "grants/numpy.yml";
    let diags = check_with(
        path,
        b"project: numpy\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    colour: red\n",
    );
    let d = error_in(&diags, path, "schema");
    assert_eq!(at(d), (5, 5), "{d:?}");
    assert!(d.message.contains("unknown field `colour`"), "{d:?}");
}

/// A provider takes the fields of its kind: one it lacks, or one of another kind, is refused
/// when gatehouse.yml is read, at the line and column of the field (or of the key read last,
/// for a missing field: the parser's place for every missing field), and says which.
#[test]
fn a_provider_without_its_kinds_field_or_with_another_kinds() {
    let path = "gatehouse.yml";
    let head = "org: conda-forge\nreviewers: { teams: [core] }\nproviders:\n";
    for (provider, at_, message) in [
        // Missing: each kind's own field.
        (
            "  cirun: { kind: cirun }\n",
            (4, 12),
            "missing field `access_repo`",
        ),
        (
            "  cirun: { kind: github-app, max_concurrency: 2 }\n",
            (4, 30),
            "missing field `installation_id`",
        ),
        (
            "  cirun: { kind: runner-group }\n",
            (4, 12),
            "missing field `group`",
        ),
        (
            "  cirun: { access_repo: .cirun }\n",
            (4, 12),
            "missing field `kind`",
        ),
        // Another kind's field, after `kind`: where that field is written.
        (
            "  cirun: { kind: cirun, access_repo: .cirun, group: gpu }\n",
            (4, 46),
            "unknown field `group`, expected one of kind, access_repo, users_from_json, via, installation_id, max_concurrency",
        ),
        (
            "  cirun: { kind: github-app, installation_id: 1, via: api }\n",
            (4, 50),
            "unknown field `via`, expected one of kind, installation_id, max_concurrency",
        ),
        (
            "  cirun: { kind: runner-group, group: gpu, access_repo: .cirun }\n",
            (4, 44),
            "unknown field `access_repo`, expected one of kind, group, max_concurrency",
        ),
        // ... before `kind`: where `kind` names the kind that does not take it.
        (
            "  cirun:\n    users_from_json: https://example.org/tos.json\n    kind: runner-group\n    group: gpu\n",
            (6, 5),
            "unknown field `users_from_json`, expected one of kind, group, max_concurrency",
        ),
        // A field of no kind at all.
        (
            "  cirun: { kind: cirun, access_repo: .cirun, colour: red }\n",
            (4, 46),
            "unknown field `colour`",
        ),
    ] {
        let text = format!("{head}{provider}");
        let diags = check_with(path, text.as_bytes());
        let d = error_in(&diags, path, "schema");
        assert_eq!(at(d), at_, "{provider}: {d:?}");
        assert!(d.message.starts_with(message), "{provider}: {d:?}");
        assert!(d.help.is_some(), "{provider}: {d:?}");
    }
    // In block style a missing field is reported at the key read last, on its own line.
    let text = format!("{head}  pool:\n    kind: runner-group\n    max_concurrency: 3\n");
    let diags = check_with(path, text.as_bytes());
    let d = error_in(&diags, path, "schema");
    assert_eq!(
        (at(d), d.message.as_str()),
        ((6, 5), "missing field `group`")
    );
    // Every kind with its own fields, in any order, loads.
    let text = format!(
        "{head}  cirun: {{ access_repo: .cirun, kind: cirun, via: api, installation_id: 7, users_from_json: https://example.org/u.json, max_concurrency: 4 }}\n  app: {{ installation_id: 1, kind: github-app }}\n  pool: {{ max_concurrency: 2, group: gpu, kind: runner-group }}\n"
    );
    let diags = check_with(path, text.as_bytes());
    assert!(diags.is_empty(), "{diags:#?}");
}

#[test]
fn duplicate_keys() {
    let path = "requests/numpy.yml";
    let diags = check_with(
        path,
        b"action: grant\nprojects: [numpy]\nresources: [gpu]\nresources: [gpu]\n",
    );
    let d = error_in(&diags, path, "schema");
    assert_eq!(at(d), (4, 1), "{d:?}");
    assert_eq!(d.message, "duplicate key `resources`");
}

/// A tag makes a value read differently from how it looks: a `!!binary` login is base64, a
/// `!!str` id a string. Every kind of tag, wherever it stands, is refused where it is written.
#[test]
fn a_yaml_tag() {
    for (path, text, place, tag) in [
        (
            "people/tos.yml",
            "- { github: wolfv, id: 885054 }\n- { github: !!binary d29sZnY=, id: 885054 }\n",
            (2, 13),
            "!!binary",
        ),
        (
            "people/tos.yml",
            "- { github: wolfv, id: !!str 885054 }\n",
            (1, 24),
            "!!str",
        ),
        (
            "grants/numpy.yml",
            "project: numpy\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    pull_request: !!bool true\n",
            (5, 19),
            "!!bool",
        ),
        (
            "grants/numpy.yml",
            "project: numpy\ngrants:\n  - !grant\n    resource: gpu\n    granted: 2026-03-01\n",
            (3, 5),
            "!grant",
        ),
        (
            "requests/numpy.yml",
            "action: !<tag:yaml.org,2002:str> grant\nprojects: [numpy]\nresources: [gpu]\n",
            (1, 9),
            "!<tag:yaml.org,2002:str>",
        ),
        (
            "requests/numpy.yml",
            "action: grant\nprojects: [! numpy]\nresources: [gpu]\n",
            (2, 12),
            "!",
        ),
        (
            "requests/numpy.yml",
            "action: grant\n!!str projects: [numpy]\nresources: [gpu]\n",
            (2, 1),
            "!!str",
        ),
        (
            "requests/numpy.yml",
            "%TAG !g! tag:example.org,2026:\n---\naction: !g!grant grant\nprojects: [numpy]\nresources: [gpu]\n",
            (3, 9),
            "!g!grant",
        ),
        (
            "gatehouse.yml",
            "org: conda-forge\nreviewers: !!map { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n",
            (2, 12),
            "!!map",
        ),
    ] {
        let diags = check_with(path, text.as_bytes());
        let d = error_in(&diags, path, "yaml-tag");
        assert_eq!(at(d), place, "{text}: {d:?}");
        assert!(d.message.contains(&format!("`{tag}`")), "{text}: {d:?}");
        let help = d.help.as_deref().unwrap_or_default();
        assert!(
            help.contains(&format!("delete `{tag}` and write the value itself")),
            "{text}: {d:?}"
        );
    }

    // A `!` that is not a tag (in text, in a comment) is only text.
    let diags = check_with(
        "requests/numpy.yml",
        b"action: grant  # yes!\nprojects: [numpy]\nresources: [gpu]\nreason: 'CUDA tests, at last!'\n",
    );
    assert!(diags.is_empty(), "{diags:#?}");

    // A broken file that holds a `!` still gets the parser's own account of what is broken.
    let path = "requests/numpy.yml";
    let diags = check_with(path, b"action: grant  # yes!\nprojects: [\"numpy]\n");
    let d = error_in(&diags, path, "schema");
    assert_eq!(at(d), (2, 12), "{d:?}");
    assert!(d.message.contains("quote"), "{d:?}");
}

/// A merge key brings in fields written elsewhere: the reviewer of the entry does not see them.
#[test]
fn a_merge_key() {
    let path = "grants/numpy.yml";
    for (text, place) in [
        (
            "project: numpy\ngrants:\n  - &base { resource: gpu, granted: 2026-03-01, expires: 2027-03-01 }\n  - <<: *base\n    resource: cpu\n",
            (4, 5),
        ),
        (
            "project: numpy\ngrants:\n  - &base { resource: gpu, granted: 2026-03-01, expires: 2027-03-01 }\n  - { <<: [*base], resource: cpu }\n",
            (4, 7),
        ),
    ] {
        let diags = check_with(path, text.as_bytes());
        let d = error_in(&diags, path, "merge-key");
        assert_eq!(at(d), place, "{text}: {d:?}");
        assert_eq!(
            d.message,
            "merge keys are not accepted: write the fields out"
        );
        let help = d.help.as_deref().unwrap_or_default();
        assert!(
            help.contains("fields it would bring in, written out"),
            "{d:?}"
        );
    }
}

/// YAML reads `"885054"` as an id too; the file must show the number itself.
#[test]
fn an_account_id_written_as_a_string() {
    let path = "people/tos.yml";
    for (id, column) in [
        ("\"885054\"", 7),
        ("'885054'", 7),
        ("\"\\x38\\x38\\x35054\"", 7),
    ] {
        let text = format!("- {{ github: jaimergp, id: 2559438 }}\n- github: wolfv\n  id: {id}\n");
        let diags = check_with(path, text.as_bytes());
        let d = error_in(&diags, path, "schema");
        assert_eq!(at(d), (3, column), "{id}: {d:?}");
        assert!(d.message.contains("account id"), "{id}: {d:?}");
        let help = d.help.as_deref().unwrap_or_default();
        assert!(
            help.contains("plain decimal digits, without quotes"),
            "{id}: {d:?}"
        );
    }

    // Through an alias: reported where it is used, judged by the text where it is anchored.
    let text = "- { github: &i \"885054\", id: 1 }\n- { github: wolfv, id: *i }\n";
    let diags = check_with(path, text.as_bytes());
    let d = error_in(&diags, path, "schema");
    assert_eq!(at(d), (2, 24), "{d:?}");
    assert_eq!(
        d.message,
        "account id `885054` is not written as a plain number"
    );
}

/// Every other way YAML writes a number hides the id a reviewer reads: `0x1F` is 31.
#[test]
fn an_account_id_in_another_base_or_form() {
    let path = "people/tos.yml";
    for id in [
        "0xD83E",
        "0o154076",
        "0b1101",
        "885_054",
        "+885054",
        "0885054",
        "8.85054e5",
        "885054.0",
    ] {
        let text =
            format!("- {{ github: jaimergp, id: 2559438 }}\n- {{ github: wolfv, id: {id} }}\n");
        let diags = check_with(path, text.as_bytes());
        let d = error_in(&diags, path, "schema");
        assert_eq!(at(d), (2, 24), "{id}: {d:?}");
        assert!(d.message.contains(&format!("`{id}`")), "{id}: {d:?}");
        let help = d.help.as_deref().unwrap_or_default();
        assert!(help.contains("plain decimal digits"), "{id}: {d:?}");
    }
    // The plain number loads.
    let diags = check_with(path, b"- { github: wolfv, id: 885054 }\n");
    assert!(diags.is_empty(), "{diags:#?}");
}

#[test]
fn a_file_over_one_mib() {
    let path = "grants/numpy.yml";
    let mut bytes = b"project: numpy\ngrants: []\n".to_vec();
    bytes.resize(1024 * 1024 + 1, b'#');
    let diags = check_with(path, &bytes);
    error_in(&diags, path, "file-too-large");

    // Exactly 1 MiB is still read.
    bytes.truncate(1024 * 1024);
    let diags = check_with(path, &bytes);
    assert!(
        !diags.iter().any(|d| d.code == "file-too-large"),
        "{diags:#?}"
    );
}

#[test]
fn bytes_that_are_not_utf8() {
    let path = "grants/numpy.yml";
    let diags = check_with(path, b"project: numpy\ngrants:\n  - resource: g\xffpu\n");
    let d = error_in(&diags, path, "not-utf8");
    assert_eq!(at(d), (3, 16), "{d:?}");

    // Columns count characters: `é` before the bad byte is one column.
    let diags = check_with(
        path,
        b"project: numpy\ngrants:\n  - resource: \xc3\xa9\xff\n",
    );
    assert_eq!(at(error_in(&diags, path, "not-utf8")), (3, 16));

    // A truncated multi-byte character at the very end.
    let diags = check_with(path, b"project: numpy\xc3");
    assert_eq!(at(error_in(&diags, path, "not-utf8")), (1, 15));
}

/// Nine levels of nine aliases each: a billion `lol`s if expanded.
fn billion_laughs(prefix: &str) -> String {
    let mut y = format!("{prefix}a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (prev, name) in "abcdefgh".chars().zip("bcdefghi".chars()) {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        y.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    y
}

#[test]
fn an_alias_bomb_is_refused_quickly() {
    let path = "grants/numpy.yml";
    let start = Instant::now();
    for bomb in [billion_laughs(""), billion_laughs("project: numpy\n")] {
        let diags = check_with(path, bomb.as_bytes());
        error_in(&diags, path, "schema");
    }

    // A bomb the schema accepts at every level: 400 grants, each with 400 copies of a 1 kB
    // login, 160 MB once expanded. The scalar budget stops it.
    let login = "x".repeat(1000);
    let mut y = format!(
        "project: numpy\ngrants:\n  - &g\n    resource: gpu\n    granted: 2026-03-01\n    approved_by: [&s {login}"
    );
    y.push_str(&", *s".repeat(399));
    y.push_str("]\n");
    y.push_str(&"  - *g\n".repeat(399));
    let diags = check_with(path, y.as_bytes());
    let d = error_in(&diags, path, "schema");
    assert!(d.message.contains("budget"), "{d:?}");
    assert!(d.span.is_known(), "{d:?}");

    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn deep_nesting_is_refused() {
    let start = Instant::now();
    let path = "grants/numpy.yml";
    let diags = check_with(path, "[".repeat(10_000).as_bytes());
    let d = error_in(&diags, path, "schema");
    assert_eq!(d.span.line, 1, "{d:?}");

    let path = "requests/numpy.yml";
    let deep = format!("action: grant\nprojects: {}", "[".repeat(10_000));
    let diags = check_with(path, deep.as_bytes());
    assert_eq!(error_in(&diags, path, "schema").span.line, 2);

    let path = "people/tos.yml";
    let deep = "{a: ".repeat(10_000);
    let diags = check_with(path, deep.as_bytes());
    error_in(&diags, path, "schema");

    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_path_as_project_name_in_a_grant() {
    let path = "grants/passwd.yml";
    let diags = check_with(
        path,
        b"project: ../../etc/passwd\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    expires: 2027-03-01\n",
    );
    let d = error_in(&diags, path, "project-name");
    assert_eq!(at(d), (1, 10), "{d:?}");
    assert!(d.message.contains("../../etc/passwd"), "{d:?}");
}

#[test]
fn a_path_as_project_name_in_a_request() {
    let path = "requests/passwd.yml";
    for (text, column) in [
        (
            "action: grant\nprojects: [../../etc/passwd]\nresources: [gpu]\n",
            12,
        ),
        (
            "action: revoke\nprojects: [../../etc/passwd]\nresources: [gpu]\n",
            12,
        ),
        (
            "action: cirun\nfeedstocks: [../../etc/passwd]\nresources: [gpu]\n",
            14,
        ),
    ] {
        let diags = check_with(path, text.as_bytes());
        let d = error_in(&diags, path, "project-name");
        assert_eq!(at(d), (2, column), "{text}: {d:?}");
        // The name is refused, not looked up: no `no-such-grant` on top.
        let errors = diags.iter().filter(|d| d.severity == Severity::Error);
        assert_eq!(errors.count(), 1, "{text}: {diags:#?}");
    }
}

#[test]
fn an_empty_file() {
    for path in [
        "grants/numpy.yml",
        "requests/numpy.yml",
        "resources/cpu.yml",
    ] {
        for text in ["", "\n\n", "   \n", "# nothing yet\n"] {
            let diags = check_with(path, text.as_bytes());
            error_in(&diags, path, "empty-file");
        }
    }
}

#[test]
fn a_document_that_is_only_a_marker() {
    for path in ["grants/numpy.yml", "requests/numpy.yml", "people/tos.yml"] {
        for text in ["---", "---\n", "--- \n# comment\n"] {
            let diags = check_with(path, text.as_bytes());
            error_in(&diags, path, "empty-file");
        }
    }
}

/// Every file under `root`, with its contents and modification time.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                stack.push(path.clone());
            }
            let contents = if meta.is_file() {
                std::fs::read(&path).expect("read")
            } else {
                Vec::new()
            };
            out.insert(path, (contents, meta.modified().expect("mtime")));
        }
    }
    out
}

fn write(root: &Path, rel: &str, contents: &str) {
    let full = root.join(rel);
    std::fs::create_dir_all(full.parent().expect("a parent")).expect("mkdir");
    std::fs::write(full, contents).expect("write");
}

#[cfg(unix)]
#[test]
fn load_dir_reports_symlinks_without_following_them() {
    use std::os::unix::fs::symlink;

    let repo_dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let root = repo_dir.path();
    for (rel, contents) in VALID {
        write(root, rel, contents);
    }
    // Outside the repository: a valid grant file, which would load if it were followed.
    write(
        outside.path(),
        "evil.yml",
        "project: evil\ngrants:\n  - resource: gpu\n    granted: 2026-03-01\n    expires: 2027-03-01\n",
    );
    write(
        outside.path(),
        "requests/evil.yml",
        "action: grant\nprojects: [evil]\nresources: [gpu]\n",
    );
    symlink(
        outside.path().join("evil.yml"),
        root.join("grants/evil.yml"),
    )
    .expect("symlink");
    symlink(outside.path().join("requests"), root.join("requests")).expect("symlink");

    let before = snapshot(root);
    let before_outside = snapshot(outside.path());
    let loaded = repo::load_dir(root).expect("the repository loads");
    assert_eq!(snapshot(root), before, "load_dir changed the repository");
    assert_eq!(snapshot(outside.path()), before_outside);

    assert!(
        loaded
            .grants
            .iter()
            .all(|g| g.value.project.value != "evil")
    );
    assert!(loaded.requests.is_empty());
    let diags = check::run_all(&loaded, TODAY).sorted();
    for path in ["grants/evil.yml", "requests"] {
        let d = diags
            .iter()
            .find(|d| d.file == path)
            .unwrap_or_else(|| panic!("{path} not reported: {diags:#?}"));
        assert_eq!((d.code, d.severity), ("symlink", Severity::Error), "{d:?}");
    }
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

/// `symlink_metadata` looks only at the last component of `people/tos.yml`, so a linked `people/`
/// folder must be caught on its own, or the ToS list is read from wherever it points.
#[cfg(unix)]
#[test]
fn load_dir_does_not_follow_a_symlinked_people_directory() {
    use std::os::unix::fs::symlink;

    let repo_dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let root = repo_dir.path();
    for (rel, contents) in VALID {
        write(root, rel, contents);
    }
    write(outside.path(), "tos.yml", "- { github: evil, id: 666 }\n");
    symlink(outside.path(), root.join("people")).expect("symlink");

    let loaded = repo::load_dir(root).expect("the repository loads");
    assert!(loaded.tos.is_none(), "read {:?}", loaded.tos);
    let diags = check::run_all(&loaded, TODAY).sorted();
    assert!(
        diags
            .iter()
            .any(|d| d.code == "symlink" && d.file.starts_with("people")),
        "{diags:#?}"
    );
}

/// A file where a folder of the layout belongs is reported, as `resources` is; today `people`
/// makes the whole load fail with "Not a directory (os error 20)".
#[test]
fn load_dir_reports_a_file_where_people_belongs() {
    let repo_dir = tempfile::tempdir().expect("tempdir");
    let root = repo_dir.path();
    for (rel, contents) in VALID {
        write(root, rel, contents);
    }
    write(root, "people", "not a folder\n");

    let loaded = repo::load_dir(root).expect("the repository loads");
    let diags = check::run_all(&loaded, TODAY).sorted();
    assert!(
        diags
            .iter()
            .any(|d| d.code == "not-a-directory" && d.file == "people"),
        "{diags:#?}"
    );
}

#[test]
fn load_dir_changes_nothing() {
    let repo_dir = tempfile::tempdir().expect("tempdir");
    let root = repo_dir.path();
    for (rel, contents) in VALID {
        write(root, rel, contents);
    }
    write(
        root,
        "requests/numpy.yml",
        "action: grant\nprojects: [numpy]\nresources: [gpu]\n",
    );
    write(root, "requests/broken.yml", "action: [\n");
    write(root, "grants/empty.yml", "");
    write(root, "README.md", "not part of the layout\n");
    std::fs::write(root.join("grants/big.yml"), vec![b'#'; 1024 * 1024 + 1]).expect("write");

    let before = snapshot(root);
    let loaded = repo::load_dir(root).expect("the repository loads");
    assert_eq!(snapshot(root), before, "load_dir changed the repository");

    let diags = check::run_all(&loaded, TODAY).sorted();
    let codes: Vec<(&str, &str)> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.file.as_str(), d.code))
        .collect();
    assert_eq!(
        codes,
        [
            ("grants/big.yml", "file-too-large"),
            ("grants/empty.yml", "empty-file"),
            ("requests/broken.yml", "schema"),
        ]
    );
}
