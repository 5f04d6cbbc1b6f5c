//! `gatehouse init`: writes a new access repository, the minimal skeleton or a bundled example.

use std::process::ExitCode;

use anyhow::{Context, ensure};
use gatehouse_core::Repo;
use gatehouse_core::check::codeowners;
use gatehouse_core::repo::CODEOWNERS_FILE;

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
            with_codeowners(skeleton(&args.org))?
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
        println!("  - after changing reviewers: gatehouse ci codeowners {dir}");
        println!("  - replace resources/gpu.yml with your own resources");
    }
    println!("  - gatehouse check {dir}");
    println!("  - push it to GitHub: .github/workflows/check.yml checks every pull request");
    Ok(ExitCode::SUCCESS)
}

/// `files` with `.github/CODEOWNERS` made from their reviewers, as `gatehouse ci codeowners`
/// makes it: GitHub then asks the right people to review from the first pull request, and
/// `check` (which compares the file with the reviewers) accepts the skeleton as written.
fn with_codeowners(mut files: Vec<(String, String)>) -> anyhow::Result<Vec<(String, String)>> {
    let repo = Repo::from_sources(files.clone());
    let owners = codeowners(&repo).context("the skeleton's gatehouse.yml does not load")?;
    files.retain(|(path, _)| path != CODEOWNERS_FILE);
    files.push((CODEOWNERS_FILE.to_string(), owners));
    Ok(files)
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
