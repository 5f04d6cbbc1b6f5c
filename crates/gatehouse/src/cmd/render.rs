//! `gatehouse render`.

use std::process::ExitCode;

use gatehouse_policy::render::{cedar, cirun};
use jiff::civil::Date;

use crate::cli::{RenderCedarArgs, RenderCirunArgs};
use crate::fsutil::write_atomic;

pub fn run_cirun(args: RenderCirunArgs, today: Date) -> anyhow::Result<ExitCode> {
    let repo = super::load_repo_warn(&args.dir, today)?;
    let text = cirun::render(&repo, args.provider.as_deref(), today)?;
    match &args.out {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_cedar(args: RenderCedarArgs, today: Date) -> anyhow::Result<ExitCode> {
    let repo = super::load_repo_warn(&args.dir, today)?;
    let rendered = cedar::render(&repo, today);
    let mut entities = serde_json::to_string_pretty(&rendered.entities)?;
    entities.push('\n');
    for (name, text) in [
        ("policies.cedar", rendered.policies.as_str()),
        ("entities.json", entities.as_str()),
        ("schema.cedarschema", cedar::SCHEMA),
    ] {
        let path = args.out.join(name);
        write_atomic(&path, text.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
