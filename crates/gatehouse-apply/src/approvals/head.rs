//! The pull request being judged, found by its head commit, and the access repository as it
//! leaves it, read through GitHub's API when it is not checked out.

use std::collections::BTreeMap;

use anyhow::Context;
use gatehouse_core::Repo;
use gatehouse_github::Client;
use serde::Deserialize;

use super::Target;
use super::answers::Pull;

/// The open pull request whose head is commit `sha` (`pulls/list`).
pub(super) async fn pull_for_head(
    client: &Client,
    owner: &str,
    name: &str,
    sha: &str,
) -> anyhow::Result<Option<u64>> {
    let open: Vec<Pull> = client
        .get_all(&["repos", owner, name, "pulls"], None)
        .await?
        .unwrap_or_default();
    Ok(open
        .into_iter()
        .find(|p| p.merged_at.is_none() && p.head.sha.eq_ignore_ascii_case(sha))
        .map(|p| p.number))
}

/// The access repository as the pull request leaves it, without checking it out: the base
/// checkout, with every file the pull request changes read through GitHub's API at its head
/// commit (`repos/get-content`), as data (removed files left out).
pub(super) async fn head_from_api(
    client: &Client,
    target: &Target<'_>,
    base: &std::path::Path,
) -> anyhow::Result<Repo> {
    let n = target.number.to_string();
    let pull: Pull = client
        .get(&target.path(&["pulls", &n]))
        .await?
        .with_context(|| format!("pull request #{n} was not found"))?;
    #[derive(Deserialize)]
    struct Listed {
        filename: String,
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        previous_filename: Option<String>,
    }
    let files: Vec<Listed> = client
        .get_all(&target.path(&["pulls", &n, "files"]), None)
        .await?
        .unwrap_or_default();
    let mut sources: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    read_tree(base, base, &mut sources)?;
    for f in files {
        if let Some(old) = &f.previous_filename {
            sources.remove(old);
        }
        if f.status.as_deref() == Some("removed") {
            sources.remove(&f.filename);
            continue;
        }
        let read = gatehouse_providers::contents::read_file(
            client,
            target.owner,
            target.name,
            &f.filename,
            Some(&pull.head.sha),
        )
        .await
        .with_context(|| format!("reading {} at the pull request's head", f.filename))?;
        match read {
            Some(file) => {
                sources.insert(f.filename, file.text.into_bytes());
            }
            None => {
                sources.remove(&f.filename);
            }
        }
    }
    Ok(Repo::from_sources(sources))
}

/// Every file under `dir` (but `.git`), by its path relative to `root`.
fn read_tree(
    root: &std::path::Path,
    dir: &std::path::Path,
    out: &mut BTreeMap<String, Vec<u8>>,
) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if entry.file_name() == ".git" || kind.is_symlink() {
            continue;
        }
        if kind.is_dir() {
            read_tree(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.insert(rel, std::fs::read(&path)?);
        }
    }
    Ok(())
}
