//! Property tests of the request and grant parsers: no input makes them (or the checks that run
//! on what they return) panic, every failure is a located diagnostic, and what gatehouse writes
//! it reads back unchanged.
//!
//! Bounded to a few hundred cases each so that `cargo test` stays fast in debug builds; the
//! cargo-fuzz targets in `fuzz/` explore the same ground for longer.

use gatehouse_core::duration::Day;
use gatehouse_core::model::{AccountId, Grant, GrantFile, GrantUser, GrantUsers, RequestFile};
use gatehouse_core::parse::parse_yaml;
use gatehouse_core::{Diagnostic, Repo, Severity, Spanned, check};
use jiff::civil::{Date, date};
use proptest::prelude::*;

const TODAY: Date = date(2026, 11, 28);
const REQUEST_PATH: &str = "requests/fuzz.yml";
const GRANT_PATH: &str = "grants/numpy.yml";

/// A small valid repository that the input under test is added to.
const FIXED: &[(&str, &str)] = &[
    (
        "gatehouse.yml",
        "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n  namespace: { kind: github-app, installation_id: 1 }\n",
    ),
    (
        "resources/cirun-openstack-gpu-large.yml",
        "name: cirun-openstack-gpu-large\nprovider: cirun\nlabels: [cirun-openstack-gpu-large]\nmax_duration: 1y\n",
    ),
    (
        "resources/namespace.yml",
        "name: namespace\nprovider: namespace\nlabels: [namespace-profile-linux]\n",
    ),
    (
        "grants/pytorch-cpu.yml",
        "project: pytorch-cpu\ngrants:\n  - resource: cirun-openstack-gpu-large\n    granted: 2026-03-01\n    expires: 2027-03-01\n",
    ),
    // Resolves the logins of user lists to account ids.
    ("people/tos.yml", "- { github: jaimergp, id: 2559438 }\n"),
];

/// Valid files to mutate: conda-forge's admin-requests (verbatim) and gatehouse's native forms.
const VALID_REQUESTS: &[&str] = &[
    "action: cirun\nfeedstocks:\n  # list of feedstock names (sans `-feedstock` suffix)\n  - pytorch-cpu\nresources:\n  # list of resource names you are applying to\n  - cirun-openstack-gpu-large\n# switch to true if you need it on pull-requests too\npull_request: false\n# revoke access to the gpu runner\nrevoke: false\nsend_pr: true\n",
    "action: namespace\nfeedstocks:\n  - pytorch-cpu\nrevoke: false\n",
    "action: cirun\nfeedstocks:\n  - pytorch-cpu\nresources: [cirun-openstack-gpu-large]\nrevoke: true\n",
    "action: grant\nprojects: [numpy, \"scipy\"]\nresources: [cirun-openstack-gpu-large, namespace]\npull_request: true\nforks: false\nexpires: 2027-06-30\nsend_pr: true\nusers: [jaimergp]\nreason: >\n  GPU tests\n",
    "action: renew\nprojects: [pytorch-cpu]\nresources: [cirun-openstack-gpu-large]\nexpires: 2027-11-01\n",
];

const VALID_GRANTS: &[&str] = &[
    "project: numpy\ngrants:\n  - resource: cirun-openstack-gpu-large\n    pull_request: true\n    granted: 2026-03-01\n    expires: 2027-03-01\n    request: https://github.com/conda-forge/admin-requests/pull/1234\n    approved_by: [jaimergp, \"beckermr\"]\n    users: { users: [jaimergp] }\n    send_pr: true\n  - resource: namespace\n    granted: '2026-11-01'\n",
    "project: numpy\ngrants:\n  - resource: namespace\n    granted: &d 2026-03-01\n    approved_by: [&r jaimergp]\n  - resource: cirun-openstack-gpu-large\n    granted: *d\n    expires: 2027-02-28\n    approved_by: [*r]\n",
];

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    }
}

/// The bytes of a parse failure are a diagnostic that names the file and says something.
fn assert_located(d: &Diagnostic, path: &str, bytes: &[u8]) {
    assert_eq!(d.severity, Severity::Error, "{d:?}");
    assert_eq!(d.file, path, "{d:?}");
    assert!(!d.message.trim().is_empty(), "{d:?}");
    // Lines as YAML ends them (`\n`, `\r\n`, a lone `\r`), which spans count.
    let lines = String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .matches(['\n', '\r'])
        .count() as u32
        + 1;
    assert!(d.span.line <= lines, "line past the end of the file: {d:?}");
}

/// Parses `bytes` directly, then loads them into the fixed repository and runs every check.
fn exercise(path: &str, bytes: &[u8]) {
    if path == REQUEST_PATH {
        match parse_yaml::<RequestFile>(path, bytes) {
            Ok(file) => {
                let _ = file.normalize();
            }
            Err(d) => assert_located(&d, path, bytes),
        }
    } else if let Err(d) = parse_yaml::<GrantFile>(path, bytes) {
        assert_located(&d, path, bytes);
    }
    let sources = FIXED
        .iter()
        .map(|(p, c)| (*p, c.as_bytes()))
        .chain([(path, bytes)]);
    let repo = Repo::from_sources(sources);
    for d in check::run_all(&repo, TODAY).sorted() {
        assert!(!d.message.trim().is_empty(), "{d:?}");
        if d.severity == Severity::Error {
            assert!(!d.file.is_empty(), "{d:?}");
        }
    }
}

#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, u8),
    Delete(usize),
    /// Flips one bit of a byte, which often leaves invalid UTF-8 behind.
    Flip(usize, u8),
}

/// Bytes that mean something to YAML, most of the time; any byte otherwise.
fn yaml_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => proptest::sample::select(b":-[]{},&*!|>'\"#\n \t~?%@`\\".to_vec()),
        1 => any::<u8>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), yaml_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), 0u8..8).prop_map(|(i, bit)| Edit::Flip(i, bit)),
    ]
}

fn mutate(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for e in edits {
        match *e {
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Edit::Delete(i) if !bytes.is_empty() => {
                bytes.remove(i % bytes.len());
            }
            Edit::Flip(i, bit) if !bytes.is_empty() => {
                let i = i % bytes.len();
                bytes[i] ^= 1 << bit;
            }
            _ => {}
        }
    }
    bytes
}

fn project_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
}

/// Strings that a YAML writer must quote to read them back as the same string.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "\\PC{0,40}",
        1 => proptest::sample::select(vec![
            "", "null", "~", "Null", "true", "False", "yes", "no", "on", "off", "y", "n", "123",
            "0x1F", "1e3", ".inf", ".nan", "-", "- a", "a: b", "#c", "a #c", " lead", "trail ",
            "multi\nline", "tab\there", "'q'", "\"dq\"", "&anchor", "*alias", "!tag", "%dir",
            "@at", "`tick", "{a}", "[a]", "2026-01-01", "---", "...", "?", "|", ">",
        ])
        .prop_map(String::from),
    ]
}

fn day() -> impl Strategy<Value = Day> {
    // Every day from 0001-01-01 to 9999-12-31: the range `YYYY-MM-DD` can spell.
    (0i64..3_652_059).prop_map(|n| {
        let d = date(1, 1, 1)
            .checked_add(jiff::Span::new().days(n))
            .expect("in range");
        Day(d)
    })
}

fn spanned<T: std::fmt::Debug>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Spanned<T>> {
    s.prop_map(Spanned::unplaced)
}

/// A user-list entry: a login, or a login with its account id.
fn grant_user() -> impl Strategy<Value = Spanned<GrantUser>> {
    prop_oneof![
        tricky_string().prop_map(GrantUser::Login),
        (spanned(tricky_string()), 1i64..100_000_000).prop_map(|(github, id)| {
            GrantUser::Person {
                github,
                id: Spanned::unplaced(AccountId(id)),
            }
        }),
    ]
    .prop_map(Spanned::unplaced)
}

fn grant() -> impl Strategy<Value = Grant> {
    (
        spanned(project_name()),
        any::<(bool, Option<bool>, bool)>(),
        spanned(day()),
        proptest::option::of(spanned(day())),
        proptest::option::of(spanned(tricky_string())),
        proptest::collection::vec(spanned(tricky_string()), 0..3),
        proptest::option::of(proptest::collection::vec(grant_user(), 0..3)),
    )
        .prop_map(
            |(
                resource,
                (pull_request, forks, send_pr),
                granted,
                expires,
                request,
                approved_by,
                users,
            )| Grant {
                resource,
                pull_request,
                forks,
                granted,
                expires,
                request,
                approved_by,
                users: users.map(|users| GrantUsers {
                    users,
                    teams: Vec::new(),
                }),
                send_pr,
            },
        )
}

fn grant_file() -> impl Strategy<Value = GrantFile> {
    (
        spanned(project_name()),
        proptest::collection::vec(grant(), 0..4),
    )
        .prop_map(|(project, grants)| GrantFile { project, grants })
}

type GrantKey = (
    String,
    bool,
    Option<bool>,
    Day,
    Option<Day>,
    Option<String>,
    Vec<String>,
    Option<Vec<(String, Option<i64>)>>,
    bool,
);

/// Everything a grant says, without source locations, for comparing.
fn key(g: &Grant) -> GrantKey {
    let strings = |v: &[Spanned<String>]| v.iter().map(|s| s.value.clone()).collect::<Vec<_>>();
    (
        g.resource.value.clone(),
        g.pull_request,
        g.forks,
        g.granted.value,
        g.expires.as_ref().map(|e| e.value),
        g.request.as_ref().map(|r| r.value.clone()),
        strings(&g.approved_by),
        g.users.as_ref().map(|u| {
            u.users
                .iter()
                .map(|e| (e.login().to_string(), e.id()))
                .collect()
        }),
        g.send_pr,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(REQUEST_PATH, &bytes);
        exercise(GRANT_PATH, &bytes);
    }

    #[test]
    fn mutated_requests_never_panic(
        text in proptest::sample::select(VALID_REQUESTS),
        edits in proptest::collection::vec(edit(), 1..8),
    ) {
        exercise(REQUEST_PATH, &mutate(text, &edits));
    }

    #[test]
    fn mutated_grants_never_panic(
        text in proptest::sample::select(VALID_GRANTS),
        edits in proptest::collection::vec(edit(), 1..8),
    ) {
        exercise(GRANT_PATH, &mutate(text, &edits));
    }

    #[test]
    fn written_grant_files_read_back_the_same(file in grant_file()) {
        let yaml = serde_saphyr::to_string(&file).expect("a grant file serialises");
        let back = parse_yaml::<GrantFile>(GRANT_PATH, yaml.as_bytes())
            .unwrap_or_else(|d| panic!("{d:?} in\n{yaml}"));
        prop_assert_eq!(&back.project.value, &file.project.value, "in\n{}", yaml);
        let want: Vec<GrantKey> = file.grants.iter().map(key).collect();
        let got: Vec<GrantKey> = back.grants.iter().map(key).collect();
        prop_assert_eq!(got, want, "in\n{}", yaml);
    }
}

#[test]
fn the_valid_inputs_are_valid() {
    for (path, texts) in [(REQUEST_PATH, VALID_REQUESTS), (GRANT_PATH, VALID_GRANTS)] {
        for text in texts {
            let sources = FIXED
                .iter()
                .map(|(p, c)| (*p, c.as_bytes()))
                .chain([(path, text.as_bytes())]);
            let repo = Repo::from_sources(sources);
            let errors: Vec<_> = check::run_all(&repo, TODAY)
                .into_iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{text}\n{errors:#?}");
        }
    }
}
