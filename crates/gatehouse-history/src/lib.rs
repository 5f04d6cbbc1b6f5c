//! What the access repository's git log says: each project's grant history ([`history`],
//! [`history_all`]) and the pull request behind each request file ([`request_links`]). Git
//! history is the audit trail; this reads it as grants instead of diffs.
//!
//! The one part of gatehouse that runs git for the ledger, shared by the command line
//! (`gatehouse history`, `gatehouse site`, `apply`) and the server's live pages.

pub mod git;
pub mod run_approvals;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail};
use gatehouse_core::Repo;
use gatehouse_core::model::{Grant, GrantFile};
use gatehouse_core::names::validate_project_name;
use gatehouse_core::parse::parse_yaml;
use serde::Serialize;

pub use git::is_checkout as is_git_checkout;

/// What the ledger's pages take from git (the site's `LedgerInputs` are made from it).
#[derive(Debug, Default)]
pub struct LedgerHistory {
    /// Project → its grant history, oldest first: every project of the repository has one,
    /// empty when git has none.
    pub events: BTreeMap<String, Vec<Event>>,
    /// Request file → the URL of the pull request that added it.
    pub request_links: BTreeMap<String, String>,
}

/// What the ledger's pages take from git: every project's grant history (each project of
/// `repo` has one, empty when git has none) and the pull request behind each request file,
/// linked under `repo_url` (`origin`'s GitHub address when `None`).
pub fn ledger_history(
    dir: &Path,
    repo: &Repo,
    repo_url: Option<&str>,
) -> anyhow::Result<LedgerHistory> {
    let mut all = history_all(dir).context("reading the grant history from git")?;
    for f in &repo.grants {
        all.entry(f.value.project.value.clone()).or_default();
    }
    let repo_url = match repo_url {
        Some(u) => Some(u.trim_end_matches('/').to_string()),
        None => origin_url(dir),
    };
    let request_links = match repo_url {
        Some(url) => request_links(dir, &url)?,
        None => BTreeMap::new(),
    };
    Ok(LedgerHistory {
        events: all,
        request_links,
    })
}

/// One change to one grant in one commit.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Event {
    pub commit: String,
    pub date: String,
    pub author: String,
    pub subject: String,
    pub resource: String,
    /// `granted`, `revoked` or `changed`; `run-approved` for a run approval the guard recorded
    /// ([`run_approvals`]).
    pub change: &'static str,
    pub details: String,
}

/// The part of a grant's summary that says a configuration pull request was sent (`send_pr`).
const SENT_PR: &str = "configuration pull request";

fn summary(g: &Grant) -> String {
    let mut parts = vec![format!("granted {}", g.granted.value)];
    parts.push(match &g.expires {
        Some(e) => format!("until {}", e.value),
        None => "no expiry".into(),
    });
    if g.pull_request {
        parts.push("pull requests".into());
    }
    match g.forks {
        Some(true) => parts.push("forks".into()),
        Some(false) => parts.push("no forks".into()),
        None => {}
    }
    if let Some(u) = &g.users {
        parts.push(format!(
            "users {}",
            u.users
                .iter()
                .map(|x| x.login())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if g.send_pr {
        parts.push(SENT_PR.into());
    }
    if let Some(r) = &g.request {
        parts.push(r.value.clone());
    }
    parts.join("; ")
}

/// A grant file's grants, resource → summary; `None` when it does not parse.
fn snapshot(path: &str, bytes: &[u8]) -> Option<BTreeMap<String, String>> {
    parse_yaml::<GrantFile>(path, bytes).ok().map(|file| {
        file.grants
            .iter()
            .map(|g| (g.resource.value.clone(), summary(g)))
            .collect()
    })
}

/// One commit of the log, as `%H`, `%aI`, `%an` and `%s`.
struct Commit<'a> {
    sha: &'a str,
    date: &'a str,
    author: &'a str,
    subject: &'a str,
}

impl Commit<'_> {
    /// The events of the change from `before` to `now` in this commit.
    fn diff_into(
        &self,
        before: &BTreeMap<String, String>,
        now: &BTreeMap<String, String>,
        events: &mut Vec<Event>,
    ) {
        let event = |resource: &str, change, details: String| Event {
            commit: self.sha[..self.sha.len().min(12)].to_string(),
            date: self.date.get(..10).unwrap_or(self.date).to_string(),
            author: self.author.to_string(),
            subject: self.subject.to_string(),
            resource: resource.to_string(),
            change,
            details,
        };
        for (resource, s) in now {
            match before.get(resource) {
                None => events.push(event(resource, "granted", s.clone())),
                Some(old) if old != s => events.push(event(resource, "changed", s.clone())),
                Some(_) => {}
            }
        }
        for (resource, s) in before {
            if !now.contains_key(resource) {
                events.push(event(resource, "revoked", s.clone()));
            }
        }
    }
}

/// The project's grant events, oldest first.
pub fn history(dir: &Path, project: &str) -> anyhow::Result<Vec<Event>> {
    if let Err(e) = validate_project_name(project) {
        bail!("`{project}` is not a project name: it {e}");
    }
    let path = format!("grants/{project}.yml");
    let log = git::log(
        dir,
        &["--reverse", "--format=%H%x1f%aI%x1f%an%x1f%s", "--", &path],
    )?;
    let mut events = Vec::new();
    let mut before: BTreeMap<String, String> = BTreeMap::new();
    for line in log.lines() {
        let mut f = line.split('\u{1f}');
        let (Some(sha), Some(date), Some(author), Some(subject)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        // `./` makes the path relative to `dir`, so an access repository in a subfolder of
        // its git checkout (like examples/conda-forge) reads its own files.
        let show = git::run(dir, &["show", &format!("{sha}:./{path}")])?;
        let now = if show.status.success() {
            match snapshot(&path, &show.stdout) {
                Some(now) => now,
                // A commit where the file did not parse changed nothing that counted.
                None => continue,
            }
        } else {
            BTreeMap::new() // the file was deleted: every grant revoked
        };
        let commit = Commit {
            sha,
            date,
            author,
            subject,
        };
        commit.diff_into(&before, &now, &mut events);
        before = now;
    }
    Ok(events)
}

/// Every project's grant events, oldest first, keyed by project: what [`history`] gives for
/// each, read with two git processes in all (one `git log --raw` of `grants/`, one
/// `git cat-file --batch` for the blobs it names) instead of two per project and commit, so
/// a ledger of thousands of projects is read in a fraction of a second.
pub fn history_all(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<Event>>> {
    let text = git::log(
        dir,
        &[
            "--reverse",
            "--no-renames",
            "--relative",
            "--raw",
            "--no-abbrev",
            "--format=%x1e%H%x1f%aI%x1f%an%x1f%s",
            "--",
            "grants/",
        ],
    )?;

    // (commit header, [(project, path, the new blob or None when deleted)]) in log order.
    type Files = Vec<(String, String, Option<String>)>;
    let mut commits: Vec<(Commit, Files)> = Vec::new();
    for record in text.split('\u{1e}').filter(|r| !r.trim().is_empty()) {
        let mut lines = record.lines();
        let header = lines.next().unwrap_or_default();
        let mut f = header.split('\u{1f}');
        let (Some(sha), Some(date), Some(author), Some(subject)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let mut files = Vec::new();
        for line in lines {
            // `:100644 100644 <old blob> <new blob> M<TAB>grants/x.yml`
            let Some((meta, path)) = line.split_once('\t') else {
                continue;
            };
            let meta: Vec<&str> = meta.split(' ').collect();
            let (Some(blob), Some(status)) = (meta.get(3), meta.get(4)) else {
                continue;
            };
            let Some(project) = path
                .strip_prefix("grants/")
                .and_then(|n| n.strip_suffix(".yml"))
            else {
                continue;
            };
            if validate_project_name(project).is_err() {
                continue;
            }
            let blob = (!status.starts_with('D')).then(|| blob.to_string());
            files.push((project.to_string(), path.to_string(), blob));
        }
        commits.push((
            Commit {
                sha,
                date,
                author,
                subject,
            },
            files,
        ));
    }

    // Blobs by id: git finds each at once, where `commit:path` would walk a tree per file.
    let wanted: Vec<String> = commits
        .iter()
        .flat_map(|(_, files)| files.iter().filter_map(|f| f.2.clone()))
        .collect();
    let contents = git::cat_files(dir, &wanted)?;
    let paths: Vec<&str> = commits
        .iter()
        .flat_map(|(_, files)| files.iter().filter(|f| f.2.is_some()).map(|f| f.1.as_str()))
        .collect();
    // Parsing thousands of file versions is the slow part: spread it over the cores.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = contents.len().div_ceil(threads).max(1);
    let parsed: Vec<Option<BTreeMap<String, String>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = contents
            .chunks(chunk)
            .zip(paths.chunks(chunk))
            .map(|(bytes, paths)| {
                scope.spawn(move || {
                    bytes
                        .iter()
                        .zip(paths)
                        .map(|(b, p)| b.as_deref().and_then(|b| snapshot(p, b)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut parsed = parsed.into_iter();

    let mut before: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut all: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for (commit, files) in &commits {
        for (project, _, present) in files {
            let now = if present.is_some() {
                // Missing, or a version that did not parse: it changed nothing that counted.
                match parsed.next().flatten() {
                    Some(now) => now,
                    None => continue,
                }
            } else {
                BTreeMap::new()
            };
            let old = before.entry(project.clone()).or_default();
            commit.diff_into(old, &now, all.entry(project.clone()).or_default());
            *old = now;
        }
    }
    Ok(all)
}

/// Resource -> projects whose grant of it said, at some commit of the ledger's history, that a
/// configuration pull request was sent (`send_pr`): what `apply` may have to undo when its
/// record of what it sent is lost.
pub fn ever_sent_configuration(dir: &Path) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (project, events) in history_all(dir)? {
        for e in events {
            if e.change != "revoked" && e.details.split("; ").any(|part| part == SENT_PR) {
                out.entry(e.resource).or_default().insert(project.clone());
            }
        }
    }
    Ok(out)
}

/// `origin` as an https URL of a GitHub repository, when it is one.
pub fn origin_url(dir: &Path) -> Option<String> {
    let out = git::run(dir, &["remote", "get-url", "origin"]).ok()?;
    if !out.status.success() {
        return None;
    }
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = url
        .strip_prefix("git@github.com:")
        .or_else(|| url.strip_prefix("https://github.com/"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    (path.split('/').count() == 2).then(|| format!("https://github.com/{path}"))
}

/// Request file → the pull request that added it, read from the merge commit's subject
/// (`Merge pull request #12 from ...` or a squash merge's `Title (#12)`). One `git log` for
/// every request.
pub fn request_links(dir: &Path, repo_url: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let log = git::log(
        dir,
        &[
            "--diff-filter=A",
            "--relative",
            "--name-only",
            "--format=%x1e%s",
            "--",
            "requests/",
        ],
    )?;
    let mut links = BTreeMap::new();
    for record in log.split('\u{1e}') {
        let mut lines = record.lines();
        let Some(subject) = lines.next() else {
            continue;
        };
        let Some(pr) = pr_number(subject) else {
            continue;
        };
        for file in lines.map(str::trim).filter(|l| !l.is_empty()) {
            // Newest first: a file added again later keeps its latest pull request.
            links
                .entry(file.to_string())
                .or_insert_with(|| format!("{repo_url}/pull/{pr}"));
        }
    }
    Ok(links)
}

/// The pull request number in a merge commit's subject.
fn pr_number(subject: &str) -> Option<u64> {
    let digits = |s: &str| {
        let n: String = s.chars().take_while(char::is_ascii_digit).collect();
        n.parse().ok()
    };
    if let Some(rest) = subject.strip_prefix("Merge pull request #") {
        return digits(rest);
    }
    let open = subject.rfind("(#")?;
    let rest = &subject[open + 2..];
    let n: Option<u64> = digits(rest);
    let len = n?.to_string().len();
    (rest[len..].starts_with(')')).then_some(n?)
}

#[cfg(test)]
mod tests {
    use super::pr_number;

    #[test]
    fn pull_request_numbers_come_from_merge_and_squash_subjects() {
        assert_eq!(
            pr_number("Merge pull request #1234 from someone/branch"),
            Some(1234)
        );
        assert_eq!(pr_number("Add a GPU for xformers (#77)"), Some(77));
        assert_eq!(pr_number("Fix (#12a)"), None);
        assert_eq!(pr_number("Add a GPU for xformers"), None);
    }
}
