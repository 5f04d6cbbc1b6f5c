//! `gatehouse render`.

use std::process::ExitCode;

use gatehouse_policy::render::cirun;
use jiff::civil::Date;

use crate::cli::RenderCirunArgs;
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
