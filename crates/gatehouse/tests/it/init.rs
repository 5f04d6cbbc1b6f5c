//! `gatehouse init`, end to end: the binary writes a repository that `gatehouse check` accepts,
//! and never overwrites files unless told to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The day checks judge expiry against, so results do not depend on the clock.
const TODAY: &str = "2026-11-28";

fn gatehouse(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .arg(dir)
        .env_remove("GATEHOUSE_TODAY")
        .output()
        .expect("running gatehouse")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `gatehouse check` and expects a clean result: exit 0 and not even a warning.
fn assert_check_clean(dir: &Path) {
    let out = gatehouse(&["check", "--today", TODAY], dir);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("no problems found"), "{stdout}");
}

/// Every file under `root`, by `/`-separated relative path (dot files included).
fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let rel: Vec<_> = rel.iter().map(|c| c.to_str().unwrap()).collect();
                files.insert(rel.join("/"), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(root, root, &mut files);
    files
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/conda-forge")
}

#[test]
fn example_is_written_byte_for_byte_and_passes_check() {
    let tmp = tempfile::tempdir().unwrap();
    // A folder that does not exist yet: init creates it.
    let dir = tmp.path().join("access");
    let out = gatehouse(&["init", "--example", "conda-forge"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("gatehouse check"));

    let written = read_tree(&dir);
    let expected = read_tree(&example_dir());
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the files written differ from examples/conda-forge (is a file missing from CONDA_FORGE?)"
    );
    for (path, contents) in &expected {
        assert!(
            written[path] == *contents,
            "{path} differs from examples/conda-forge"
        );
    }
    assert_check_clean(&dir);
}

#[test]
fn skeleton_passes_check() {
    let tmp = tempfile::tempdir().unwrap();
    let out = gatehouse(&["init", "--org", "acme"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let settings = std::fs::read_to_string(tmp.path().join("gatehouse.yml")).unwrap();
    assert!(settings.contains("org: acme"), "{settings}");
    assert_check_clean(tmp.path());

    // CODEOWNERS is written, names the organisation's reviewers, and is what
    // `gatehouse ci codeowners` would write.
    let owners = std::fs::read_to_string(tmp.path().join(".github/CODEOWNERS")).unwrap();
    assert!(owners.contains("@acme/core"), "{owners}");
    let out = gatehouse(&["ci", "codeowners", "--check"], tmp.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // A reviewer changed by hand without regenerating CODEOWNERS: check catches it, so the
    // file written above is really being compared.
    let edited = settings.replace("teams: [core]", "teams: [core, infra]");
    assert_ne!(
        edited, settings,
        "the skeleton's reviewers changed: update this test"
    );
    std::fs::write(tmp.path().join("gatehouse.yml"), edited).unwrap();
    let out = gatehouse(&["check", "--today", TODAY], tmp.path());
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("codeowners-outdated"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn init_refuses_to_overwrite_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert_eq!(gatehouse(&["init"], dir).status.code(), Some(0));

    // Change one file and remove another: a refused init must restore neither.
    let settings = dir.join("gatehouse.yml");
    let keep = dir.join("requests/.keep");
    std::fs::write(&settings, "edited by hand\n").unwrap();
    std::fs::remove_file(&keep).unwrap();

    let out = gatehouse(&["init"], dir);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        "edited by hand\n"
    );
    assert!(!keep.exists(), "a refused init wrote requests/.keep");

    let out = gatehouse(&["init", "--force"], dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        std::fs::read_to_string(&settings)
            .unwrap()
            .contains("org: my-org")
    );
    assert!(keep.exists());
    assert_check_clean(dir);
}

#[test]
fn a_bad_org_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = gatehouse(&["init", "--org", "acme: evil"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(!tmp.path().join("gatehouse.yml").exists());
}
