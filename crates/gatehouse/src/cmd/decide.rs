//! `gatehouse decide` and `gatehouse explain`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use gatehouse_core::duration::Day;
use gatehouse_policy::{Decision, JobContext, Policy, compile};
use jiff::civil::Date;

use crate::cli::{DecideArgs, DecisionFormat};

/// Job files are small; anything bigger is a mistake or an attack.
const MAX_JOB_BYTES: u64 = 1024 * 1024;

fn read_job(path: &std::path::Path) -> anyhow::Result<JobContext> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_JOB_BYTES + 1)
            .read_to_end(&mut bytes)
            .context("reading the job from standard input")?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_JOB_BYTES + 1).read_to_end(&mut bytes))
            .with_context(|| format!("reading {}", path.display()))?;
    }
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_JOB_BYTES,
        "{}: the job context is over 1 MiB",
        path.display()
    );
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}: not a job context (see `gatehouse decide --help` for its fields)",
            path.display()
        )
    })
}

pub fn run(args: DecideArgs, today: Date, explain: bool) -> anyhow::Result<ExitCode> {
    let mut job = read_job(&args.job)?;
    if job.today.is_none() {
        job.today = Some(Day(today));
    }
    let repo = super::load_repo_warn(&args.dir, today)?;
    let policy = compile(&repo, today);
    let (decision, steps) = if explain {
        let (d, s) = policy.explain(&job);
        (d, Some(s))
    } else {
        (policy.decide(&job), None)
    };
    match args.format {
        DecisionFormat::Json => {
            let mut doc = decision_json(&policy, &decision);
            if let Some(steps) = steps {
                doc["steps"] = serde_json::to_value(steps)?;
            }
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        DecisionFormat::Text => {
            if let Some(steps) = &steps {
                for s in steps {
                    println!(
                        "{} {}: {}",
                        if s.passed { "  ok" } else { "DENY" },
                        s.rule,
                        s.detail
                    );
                }
            }
            let resource = decision
                .resource()
                .map(|r| format!(" `{}`", policy.resource(r).name))
                .unwrap_or_default();
            match (&decision, decision.message()) {
                (Decision::Deny(d), Some(msg)) => {
                    println!("deny{resource} ({}): {msg}", d.rule)
                }
                _ => println!("{}{resource}", decision.outcome()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON form of a decision: `{"outcome", "resource"?, "rule"?, "message"?}`.
pub fn decision_json(policy: &Policy, d: &Decision) -> serde_json::Value {
    let mut doc = serde_json::json!({ "outcome": d.outcome() });
    if let Some(r) = d.resource() {
        doc["resource"] = policy.resource(r).name.as_ref().into();
    }
    if let Some(rule) = d.rule() {
        doc["rule"] = rule.code().into();
    }
    if let Some(m) = d.message() {
        doc["message"] = m.into();
    }
    doc
}
