//! `gatehouse ci`: files the access repository's own CI needs, generated from the ledger.

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_core::check::codeowners;
use gatehouse_core::repo::{self, CODEOWNERS_FILE};

use crate::cli::CodeownersArgs;

/// Writes `.github/CODEOWNERS` (atomically), or with `--check` only compares: exit 1 when the
/// file is missing or differs.
pub fn run_codeowners(args: CodeownersArgs) -> anyhow::Result<ExitCode> {
    let repo = repo::load_dir(&args.dir)?;
    let wanted = codeowners(&repo).with_context(|| {
        format!(
            "{} has no gatehouse.yml that loads; its reviewers are what CODEOWNERS is made of",
            args.dir.display()
        )
    })?;
    let present = repo.codeowners.as_ref().map(|c| c.value.as_str());
    let path = args.dir.join(CODEOWNERS_FILE);
    if args.check {
        return Ok(if present == Some(wanted.as_str()) {
            println!("{} is up to date", path.display());
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "{} is {}: run `gatehouse ci codeowners {}` and commit the result",
                path.display(),
                if present.is_some() {
                    "out of date"
                } else {
                    "missing"
                },
                args.dir.display()
            );
            ExitCode::from(1)
        });
    }
    if present == Some(wanted.as_str()) {
        println!("{} is up to date", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    crate::fsutil::write_atomic(&path, wanted.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}
