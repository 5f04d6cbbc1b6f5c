//! `gatehouse why <run or job URL>`: why a run's managed jobs were allowed, denied, or wait,
//! as the guard recorded it (`GET /api/v1/runs/{run_id}` on the guard), with the queue of the
//! resources they asked for.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use gatehouse_site::queue::{QueueRow, RecentJob};
use serde::Deserialize;

use crate::cli::{DecisionFormat, WhyArgs};

/// How long the guard has to answer.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A run on GitHub: `https://github.com/OWNER/NAME/actions/runs/RUN[/attempts/N][/job/JOB]`.
#[derive(Debug, PartialEq, Eq)]
pub struct RunRef {
    pub repository: String,
    pub run_id: i64,
    pub job_id: Option<i64>,
}

/// Reads a run's or a job's URL, as GitHub shows it in the browser.
pub fn parse_run_url(url: &str) -> anyhow::Result<RunRef> {
    let wrong = || {
        anyhow::anyhow!(
            "`{url}` is not the address of a workflow run or job: copy it from the run's page, such as https://github.com/conda-forge/numpy-feedstock/actions/runs/123456789 (or .../job/987654321)"
        )
    };
    let path = url
        .trim()
        .strip_prefix("https://github.com/")
        .or_else(|| url.trim().strip_prefix("http://github.com/"))
        .ok_or_else(wrong)?;
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (owner, name, rest) = match parts.as_slice() {
        [owner, name, "actions", "runs", rest @ ..] => (*owner, *name, rest),
        _ => return Err(wrong()),
    };
    let run_id: i64 = rest
        .first()
        .and_then(|r| r.parse().ok())
        .ok_or_else(wrong)?;
    let job_id = match rest.get(1..).unwrap_or_default() {
        [] => None,
        ["job", job, ..] | ["attempts", _, "job", job, ..] => {
            Some(job.parse().map_err(|_| wrong())?)
        }
        ["attempts", _] => None,
        _ => return Err(wrong()),
    };
    Ok(RunRef {
        repository: format!("{owner}/{name}"),
        run_id,
        job_id,
    })
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct RunAnswer {
    repository: String,
    run_id: i64,
    decisions: Vec<RecentJob>,
    queue: Vec<QueueRow>,
}

pub fn run(args: WhyArgs) -> anyhow::Result<ExitCode> {
    let target = parse_run_url(&args.url)?;
    let url = reqwest::Url::parse_with_params(
        &format!(
            "{}/api/v1/runs/{}",
            args.guard.trim_end_matches('/'),
            target.run_id
        ),
        &[("repository", target.repository.as_str())],
    )
    .with_context(|| {
        format!(
            "--guard `{}` is not an address (http://host:port)",
            args.guard
        )
    })?;
    let fetch = async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("gatehouse-why/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let resp = client.get(url).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        anyhow::Ok((status, body))
    };
    let (status, body) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(fetch)
        .with_context(|| format!("asking the guard at {}", args.guard))?;
    if status == reqwest::StatusCode::NOT_FOUND {
        let said: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        anyhow::bail!(
            "run {} of {}: {}",
            target.run_id,
            target.repository,
            said["error"]
                .as_str()
                .unwrap_or("the guard does not know this run")
        );
    }
    if !status.is_success() {
        anyhow::bail!(
            "the guard at {} answered {status}: is it gatehouse serve, and is --guard its address?",
            args.guard
        );
    }
    let mut answer: RunAnswer = serde_json::from_slice(&body)
        .context("the guard's answer does not read as a run: is --guard the guard's address?")?;
    if let Some(job) = target.job_id {
        answer.decisions.retain(|d| d.job_id == job);
        if answer.decisions.is_empty() {
            anyhow::bail!(
                "the guard recorded no decision about job {job} of run {}: it asked for no managed resource",
                target.run_id
            );
        }
    }
    match args.format {
        DecisionFormat::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
        DecisionFormat::Text => print!("{}", text(&answer)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The answer in words.
fn text(a: &RunAnswer) -> String {
    let mut out = format!("run {} of {}\n", a.run_id, a.repository);
    for d in &a.decisions {
        let resource = d.resource.as_deref().unwrap_or("no managed resource");
        let rule = d
            .rule
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  job {} on {resource}: {}{rule}, by the {} at {}\n",
            d.job_id, d.outcome, d.origin, d.decided_at
        ));
        if let Some(message) = &d.message {
            out.push_str(&format!("    {message}\n"));
        }
    }
    for q in &a.queue {
        let cap = match q.concurrency {
            Some(c) => format!("{} of {c} machines held", q.holding),
            None => format!("{} running, no cap", q.holding),
        };
        let full = if q.full() { " (full)" } else { "" };
        let oldest = q
            .oldest_wait_minutes
            .map(|m| format!(", the oldest waiting {m} min"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  queue of {}: {cap}{full}, {} queued{oldest}, {} waiting for a slot\n",
            q.resource, q.queued, q.waiting
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_and_job_addresses_read_as_github_shows_them() {
        let run = parse_run_url("https://github.com/conda-forge/numpy-feedstock/actions/runs/123")
            .unwrap();
        assert_eq!(
            run,
            RunRef {
                repository: "conda-forge/numpy-feedstock".into(),
                run_id: 123,
                job_id: None
            }
        );
        let job = parse_run_url(
            "https://github.com/conda-forge/numpy-feedstock/actions/runs/123/job/456?pr=7",
        )
        .unwrap();
        assert_eq!(job.job_id, Some(456));
        let attempt = parse_run_url("https://github.com/o/r/actions/runs/123/attempts/2").unwrap();
        assert_eq!((attempt.run_id, attempt.job_id), (123, None));
        for bad in [
            "https://github.com/o/r/pull/5",
            "https://gitlab.com/o/r/actions/runs/1",
            "https://github.com/o/r/actions/runs/abc",
            "https://github.com/o/r/actions/runs/1/job/x",
            "123",
        ] {
            let e = parse_run_url(bad).unwrap_err().to_string();
            assert!(
                e.contains("not the address of a workflow run"),
                "{bad}: {e}"
            );
        }
    }
}
