//! `gatehouse site [DIR] --out public/`: the public ledger as static HTML and JSON, ready to
//! publish as is (GitHub Pages).
//!
//! The pages come from `gatehouse-site`; this edge reads the repository, the grant history and
//! the pull requests behind pending requests from git, and writes the files. The whole site is
//! written into a fresh folder next to `--out` and swapped in with renames, so a reader (or a
//! crash) never sees half a site, and a page of a revoked grant never lingers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use gatehouse_site::{Dashboard, HistoryEvent, Ledger, LedgerInputs, SiteOptions, render_site};
use jiff::civil::Date;

use crate::cli::SiteArgs;
use crate::cmd::history::history_all;
use crate::fsutil::safe_join;

/// A file every generated site holds; its presence says a folder may be replaced.
const MARKER: &str = "v1/resources.json";

pub fn run(args: SiteArgs, today: Date) -> anyhow::Result<ExitCode> {
    let repo = crate::cmd::load_repo_warn(&args.dir, today)?;
    let git = !args.no_history && is_git_checkout(&args.dir);
    let mut inputs = LedgerInputs::default();
    if git {
        let events = history_all(&args.dir).context("reading the grant history from git")?;
        let mut all: BTreeMap<String, Vec<HistoryEvent>> = BTreeMap::new();
        for f in &repo.grants {
            // Every project on the site gets its history (empty when git has none).
            all.insert(f.value.project.value.clone(), Vec::new());
        }
        for (project, events) in events {
            all.insert(
                project,
                events
                    .into_iter()
                    .map(|e| HistoryEvent {
                        date: e.date,
                        change: e.change.to_string(),
                        resource: e.resource,
                        details: e.details,
                        commit: e.commit,
                        author: e.author,
                        subject: e.subject,
                    })
                    .collect(),
            );
        }
        inputs.history = Some(all);
        let repo_url = match &args.repo_url {
            Some(u) => Some(u.trim_end_matches('/').to_string()),
            None => origin_url(&args.dir),
        };
        if let Some(url) = repo_url {
            inputs.request_links = request_links(&args.dir, &url)?;
        }
    }
    let usage: Option<Dashboard> = match &args.usage {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the usage file {}", path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: not usage JSON as /dashboard.json of `gatehouse serve` writes it",
                    path.display()
                )
            })?)
        }
    };
    let ledger = Ledger::build(&repo, today, &inputs);
    let site = render_site(
        &ledger,
        &SiteOptions {
            dashboard_link: false,
            usage,
        },
    )?;
    for s in &site.skipped {
        eprintln!(
            "warning: left out {s}: its name cannot be a file name; `gatehouse check` says why"
        );
    }
    write_site(&args.out, &site.files)?;
    eprintln!(
        "wrote {} files to {} ({} resources, {} grants, {} projects, {} pending requests{})",
        site.files.len(),
        args.out.display(),
        ledger.resources.len(),
        ledger.grants.len(),
        ledger.projects.len(),
        ledger.requests.len(),
        if git { "" } else { "; no git history" }
    );
    Ok(ExitCode::SUCCESS)
}

fn is_git_checkout(dir: &Path) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--is-inside-work-tree"])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"true"))
}

/// `origin` as an https URL of a GitHub repository, when it is one.
fn origin_url(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["remote", "get-url", "origin"])
        .output()
        .ok()?;
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
fn request_links(dir: &Path, repo_url: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "log",
            "--diff-filter=A",
            "--relative",
            "--name-only",
            "--format=%x1e%s",
            "--",
            "requests/",
        ])
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git log failed in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut links = BTreeMap::new();
    for record in String::from_utf8_lossy(&out.stdout).split('\u{1e}') {
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

/// Writes the site into a new folder beside `out`, then swaps it in. A folder that is not a
/// site gatehouse wrote (and not empty) is refused rather than replaced.
fn write_site(out: &Path, files: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<()> {
    let existing = match std::fs::symlink_metadata(out) {
        Ok(m) if m.file_type().is_symlink() => {
            bail!(
                "{} is a symbolic link; pass the folder itself",
                out.display()
            )
        }
        Ok(m) if !m.is_dir() => bail!("{} exists and is not a folder", out.display()),
        Ok(_) => {
            let empty = std::fs::read_dir(out)
                .with_context(|| format!("reading {}", out.display()))?
                .next()
                .is_none();
            if !empty && !out.join(MARKER).is_file() {
                bail!(
                    "{} holds files that gatehouse did not write (no {MARKER}); nothing was written. Pick an empty or new folder",
                    out.display()
                );
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("reading {}", out.display())),
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".gatehouse-site-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))?;
    for (rel, contents) in files {
        let path = safe_join(staging.path(), rel)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    #[cfg(unix)]
    {
        // A temporary folder is private (0700); a published site is for everyone to read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("setting the mode of {}", staging.path().display()))?;
    }
    let staged = staging.keep();
    if existing {
        let old = parent.join(format!(
            ".gatehouse-site-old-{}",
            staged
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("x")
                .trim_start_matches(".gatehouse-site-")
        ));
        std::fs::rename(out, &old)
            .with_context(|| format!("moving the old {} aside", out.display()))?;
        if let Err(e) = std::fs::rename(&staged, out) {
            // Put the old site back: better the previous ledger than none.
            let _ = std::fs::rename(&old, out);
            let _ = std::fs::remove_dir_all(&staged);
            return Err(e).with_context(|| format!("moving the new site to {}", out.display()));
        }
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("removing the old site at {}", old.display()))?;
    } else if let Err(e) = std::fs::rename(&staged, out) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(e).with_context(|| format!("moving the new site to {}", out.display()));
    }
    Ok(())
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
