//! `gatehouse init`: writes a new access repository, the minimal skeleton or a bundled example.

use std::process::ExitCode;

use anyhow::ensure;

use crate::cli::{Example, InitArgs};
use crate::example::{CONDA_FORGE, skeleton};
use crate::fsutil::write_tree;

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let files: Vec<(String, String)> = match args.example {
        Some(Example::CondaForge) => CONDA_FORGE
            .iter()
            .map(|(path, contents)| (path.to_string(), contents.to_string()))
            .collect(),
        None => {
            check_org(&args.org)?;
            skeleton(&args.org)
        }
    };
    let files: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|(path, contents)| (path, contents.into_bytes()))
        .collect();
    write_tree(&args.dir, &files, args.force)?;

    let dir = args.dir.display();
    println!("wrote {} files into {dir}:", files.len());
    for (path, _) in &files {
        println!("  {path}");
    }
    println!("\nnext steps:");
    if args.example.is_none() {
        println!("  - edit gatehouse.yml: reviewers and providers");
        println!("  - replace resources/gpu.yml with your own resources");
    }
    println!("  - gatehouse check {dir}");
    println!("  - push it to GitHub: .github/workflows/check.yml checks every pull request");
    Ok(ExitCode::SUCCESS)
}

/// The organisation is written into YAML unquoted, so only a valid GitHub organisation name
/// (letters, digits and inner hyphens, at most 39 characters) is accepted.
fn check_org(org: &str) -> anyhow::Result<()> {
    let valid = !org.is_empty()
        && org.len() <= 39
        && !org.starts_with('-')
        && !org.ends_with('-')
        && org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    ensure!(
        valid,
        "--org `{org}` is not a GitHub organisation name: use letters, digits and hyphens (not at either end), at most 39 characters"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn org_names() {
        for good in ["conda-forge", "my-org", "a", "A1"] {
            assert!(super::check_org(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "x-", "a b", "org: x", "a/b", &"a".repeat(40)] {
            assert!(super::check_org(bad).is_err(), "{bad}");
        }
    }
}
