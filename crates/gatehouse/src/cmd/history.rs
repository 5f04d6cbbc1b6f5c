//! `gatehouse history <project>`: a project's grants over time, from the git log of its
//! ledger file (read by `gatehouse-history`), and with `--db` the run approvals the guard
//! recorded on its repository.

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_core::repo::load_dir;
use gatehouse_history::history;

use crate::cli::{HistoryArgs, PlanFormat};

pub fn run(args: HistoryArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    // Project names compare case-insensitively, git's paths do not: `PyTorch-CPU` reads the
    // history of `grants/pytorch-cpu.yml` when that is the project's file now. (The name is
    // validated by `history` before it becomes a path.)
    let repo = load_dir(&args.dir).ok();
    let file = repo
        .as_ref()
        .and_then(|repo| repo.grant_file(&args.project).map(|f| f.stem().to_string()));
    let mut events = history(&args.dir, file.as_deref().unwrap_or(&args.project))?;
    // The guard's run approvals of the project's repository, from its store.
    if let Some(url) = &args.db {
        let settings = repo.as_ref().and_then(|r| r.settings.as_ref()).context(
            "--db needs the access repository's gatehouse.yml, which says the project's repository",
        )?;
        let repository = settings
            .value
            .repository_of(&args.project)
            .to_ascii_lowercase();
        let approvals = gatehouse_apply::run_approval_rows::history(url, &repository, rt)?;
        events = gatehouse_history::run_approvals::merge(events, &approvals);
    }
    match args.format {
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&events)?),
        PlanFormat::Markdown => {
            println!(
                "| date | change | resource | details | commit |\n| --- | --- | --- | --- | --- |"
            );
            for e in &events {
                println!(
                    "| {} | {} | `{}` | {} | {} {} |",
                    e.date,
                    e.change,
                    e.resource,
                    e.details.replace('|', "\\|"),
                    e.commit,
                    e.subject.replace('|', "\\|")
                );
            }
        }
        PlanFormat::Text => {
            if events.is_empty() {
                println!(
                    "{} has no grant history in {}",
                    args.project,
                    args.dir.display()
                );
            }
            for e in &events {
                println!(
                    "{}  {:<8} {}: {}  [{} {}: {}]",
                    e.date, e.change, e.resource, e.details, e.commit, e.author, e.subject
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
