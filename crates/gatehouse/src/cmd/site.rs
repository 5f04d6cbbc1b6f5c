//! `gatehouse site [DIR] --out public/`: the public ledger as static HTML and JSON, ready to
//! publish as is (GitHub Pages). With `--db URL`, also the usage and sponsor pools the guard's
//! database holds.
//!
//! The pages come from `gatehouse-site`; this edge reads the repository, the grant history and
//! the pull requests behind pending requests from git, and writes the files. The whole site is
//! written into a fresh folder next to `--out` and swapped in with renames, so a reader (or a
//! crash) never sees half a site, and a page of a revoked grant never lingers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_history::{is_git_checkout, ledger_history};
use gatehouse_site::{Dashboard, Ledger, LedgerInputs, SiteOptions, render_site};
use jiff::civil::Date;

use crate::cli::SiteArgs;
use crate::fsutil::safe_join;

/// A file every generated site holds; its presence says a folder may be replaced.
const MARKER: &str = "v1/resources.json";

pub fn run(args: SiteArgs, today: Date, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let repo = crate::cmd::load_repo_warn(&args.dir, today)?;
    let git = !args.no_history && is_git_checkout(&args.dir);
    let inputs = if git {
        ledger_history(&args.dir, &repo, args.repo_url.as_deref())?.into()
    } else {
        LedgerInputs::default()
    };
    let ledger = Ledger::build(&repo, today, &inputs);
    let (usage, pools, project_spend) = match (&args.usage, &args.db) {
        (Some(path), _) => (Some(usage_file(path)?), None, Default::default()),
        (None, Some(url)) => {
            let figures = rt
                .block_on(gatehouse_server::stored_site::read(
                    url, &repo, &ledger, today,
                ))
                .context("reading usage and pools from the guard's database (--db)")?;
            (
                Some(figures.usage),
                Some(figures.pools),
                figures.project_spend,
            )
        }
        (None, None) => (None, None, Default::default()),
    };
    let pool_count = pools.as_ref().map(Vec::len);
    let site = render_site(
        &ledger,
        &SiteOptions {
            dashboard_link: false,
            usage,
            pools,
            project_spend,
        },
    )?;
    for s in &site.skipped {
        eprintln!(
            "warning: left out {s}: its name cannot be a file name; `gatehouse check` says why"
        );
    }
    write_site(&args.out, &site.files)?;
    eprintln!(
        "wrote {} files to {} ({} resources, {} grants, {} projects, {} pending requests{}{})",
        site.files.len(),
        args.out.display(),
        ledger.resources.len(),
        ledger.grants.len(),
        ledger.projects.len(),
        ledger.requests.len(),
        pool_count.map_or(String::new(), |n| format!(", {n} sponsor pools")),
        if git { "" } else { "; no git history" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Usage as `gatehouse serve`'s `/dashboard.json` gives it, from a file.
fn usage_file(path: &Path) -> anyhow::Result<Dashboard> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the usage file {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not usage JSON as /dashboard.json of `gatehouse serve` writes it",
            path.display()
        )
    })
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
