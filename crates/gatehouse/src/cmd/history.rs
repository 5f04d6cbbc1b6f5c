//! `gatehouse history <project>`: a project's grants over time, from the git log of its
//! ledger file. Git history is the audit trail; this reads it as grants instead of diffs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use gatehouse_core::model::{Grant, GrantFile};
use gatehouse_core::names::validate_project_name;
use gatehouse_core::parse::parse_yaml;
use serde::Serialize;

use crate::cli::{HistoryArgs, PlanFormat};

/// One change to one grant in one commit.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Event {
    pub commit: String,
    pub date: String,
    pub author: String,
    pub subject: String,
    pub resource: String,
    /// `granted`, `revoked` or `changed`.
    pub change: &'static str,
    pub details: String,
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("running git (is it installed?)")
}

fn summary(g: &Grant) -> String {
    let mut parts = vec![format!("granted {}", g.granted.value)];
    parts.push(match &g.expires {
        Some(e) => format!("until {}", e.value),
        None => "no expiry".into(),
    });
    if g.pull_request {
        parts.push("pull requests".into());
    }
    if g.forks {
        parts.push("forks".into());
    }
    if let Some(u) = &g.users {
        parts.push(format!(
            "users {}",
            u.users
                .iter()
                .map(|x| x.value.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(r) = &g.request {
        parts.push(r.value.clone());
    }
    parts.join("; ")
}

/// The project's grant events, oldest first.
pub fn history(dir: &Path, project: &str) -> anyhow::Result<Vec<Event>> {
    if let Err(e) = validate_project_name(project) {
        bail!("`{project}` is not a project name: it {e}");
    }
    let path = format!("grants/{project}.yml");
    let log = git(
        dir,
        &[
            "log",
            "--reverse",
            "--format=%H%x1f%aI%x1f%an%x1f%s",
            "--",
            &path,
        ],
    )?;
    if !log.status.success() {
        bail!(
            "git log failed in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&log.stderr).trim()
        );
    }
    let mut events = Vec::new();
    let mut before: BTreeMap<String, String> = BTreeMap::new();
    for line in String::from_utf8_lossy(&log.stdout).lines() {
        let mut f = line.split('\u{1f}');
        let (Some(sha), Some(date), Some(author), Some(subject)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let show = git(dir, &["show", &format!("{sha}:{path}")])?;
        let now: BTreeMap<String, String> = if show.status.success() {
            match parse_yaml::<GrantFile>(&path, &show.stdout) {
                Ok(file) => file
                    .grants
                    .iter()
                    .map(|g| (g.resource.value.clone(), summary(g)))
                    .collect(),
                // A commit where the file did not parse changed nothing that counted.
                Err(_) => continue,
            }
        } else {
            BTreeMap::new() // the file was deleted: every grant revoked
        };
        let event = |resource: &str, change, details: String| Event {
            commit: sha[..sha.len().min(12)].to_string(),
            date: date.get(..10).unwrap_or(date).to_string(),
            author: author.to_string(),
            subject: subject.to_string(),
            resource: resource.to_string(),
            change,
            details,
        };
        for (resource, s) in &now {
            match before.get(resource) {
                None => events.push(event(resource, "granted", s.clone())),
                Some(old) if old != s => events.push(event(resource, "changed", s.clone())),
                Some(_) => {}
            }
        }
        for (resource, s) in &before {
            if !now.contains_key(resource) {
                events.push(event(resource, "revoked", s.clone()));
            }
        }
        before = now;
    }
    Ok(events)
}

pub fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let events = history(&args.dir, &args.project)?;
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
