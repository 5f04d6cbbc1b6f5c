//! What the guard reads from the access repository: loaded, checked and compiled at start and
//! on each reload ([`load_policy`], into a [`Loaded`]), with the [`Source`] that is swapped in
//! beside the policy, and the [`fingerprint`] of its files the watcher compares. The settings
//! the guard acts on at run time have a file each here (concurrency caps, job time limits,
//! sponsor credit pools): plain data, read by the code that acts on them.

mod caps;
mod credit;
mod time_limits;

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use gatehouse_core::check;
use gatehouse_core::model::{GuardMode, OnUnreachable};
use gatehouse_core::repo::load_dir;
use gatehouse_gate::snapshot::Pool;
use gatehouse_policy::{Policy, PolicySource, compile_source};

pub(crate) use caps::{Caps, ResourceCaps};
pub(crate) use credit::CreditPools;
pub(crate) use time_limits::TimeLimits;

use crate::clock::today;

/// A repository that loaded and passed `check`, compiled.
pub(crate) struct Loaded {
    pub policy: Policy,
    pub mode: GuardMode,
    /// What the policy was compiled from, and the runner pools: what a snapshot carries.
    pub source: Arc<Source>,
}

/// What the current policy was compiled from, and the runner pools of `gatehouse.yml`.
#[derive(Debug, Default)]
pub(crate) struct Source {
    pub policy: PolicySource,
    pub pools: Vec<Pool>,
    /// The concurrency caps (not in snapshots: only the guard counts jobs).
    pub caps: Caps,
    /// `run_approvals:` of `gatehouse.yml` (the phrase, the runs and hours an approval gives).
    pub run_approvals: gatehouse_core::model::RunApprovalSettings,
    /// Each resource's job time limit (not in snapshots: only the guard times jobs).
    pub time_limits: TimeLimits,
    /// When a project's use is flagged as far above its usual (`guard.outliers`).
    pub outliers: gatehouse_core::model::OutlierSettings,
    /// Sponsor credit pools (`pools/*.yml`; not in snapshots: only the guard keeps their books).
    pub credit: CreditPools,
}

/// Loads, checks and compiles the repository, off the async threads (it reads files).
pub(crate) async fn load_policy(dir: impl AsRef<Path> + Send + 'static) -> anyhow::Result<Loaded> {
    tokio::task::spawn_blocking(move || {
        let dir = dir.as_ref();
        let repo = load_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        let today = today();
        let diags = check::run_all(&repo, today);
        if diags.has_errors() {
            let errors = diags.errors();
            let first: Vec<String> = diags
                .sorted()
                .into_iter()
                .filter(|d| d.severity == gatehouse_core::Severity::Error)
                .take(5)
                .map(|d| format!("{}: {}", d.location(), d.message))
                .collect();
            anyhow::bail!(
                "the access repository fails `gatehouse check` with {} error(s): {}",
                errors,
                first.join("; ")
            );
        }
        let mode = repo
            .settings
            .as_ref()
            .map_or_else(GuardMode::default, |s| s.value.guard.mode);
        let policy = PolicySource::from_repo(&repo);
        let pools = repo
            .settings
            .iter()
            .flat_map(|s| s.value.gate.pools.iter())
            .map(|(name, p)| Pool {
                name: name.clone(),
                resource: p.resource.value.clone(),
                allow_when_unreachable: p.on_unreachable.value == OnUnreachable::Allow,
            })
            .collect();
        let caps = Caps::from_repo(&repo);
        let run_approvals = repo
            .settings
            .as_ref()
            .map(|s| s.value.run_approvals.clone())
            .unwrap_or_default();
        let time_limits = TimeLimits::from_repo(&repo);
        let credit = CreditPools::from_repo(&repo);
        Ok(Loaded {
            policy: compile_source(&policy, today),
            mode,
            source: Arc::new(Source {
                policy,
                pools,
                caps,
                run_approvals,
                time_limits,
                outliers: repo
                    .settings
                    .as_ref()
                    .map(|s| s.value.guard.outliers.clone())
                    .unwrap_or_default(),
                credit,
            }),
        })
    })
    .await
    .context("the policy loader panicked")?
}

/// A hash of every YAML and CODEOWNERS file's path, size and modification time under `dir`, `.git` left out.
pub(crate) fn fingerprint(dir: &Path) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut entries = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            if e.file_name() == ".git" {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            let path = e.path();
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "yml" || x == "yaml")
                || e.file_name() == "CODEOWNERS"
            {
                // Only what the policy is read from (YAML, CODEOWNERS): a store kept in the
                // same folder (`gatehouse serve .` with the default `sqlite://gatehouse.db`)
                // changes all the time and must not cause reloads.
                entries.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    entries.sort();
    entries.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_policy_files_count_as_a_change() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("grants")).unwrap();
        std::fs::write(dir.path().join("grants/a.yml"), "project: a\n").unwrap();
        let before = fingerprint(dir.path());
        std::fs::write(dir.path().join("gatehouse.db"), "store").unwrap();
        std::fs::write(dir.path().join("gatehouse.db-wal"), "wal").unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/x.yml"), "git's own").unwrap();
        assert_eq!(fingerprint(dir.path()), before);
        std::fs::write(dir.path().join("grants/a.yml"), "project: a\ngrants: []\n").unwrap();
        assert_ne!(fingerprint(dir.path()), before);
        let after = fingerprint(dir.path());
        std::fs::create_dir_all(dir.path().join(".github")).unwrap();
        std::fs::write(dir.path().join(".github/CODEOWNERS"), "* @core\n").unwrap();
        assert_ne!(fingerprint(dir.path()), after);
    }
}
