//! How gatehouse is installed and run elsewhere holds together with the binary: the release
//! workflow, the action (`action.yml`), the workflows `gatehouse init` writes and the conda
//! recipe all name this version and these targets, and the commands they run work.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn gatehouse(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .current_dir(dir)
        .env_remove("GATEHOUSE_TODAY")
        .output()
        .expect("running gatehouse")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The action and the release workflow accept a binary only when `--version` says exactly this.
#[test]
fn version_flag_says_what_the_action_and_the_release_check() {
    let out = gatehouse(&["--version"], &root());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim_end(), format!("gatehouse {VERSION}"));
    let action = read("action.yml");
    assert!(action.contains(r#"[ "$reported" = "gatehouse $GATEHOUSE_VERSION" ]"#));
    let release = read(".github/workflows/release.yml");
    assert!(release.contains(r#"--version)" = "gatehouse $VERSION" ]"#));
}

/// Pinning the action pins gatehouse: its default version is the one it is released with.
#[test]
fn action_installs_its_own_version_and_has_its_inputs() {
    let action = yaml("action.yml");
    let inputs = &action["inputs"];
    for input in ["command", "version", "directory"] {
        assert!(
            inputs.get(input).is_some(),
            "action.yml has no input `{input}`"
        );
    }
    assert_eq!(inputs["version"]["default"], VERSION);
    assert_eq!(action["runs"]["using"], "composite");
}

/// Every platform the action installs for is built by the release workflow, archived as the
/// action expects, and its provenance is what the action verifies.
#[test]
fn the_action_installs_what_the_release_builds() {
    let release = yaml(".github/workflows/release.yml");
    let built: BTreeSet<(String, String)> =
        release["jobs"]["build"]["strategy"]["matrix"]["include"]
            .as_array()
            .expect("a matrix of targets")
            .iter()
            .map(|t| {
                (
                    t["target"].as_str().unwrap().to_string(),
                    t["archive"].as_str().unwrap().to_string(),
                )
            })
            .collect();
    let action = read("action.yml");
    let installed: BTreeSet<(String, String)> = action
        .lines()
        .filter_map(|line| {
            let rest = line.split_once(") target=")?.1;
            let (target, rest) = rest.split_once("; ext=")?;
            let ext = rest.split_once(' ')?.0;
            Some((target.to_string(), ext.to_string()))
        })
        .collect();
    assert_eq!(installed.len(), 4, "{installed:?}");
    assert_eq!(installed, built);
    for target in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-msvc",
    ] {
        assert!(built.iter().any(|(t, _)| t == target), "{target} not built");
    }

    // The provenance is signed where the action expects it, and verified before unpacking.
    let release_text = read(".github/workflows/release.yml");
    assert!(release_text.contains("actions/attest-build-provenance@"));
    assert!(action.contains("--signer-workflow \"$GATEHOUSE_REPO/.github/workflows/release.yml\""));
    assert!(action.contains("--source-ref \"refs/tags/v$GATEHOUSE_VERSION\""));
    let verify = action.find("gh attestation verify").unwrap();
    let unpack = action.find("tar -xzf").unwrap();
    assert!(
        verify < unpack,
        "the archive is unpacked before it is verified"
    );
}

/// What `gatehouse init` writes: workflows that run this version of gatehouse through the
/// action (never a build on every pull request), each saying why it has each permission.
#[test]
fn init_writes_workflows_that_use_the_action_at_this_version() {
    let tmp = tempfile::tempdir().unwrap();
    for (sub, args) in [
        (
            "example",
            &["init", "--example", "conda-forge", "example"][..],
        ),
        ("skeleton", &["init", "--org", "acme", "skeleton"][..]),
    ] {
        let out = gatehouse(args, tmp.path());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let dir = tmp.path().join(sub).join(".github/workflows");
        let mut using = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let body = std::fs::read_to_string(&path).unwrap();
            assert!(
                !body.contains("cargo install"),
                "{sub}/{name} builds gatehouse"
            );
            for line in body.lines() {
                if let Some(rest) = line.trim().strip_prefix("- uses: conda-forge/gatehouse@") {
                    assert_eq!(rest, format!("v{VERSION}"), "{sub}/{name}: {line}");
                    using.insert(name.clone());
                }
            }
            // Permissions: declared at the top; every scope granted says why on its line.
            let doc: Value = serde_saphyr::from_str(&body).unwrap();
            assert!(
                doc.get("permissions").is_some(),
                "{sub}/{name}: no permissions"
            );
            let mut in_permissions = false;
            for line in body.lines() {
                let trimmed = line.trim_start();
                if trimmed.starts_with("permissions:") {
                    in_permissions = !trimmed.contains("{}");
                    continue;
                }
                let indent = line.len() - trimmed.len();
                if in_permissions && !trimmed.is_empty() && !trimmed.starts_with('#') {
                    if !trimmed.contains(": ") || trimmed.ends_with(':') || indent == 0 {
                        in_permissions = false;
                        continue;
                    }
                    assert!(
                        trimmed.contains(" # "),
                        "{sub}/{name}: `{trimmed}` does not say why it is needed"
                    );
                }
            }
        }
        let expected: BTreeSet<String> = ["apply.yml", "approvals.yml", "check.yml", "expire.yml"]
            .map(String::from)
            .into();
        assert_eq!(using, expected, "{sub}");
    }
}

/// The conda recipe packages this version, and its test commands pass on the binary.
#[test]
fn recipe_packages_this_version_and_its_test_passes() {
    let recipe = yaml("recipe/recipe.yaml");
    assert_eq!(recipe["context"]["version"], VERSION);
    assert_eq!(recipe["schema_version"], 1);
    let script: Vec<&str> = recipe["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.get("script"))
        .flat_map(|s| s.as_array().unwrap())
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(script.contains(&"gatehouse --version"), "{script:?}");
    let check = script
        .iter()
        .find(|c| c.starts_with("gatehouse check "))
        .expect("the recipe's test runs gatehouse check");
    let args: Vec<&str> = check.split_whitespace().skip(1).collect();
    let out = gatehouse(&args, &root());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{check}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let build = recipe["build"]["script"].to_string();
    assert!(build.contains("cargo-bundle-licenses"), "{build}");
}

/// The action's install step, run with `curl` and `gh` replaced by stand-ins on PATH (`curl`
/// writes a release archive made from this binary to its `-o` file; `gh` exits as told, as
/// `gh attestation verify` exits 0 on a verified artifact and non-zero otherwise): an archive
/// whose provenance does not verify is never unpacked, a verified one is put on PATH, and a
/// version that is not a release number is refused before anything is downloaded.
#[cfg(all(unix, target_arch = "x86_64", target_os = "linux"))]
#[test]
fn the_action_runs_only_a_verified_release() {
    use std::os::unix::fs::PermissionsExt;

    let action = yaml("action.yml");
    let step = &action["runs"]["steps"][0];
    let script = step["run"].as_str().unwrap();
    let repo = step["env"]["GATEHOUSE_REPO"].as_str().unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let name = format!("gatehouse-{VERSION}-x86_64-unknown-linux-musl");
    let staging = tmp.path().join("staging");
    std::fs::create_dir_all(staging.join(&name)).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_gatehouse"),
        staging.join(&name).join("gatehouse"),
    )
    .unwrap();
    let archive = tmp.path().join("release.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&staging)
        .arg(&name)
        .status()
        .unwrap();
    assert!(status.success());

    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let stub = |file: &str, body: String| {
        let path = bin.join(file);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    stub(
        "curl",
        format!(
            "#!/bin/sh\necho \"$@\" >> \"$STUB_LOG\"\nwhile [ \"$1\" != -o ]; do shift; done\ncp '{}' \"$2\"\n",
            archive.display()
        ),
    );
    stub(
        "gh",
        "#!/bin/sh\necho \"gh $*\" >> \"$STUB_LOG\"\nexit \"$GH_EXIT\"\n".to_string(),
    );

    let run = |case: &str, version: &str, gh_exit: &str| {
        let dir = tmp.path().join(case);
        std::fs::create_dir_all(dir.join("runner-temp")).unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .env("GATEHOUSE_REPO", repo)
            .env("GATEHOUSE_VERSION", version)
            .env("GH_EXIT", gh_exit)
            .env("STUB_LOG", dir.join("calls"))
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", dir.join("runner-temp"))
            .env("GITHUB_PATH", dir.join("github-path"))
            .env("GITHUB_OUTPUT", dir.join("github-output"))
            .output()
            .unwrap();
        let calls = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
        let unpacked = dir
            .join("runner-temp")
            .join(format!("gatehouse-{version}"))
            .join(&name)
            .exists();
        (out, calls, unpacked, dir)
    };

    // Provenance refused: nothing unpacked, nothing on PATH, the step fails.
    let (out, calls, unpacked, dir) = run("refused", VERSION, "1");
    assert_ne!(out.status.code(), Some(0));
    assert!(!unpacked, "an unverified archive was unpacked");
    assert!(!dir.join("github-path").exists());
    assert!(
        calls.contains(&format!(
            "gh attestation verify {}",
            dir.join("runner-temp")
                .join(format!("gatehouse-{VERSION}/{name}.tar.gz"))
                .display()
        )) && calls.contains(&format!("--source-ref refs/tags/v{VERSION}")),
        "{calls}"
    );
    assert!(
        calls.contains(&format!(
            "https://github.com/{repo}/releases/download/v{VERSION}/{name}.tar.gz"
        )),
        "{calls}"
    );

    // Verified: unpacked, on PATH, its path an output.
    let (out, _, unpacked, dir) = run("verified", VERSION, "0");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(unpacked);
    let path = std::fs::read_to_string(dir.join("github-path")).unwrap();
    assert!(path.trim_end().ends_with(&name), "{path}");
    let output = std::fs::read_to_string(dir.join("github-output")).unwrap();
    assert!(output.starts_with("path=") && output.trim_end().ends_with("/gatehouse"));

    // Not a release number: refused before any download.
    let (out, calls, _, _) = run("bad-version", "0.1.0 --insecure", "0");
    assert_ne!(out.status.code(), Some(0));
    assert!(calls.is_empty(), "{calls}");
    assert!(text(&out.stdout).contains("is not a release number"));
}
