//! The ledger on disk and in git: the new grant files written (each atomically), the people who
//! accepted the terms of service with their request added to `people/tos.yml`, the consumed
//! requests deleted, and the message of the one commit of `grants/`, `people/` and `requests/`
//! that says what changed (made by `gatehouse_history::git::commit`).

use std::path::Path;

use anyhow::Context;
use gatehouse_core::Repo;
use gatehouse_core::ledger::LedgerChange;
use gatehouse_core::repo::TOS_FILE;
use gatehouse_core::tos_claims::{TosAcceptance, tos_after};

use crate::fsutil::{safe_join, write_atomic};

/// Writes the new grant files (each atomically) and deletes the consumed requests. Each grant
/// file is written where it was read (`apply_changes` keeps the loaded path), never at a path
/// rebuilt from the project's name.
pub(crate) fn write_ledger(
    dir: &Path,
    repo: &Repo,
    changes: &[LedgerChange],
    tos: &[TosAcceptance],
    consumed: &[String],
) -> anyhow::Result<()> {
    // A run killed between writing a temporary file and renaming it leaves the temporary file
    // (`.tmpXXXXXX`); it must not be committed with the ledger.
    for folder in ["grants", "people", "requests"] {
        let Ok(entries) = std::fs::read_dir(dir.join(folder)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(".tmp") && entry.path().is_file() {
                remove(&entry.path())?;
            }
        }
    }
    for (path, file) in gatehouse_core::ledger::apply_changes(repo, changes) {
        let full = safe_join(dir, &path)?;
        match file {
            Some(file) => {
                let yaml =
                    serde_saphyr::to_string(&file).context("writing a grant file as YAML")?;
                write_atomic(&full, yaml.as_bytes())?;
            }
            None => remove(&full)?,
        }
    }
    if let Some(list) = tos_after(repo, tos) {
        let path = repo.tos.as_ref().map_or(TOS_FILE, |t| t.path.as_str());
        let yaml = serde_saphyr::to_string(&list).context("writing people/tos.yml as YAML")?;
        write_atomic(&safe_join(dir, path)?, yaml.as_bytes())?;
    }
    for path in consumed {
        remove(&safe_join(dir, path)?)?;
    }
    Ok(())
}

fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("deleting {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// `gatehouse apply: grant x: gpu (requests/x.yml)`, one body line per change when several.
pub(crate) fn commit_message(
    verb: &str,
    changes: &[LedgerChange],
    tos: &[TosAcceptance],
    consumed: &[String],
) -> String {
    let line = |c: &LedgerChange| match c {
        LedgerChange::Grant {
            project,
            resource,
            request,
            ..
        } => format!("grant {project}: {resource} ({request})"),
        LedgerChange::Renew {
            project,
            resource,
            request,
            to,
            ..
        } => format!(
            "renew {project}: {resource} until {} ({request})",
            to.as_deref().unwrap_or("no expiry")
        ),
        LedgerChange::Revoke {
            project,
            resource,
            why,
        } => format!("revoke {project}: {resource} ({why})"),
    };
    let mut message = match changes {
        [one] => format!("gatehouse {verb}: {}\n", line(one)),
        [] => format!("gatehouse {verb}: consume {} request(s)\n", consumed.len()),
        many => format!("gatehouse {verb}: {} ledger changes\n", many.len()),
    };
    if changes.len() > 1 {
        message.push('\n');
        for c in changes {
            message.push_str(&format!("- {}\n", line(c)));
        }
    }
    if !tos.is_empty() {
        message.push('\n');
        for t in tos {
            message.push_str(&format!(
                "terms of service accepted by {} (id {}) ({})\n",
                t.github, t.id, t.request
            ));
        }
    }
    if !consumed.is_empty() {
        message.push_str(&format!("\nconsumed: {}\n", consumed.join(", ")));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_message_names_project_resource_and_request() {
        let change = LedgerChange::Revoke {
            project: "x".into(),
            resource: "gpu".into(),
            why: "requests/x.yml".into(),
        };
        let m = commit_message("apply", &[change], &[], &["requests/x.yml".into()]);
        assert!(
            m.starts_with("gatehouse apply: revoke x: gpu (requests/x.yml)\n"),
            "{m}"
        );
    }
}
