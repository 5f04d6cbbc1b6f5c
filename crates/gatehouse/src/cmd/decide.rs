//! `gatehouse decide` and `gatehouse explain`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use gatehouse_core::duration::Day;
use gatehouse_policy::{Decision, DenyReason, JobContext, Missing, Policy, compile};
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
    let decision = settled(&policy, &job, decision);
    match args.format {
        DecisionFormat::Json => {
            let mut doc = decision_json(&policy, &job, &decision);
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
            match (&decision, message(&policy, &job, &decision)) {
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
pub fn decision_json(policy: &Policy, job: &JobContext, d: &Decision) -> serde_json::Value {
    let mut doc = serde_json::json!({ "outcome": d.outcome() });
    if let Some(r) = d.resource() {
        doc["resource"] = policy.resource(r).name.as_ref().into();
    }
    if let Some(rule) = d.rule() {
        doc["rule"] = rule.code().into();
    }
    if let Some(m) = message(policy, job, d) {
        doc["message"] = m.into();
    }
    doc
}

/// A job file holds every fact but the members of the teams its grant names, which it may
/// leave out: without them a person the grant lists only through a team cannot be judged, and
/// the job is refused (`facts-unavailable`), never let in.
fn settled(policy: &Policy, job: &JobContext, d: Decision) -> Decision {
    match d {
        Decision::Undecided { resource, missing } => {
            Decision::facts_unavailable(policy, &job.repository, resource, missing)
        }
        d => d,
    }
}

/// What the person reads: the policy's message, except for a fact the job file left out,
/// which the policy's words (about asking GitHub) do not describe.
fn message(policy: &Policy, job: &JobContext, d: &Decision) -> Option<String> {
    let Decision::Deny(denial) = d else {
        return None;
    };
    let DenyReason::FactsUnavailable(Missing::Teams) = denial.reason else {
        return d.message();
    };
    let teams = denial
        .resource
        .map(|r| policy.teams_of(&job.repository, r))
        .unwrap_or_default();
    let named = teams
        .iter()
        .filter(|t| !job.teams.keys().any(|k| k.eq_ignore_ascii_case(t)))
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "team membership could not be checked: the job names someone who is not listed by name in the grant, and does not say who is in its teams {named}, so the job is refused rather than let in. Give their members' account ids in the job's `teams` (`\"teams\": {{\"<team-slug>\": [<id>, ...]}}`)"
    ))
}
