//! `gatehouse plan`: what `apply` would do (`gatehouse_apply::plan`), read-only.

use std::process::ExitCode;

use gatehouse_apply::plan::{make_plan, markdown, text};
use jiff::civil::Date;

use crate::cli::{PlanArgs, PlanFormat};

pub fn run(args: PlanArgs, today: Date) -> anyhow::Result<ExitCode> {
    let repo = super::load_repo_warn(&args.dir, today)?;
    let plan = make_plan(&repo, today);
    let text = match args.format {
        PlanFormat::Json => serde_json::to_string_pretty(&plan)? + "\n",
        PlanFormat::Text => text(&plan),
        PlanFormat::Markdown => markdown(&plan),
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
