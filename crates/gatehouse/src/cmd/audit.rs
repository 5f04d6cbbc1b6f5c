//! `gatehouse audit`: what is read and found is `gatehouse_apply::audit`; this prints it with
//! `check`'s renderers or as SARIF.

use std::path::Path;
use std::process::ExitCode;

use gatehouse_apply::audit::{self, AuditOptions};
use jiff::civil::Date;

use crate::cli::{AuditArgs, AuditFormat};
use crate::report;

pub fn run(args: AuditArgs, today: Date, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let options = AuditOptions {
        dir: args.dir,
        projects: args.projects,
        db: args.db,
        online: args.online,
        idle_days: args.idle_days,
    };
    let all = audit::run(&options, today, rt)?;
    let high = all.has_errors();
    let sorted = all.sorted();
    match args.format {
        AuditFormat::Human => report::print(report::Format::Human, Path::new(""), &sorted)?,
        AuditFormat::Github => report::print(report::Format::Github, Path::new(""), &sorted)?,
        AuditFormat::Json => report::print(report::Format::Json, Path::new(""), &sorted)?,
        AuditFormat::Sarif => {
            let doc = audit::sarif(&sorted);
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
    }
    Ok(if high {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
