//! `gatehouse plan`: what `apply` would do (`gatehouse_apply::plan`), read-only.

use std::process::ExitCode;

use gatehouse_apply::plan::{make_plan, markdown, read_cirun_switches, read_runner_limits, text};
use jiff::civil::Date;

use crate::cli::{PlanArgs, PlanFormat};

pub fn run(args: PlanArgs, today: Date, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let repo = super::load_repo_warn(&args.dir, today)?;
    let mut plan = make_plan(&repo, today);
    if args.online {
        read_cirun_switches(&mut plan, &repo, today, args.deactivate_ungranted, rt)?;
        read_runner_limits(&mut plan, &repo, today, rt)?;
    }
    let text = match args.format {
        PlanFormat::Json => serde_json::to_string_pretty(&plan)? + "\n",
        PlanFormat::Text => text(&plan),
        PlanFormat::Markdown => markdown(&plan),
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
