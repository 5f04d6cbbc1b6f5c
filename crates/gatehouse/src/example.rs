//! The repositories `gatehouse init` writes: the bundled conda-forge example and a minimal
//! skeleton. Both are compiled into the binary, so `init` works without the source tree.

/// Embeds the example's files, each path once: it is both the key and the file to include.
macro_rules! conda_forge_files {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../examples/conda-forge/", $path)))),*]
    };
}

/// Every file of `examples/conda-forge/`: (path relative to the example's top folder, contents).
/// The `init` tests compare this with the folder, so a file missing here fails them.
pub const CONDA_FORGE: &[(&str, &str)] = conda_forge_files![
    ".github/CODEOWNERS",
    ".github/PULL_REQUEST_TEMPLATE.md",
    ".github/workflows/apply.yml",
    ".github/workflows/approvals.yml",
    ".github/workflows/check.yml",
    ".github/workflows/expire.yml",
    ".github/workflows/review.yml",
    "README.md",
    "gatehouse.yml",
    "grants/conda-smithy.yml",
    "grants/cutlass.yml",
    "grants/flash-attn.yml",
    "grants/jaxlib.yml",
    "grants/libmagma.yml",
    "grants/mongodb.yml",
    "grants/onnxruntime.yml",
    "grants/pytorch-cpu.yml",
    "grants/ray-packages.yml",
    "grants/temporalio-cli.yml",
    "grants/tensorflow.yml",
    "grants/xformers.yml",
    "people/tos.yml",
    "requests/.keep",
    "requests/pytorch-cpu-namespace.yml",
    "requests/tinygrad.yml",
    "requests/xformers-gpu.yml",
    "resources/blacksmith.yml",
    "resources/cirrus_runners.yml",
    "resources/cirun-azure-windows-2xlarge.yml",
    "resources/cirun-azure-windows-4xlarge.yml",
    "resources/cirun-macos-m4-large.yml",
    "resources/cirun-openstack-cpu-2xlarge.yml",
    "resources/cirun-openstack-cpu-4xlarge.yml",
    "resources/cirun-openstack-cpu-large.yml",
    "resources/cirun-openstack-cpu-medium.yml",
    "resources/cirun-openstack-cpu-xlarge.yml",
    "resources/cirun-openstack-gpu-2xlarge.yml",
    "resources/cirun-openstack-gpu-4xlarge.yml",
    "resources/cirun-openstack-gpu-large.yml",
    "resources/cirun-openstack-gpu-xlarge.yml",
    "resources/depot.yml",
    "resources/namespace.yml",
    "resources/travis.yml",
];

/// Files the skeleton shares with the example word for word: nothing in them is conda-forge's.
const SHARED: &[&str] = &[
    ".github/PULL_REQUEST_TEMPLATE.md",
    ".github/workflows/apply.yml",
    ".github/workflows/approvals.yml",
    ".github/workflows/check.yml",
    ".github/workflows/expire.yml",
    ".github/workflows/review.yml",
];

/// `{org}` is replaced by the organisation.
const SKELETON_SETTINGS: &str = r#"# Organisation settings. Field reference: `gatehouse schema settings`.
org: {org}
repo_suffix: ""      # appended to a project name to get its repository name, e.g. "-feedstock"
reviewers: { teams: [core], min_approvals: 1 }   # team slugs in {org} whose members approve requests
guard: { mode: dry-run }   # only record what would be denied; switch to `enforce` once that looks right
providers:
  # How gatehouse reaches each provider; every resource names one of these.
  gpu-pool: { kind: runner-group, group: gpu }   # a GitHub runner group of {org}
"#;

const SKELETON_RESOURCE: &str = r#"# An example resource, to edit or delete. Field reference: `gatehouse schema resource`.
name: gpu
provider: gpu-pool                 # defined in gatehouse.yml
labels: [gpu-runner]               # the runs-on labels that route a job here
description: Linux x64 runners with one NVIDIA GPU
specs: { os: linux, arch: x64, gpu: 1x NVIDIA GPU }
eligibility: Projects whose tests need a GPU.
max_duration: 1y                   # every grant expires within a year of being granted
defaults: { pull_request: false }  # jobs of pull requests run only when a grant allows them
users: { roles: [admin, maintain, write], require_tos: false }
"#;

const SKELETON_TOS: &str = "\
# Who accepted the providers' terms of service, matched by numeric GitHub id:
# - { github: LOGIN, id: 123456, accepted: 2026-01-31 }
[]
";

/// The minimal repository `gatehouse init` writes without `--example`.
pub fn skeleton(org: &str) -> Vec<(String, String)> {
    let mut files = vec![
        (
            "gatehouse.yml".to_string(),
            SKELETON_SETTINGS.replace("{org}", org),
        ),
        (
            "resources/gpu.yml".to_string(),
            SKELETON_RESOURCE.to_string(),
        ),
        ("grants/.keep".to_string(), String::new()),
        ("requests/.keep".to_string(), String::new()),
        ("people/tos.yml".to_string(), SKELETON_TOS.to_string()),
    ];
    for (path, contents) in CONDA_FORGE {
        if SHARED.contains(path) {
            files.push((path.to_string(), contents.to_string()));
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use gatehouse_core::Repo;
    use gatehouse_core::check::run_all;
    use jiff::civil::date;

    use super::*;

    fn assert_clean(files: impl IntoIterator<Item = (String, String)>) {
        let repo = Repo::from_sources(files);
        let diags = run_all(&repo, date(2026, 11, 28)).sorted();
        assert!(diags.is_empty(), "{diags:#?}");
    }

    #[test]
    fn skeleton_passes_check() {
        let files = skeleton("my-org");
        assert!(files.iter().any(|(p, _)| p == "people/tos.yml"));
        assert_eq!(
            files
                .iter()
                .filter(|(p, _)| SHARED.contains(&p.as_str()))
                .count(),
            SHARED.len(),
            "a shared file is missing from CONDA_FORGE"
        );
        assert_clean(files);
    }

    #[test]
    fn conda_forge_passes_check() {
        assert_clean(
            CONDA_FORGE
                .iter()
                .map(|(p, c)| (p.to_string(), c.to_string())),
        );
    }
}
