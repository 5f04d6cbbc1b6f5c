//! `gatehouse import cirun`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use gatehouse_core::Diagnostic;
use gatehouse_core::import::cirun::{self, ImportOptions};
use gatehouse_core::parse::MAX_FILE_BYTES;
use jiff::civil::Date;

use crate::cli::ImportCirunArgs;
use crate::fsutil::write_tree;
use crate::report::{self, Format};

fn read_limited(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        meta.len() <= MAX_FILE_BYTES as u64,
        "{} is {} bytes; the limit is 1 MiB",
        path.display(),
        meta.len()
    );
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// YAML text of a model value, as gatehouse writes it.
pub fn to_yaml<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    serde_saphyr::to_string(value).context("rendering YAML")
}

pub fn run_cirun(args: ImportCirunArgs, today: Date) -> anyhow::Result<ExitCode> {
    let granted = match &args.granted {
        Some(s) => super::today(Some(s)).context("--granted")?,
        None => today,
    };
    let access_bytes = read_limited(&args.access)?;
    let runner_bytes = read_limited(&args.runners)?;
    let access_name = args.access.display().to_string();
    let runners_name = args.runners.display().to_string();
    let (access, global) =
        match cirun::parse(&access_name, &access_bytes, &runners_name, &runner_bytes) {
            Ok(parsed) => parsed,
            Err(diags) => {
                report::print(Format::Human, Path::new("."), &diags)?;
                return Ok(ExitCode::from(1));
            }
        };
    let imported = cirun::import(
        &access,
        &access_name,
        &global,
        &runners_name,
        &ImportOptions {
            provider: &args.provider,
            repo_suffix: &args.repo_suffix,
            granted,
        },
    );

    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    if !args.out.join("gatehouse.yml").exists() {
        let settings = format!(
            "# Written by `gatehouse import cirun`; see `gatehouse schema settings`.\norg: {}\nrepo_suffix: \"{}\"\nreviewers: {{ teams: [core], min_approvals: 1 }}\nguard: {{ mode: enforce }}\nproviders:\n  {}: {{ kind: cirun, access_repo: .cirun }}\n",
            args.org, args.repo_suffix, args.provider
        );
        files.push(("gatehouse.yml".into(), settings.into_bytes()));
    }
    for r in &imported.resources {
        files.push((
            format!("resources/{}.yml", r.name.value),
            to_yaml(r)?.into_bytes(),
        ));
    }
    for g in &imported.grants {
        files.push((
            format!("grants/{}.yml", g.project.value),
            to_yaml(g)?.into_bytes(),
        ));
    }
    write_tree(&args.out, &files, args.force)?;

    let warnings: Vec<Diagnostic> = imported.warnings;
    if !warnings.is_empty() {
        report::print(Format::Human, Path::new("."), &warnings)?;
    }
    let grants: usize = imported.grants.iter().map(|g| g.grants.len()).sum();
    println!(
        "imported {} resources and {} grants for {} projects into {}",
        imported.resources.len(),
        grants,
        imported.grants.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
