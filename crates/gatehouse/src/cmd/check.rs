//! `gatehouse check`.

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_core::check::{CHECKS, check_online, online_targets, run_except};
use gatehouse_core::{Diagnostic, Span, repo};
use jiff::civil::Date;

use crate::cli::CheckArgs;
use crate::report;

pub fn run(args: CheckArgs, today: Date, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    if args.list {
        for (name, _) in CHECKS {
            println!("{name}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let repo = repo::load_dir(&args.dir)?;
    let mut diags = run_except(&repo, today, &args.skip);
    if args.online {
        match std::env::var("GITHUB_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
        {
            Some(token) => {
                let org = repo
                    .settings
                    .as_ref()
                    .map(|s| (s.value.org.value.clone(), s.value.repo_suffix.clone()));
                if let Some((org, suffix)) = org {
                    let (projects, logins) = online_targets(&repo);
                    let facts = gatehouse_apply::online::gather(
                        &token, &org, &suffix, &projects, &logins, rt,
                    )
                    .context("online checks")?;
                    diags.extend(check_online(&repo, &facts));
                }
            }
            None => {
                let d = Diagnostic {
                    severity: if args.strict {
                        gatehouse_core::Severity::Error
                    } else {
                        gatehouse_core::Severity::Warning
                    },
                    ..Diagnostic::warning(
                        "online-skipped",
                        "",
                        Span::UNKNOWN,
                        "online checks skipped: GITHUB_TOKEN is not set",
                    )
                    .with_help("export GITHUB_TOKEN (a token that can read public repositories) and run again")
                };
                diags.push(d);
            }
        }
    }
    let has_errors = diags.has_errors();
    let sorted = diags.sorted();
    report::print(args.format, &args.dir, &sorted)?;
    Ok(if has_errors {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
