//! `gatehouse replay`: the guard's stored queued jobs decided again against the policy on disk
//! (the work is in `gatehouse_server::replay`; this prints it).

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_server::replay::{ReplayReport, ReplayedJob, Verdict, replay};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::cli::{DecisionFormat, ReplayArgs};

pub fn run(args: ReplayArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let since = parse_since(&args.since)?;
    let report = rt.block_on(replay(&args.dir, &args.db, since))?;
    match args.format {
        DecisionFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        DecisionFormat::Text => print_text(&report),
    }
    Ok(if report.changed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
fn parse_since(text: &str) -> anyhow::Result<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let day: Date = text.parse().with_context(|| {
        format!("--since `{text}` is neither a date (2026-11-29) nor a time (2026-11-29T10:00:00Z)")
    })?;
    TimeZone::UTC
        .to_timestamp(day.to_datetime(jiff::civil::Time::midnight()))
        .context("--since is out of range")
}

fn show(v: &Verdict) -> String {
    let mut s = v.outcome.clone();
    if let Some(rule) = &v.rule {
        s.push_str(&format!(" ({rule})"));
    }
    if let Some(resource) = &v.resource {
        s.push_str(&format!(" on {resource}"));
    }
    s
}

fn print_text(report: &ReplayReport) {
    for job in &report.changed {
        print_job(job);
    }
    println!(
        "{} queued job(s) since {} decided again: {} would change",
        report.replayed,
        report.since,
        report.changed.len()
    );
}

fn print_job(job: &ReplayedJob) {
    println!(
        "{} job {} (run {}, delivery {}, {}): {} -> {}",
        job.repository,
        job.job_id,
        job.run_id,
        job.delivery_id,
        job.received_at,
        show(&job.before),
        show(&job.after)
    );
    if let Some(note) = &job.note {
        println!("    note: {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_date_or_a_time() {
        assert_eq!(
            parse_since("2026-11-29").unwrap().to_string(),
            "2026-11-29T00:00:00Z"
        );
        assert_eq!(
            parse_since("2026-11-29T10:30:00Z").unwrap().to_string(),
            "2026-11-29T10:30:00Z"
        );
        let e = parse_since("yesterday").unwrap_err().to_string();
        assert!(e.contains("--since `yesterday`"), "{e}");
    }
}
