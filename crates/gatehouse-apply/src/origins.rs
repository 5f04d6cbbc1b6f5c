//! `apply` judges every request again before it consumes it.
//!
//! Branch protection alone does not keep an unreviewed request out of the ledger: a request
//! committed straight to the default branch, admin-merged, or merged while the status was wrong
//! would otherwise become a grant. So for every request file, `apply` finds the last commit that
//! touched it, asks GitHub which merged pull request brought that commit
//! (`repos/list-pull-requests-associated-with-commit`), and runs the same judge as
//! `gatehouse approvals` on it: reviewers from the pull request's base commit (read from git),
//! approvals of its final head commit, its author and every author and committer of its commits
//! excluded. Only an approved request is consumed; anything else stays in `requests/` and is
//! reported. A request with no pull request is granted only when `accept_unreviewed` in
//! gatehouse.yml lists both its commit's GitHub author and committer, by account id.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use gatehouse_core::Repo;
use gatehouse_core::ledger::RequestOrigin;
use serde::Deserialize;

use gatehouse_github::{Client, Service};
use gatehouse_history::git;
use gatehouse_providers as providers;

use crate::approvals::{Pull, Target, User, judge_pull};

/// What `apply` may do with the requests.
#[derive(Debug, Default)]
pub struct Judgement {
    /// Approved (or accepted) requests: their pull request and counted approvers.
    pub origins: HashMap<String, RequestOrigin>,
    /// Requests held back, and why.
    pub held: Vec<(String, String)>,
}

/// Judges every request of `repo` (a clone of the access repository at `dir`).
pub fn judge_requests(dir: &Path, repo: &Repo, rt: &tokio::runtime::Runtime) -> Judgement {
    let mut out = Judgement::default();
    if repo.requests.is_empty() {
        return out;
    }
    let hold_all = |out: &mut Judgement, why: String| {
        for r in &repo.requests {
            out.held.push((r.path.clone(), why.clone()));
        }
    };
    let access = std::env::var("GITHUB_REPOSITORY").ok();
    let Some((owner, name)) = access
        .as_deref()
        .and_then(|r| r.split_once('/'))
        .filter(|(o, n)| !o.is_empty() && !n.is_empty())
    else {
        hold_all(
            &mut out,
            "not judged: GITHUB_REPOSITORY (the access repository, OWNER/NAME) is not set, and \
             apply grants only requests whose merged pull request it judges approved"
                .into(),
        );
        return out;
    };
    let client = match providers::client_from_env(Service::GitHub) {
        Ok(c) => c,
        Err(e) => {
            hold_all(&mut out, format!("not judged: {e:#}"));
            return out;
        }
    };
    let last = match git::last_commits(dir) {
        Ok(l) => l,
        Err(e) => {
            hold_all(&mut out, format!("not judged: {e:#}"));
            return out;
        }
    };
    let mut judge = Judge {
        dir,
        repo,
        client: &client,
        owner,
        name,
        by_commit: HashMap::new(),
        by_pull: HashMap::new(),
    };
    for request in &repo.requests {
        let path = request.path.as_str();
        let Some(sha) = last.get(path) else {
            out.held.push((
                path.to_string(),
                "not committed: apply grants only what a merged pull request brought".into(),
            ));
            continue;
        };
        match rt.block_on(judge.request(path, sha)) {
            Ok(Ok(origin)) => {
                out.origins.insert(path.to_string(), origin);
            }
            Ok(Err(why)) => out.held.push((path.to_string(), why)),
            Err(e) => out
                .held
                .push((path.to_string(), format!("could not be judged: {e:#}"))),
        }
    }
    out
}

/// The verdict on one request: its origin, or why it is held.
type Verdict = Result<RequestOrigin, String>;

struct Judge<'a> {
    dir: &'a Path,
    repo: &'a Repo,
    client: &'a Client,
    owner: &'a str,
    name: &'a str,
    /// Commit -> its merged pull request's number, or `None` for a direct commit.
    by_commit: HashMap<String, Option<u64>>,
    /// Pull request number -> (its URL, its changed files, the verdict).
    by_pull: HashMap<u64, (Option<String>, Vec<String>, Verdict)>,
}

impl Judge<'_> {
    async fn request(&mut self, path: &str, sha: &str) -> anyhow::Result<Verdict> {
        let number = match self.by_commit.get(sha) {
            Some(n) => *n,
            None => {
                let n = self.merged_pull(sha).await?;
                self.by_commit.insert(sha.to_string(), n);
                n
            }
        };
        let Some(number) = number else {
            return self.direct(path, sha).await;
        };
        if !self.by_pull.contains_key(&number) {
            let judged = self.pull(number).await?;
            self.by_pull.insert(number, judged);
        }
        let (url, changed, verdict) = &self.by_pull[&number];
        if !changed.iter().any(|c| c == path) {
            return Ok(Err(format!(
                "its last commit {} belongs to pull request #{number}, which does not change it",
                short(sha)
            )));
        }
        Ok(verdict.clone().map(|mut origin| {
            origin.url.clone_from(url);
            origin
        }))
    }

    /// The merged pull request GitHub links to commit `sha`.
    async fn merged_pull(&self, sha: &str) -> anyhow::Result<Option<u64>> {
        let pulls: Vec<Pull> = self
            .client
            .get(&["repos", self.owner, self.name, "commits", sha, "pulls"])
            .await?
            .unwrap_or_default();
        Ok(pulls
            .into_iter()
            .find(|p| p.merged_at.is_some())
            .map(|p| p.number))
    }

    async fn pull(&self, number: u64) -> anyhow::Result<(Option<String>, Vec<String>, Verdict)> {
        let n = number.to_string();
        let pull: Pull = self
            .client
            .get(&["repos", self.owner, self.name, "pulls", &n])
            .await?
            .with_context(|| format!("pull request #{number} was not found"))?;
        let url = pull.html_url.clone();
        if pull.merged_at.is_none() {
            return Ok((
                url,
                vec![],
                Err(format!("pull request #{number} is not merged")),
            ));
        }
        let Some(base) = pull.base.as_ref().map(|b| b.sha.clone()) else {
            bail!("GitHub did not say which commit pull request #{number} is based on");
        };
        let rules = match rules_at(self.dir, &base) {
            Ok(r) => r,
            Err(e) => return Ok((url, vec![], Err(format!("{e:#}")))),
        };
        let target = Target {
            owner: self.owner,
            name: self.name,
            number,
        };
        let judged = judge_pull(self.client, &target, &pull, self.repo, &rules).await?;
        let verdict = if judged.verdict.approved() {
            Ok(RequestOrigin {
                url: None,
                // The author as GitHub gives it in `pulls/get`, by account id: who may accept
                // the terms of service with the request.
                author: pull
                    .user
                    .as_ref()
                    .and_then(|u| Some((u.login.clone(), u.id?))),
                approved_by: judged
                    .verdict
                    .approved_by
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
            })
        } else {
            Err(format!(
                "pull request #{number} was merged without the approvals it needs ({})",
                judged.verdict.summary()
            ))
        };
        Ok((url, judged.changed, verdict))
    }

    /// A request committed with no pull request: granted only when `accept_unreviewed` lists
    /// both the commit's GitHub author and committer (`repos/get-commit`).
    async fn direct(&self, path: &str, sha: &str) -> anyhow::Result<Verdict> {
        let accepted: Vec<i64> = self
            .repo
            .settings
            .iter()
            .flat_map(|s| s.value.accept_unreviewed.iter())
            .filter_map(|u| self.repo.account_of(u))
            .collect();
        let held = || {
            format!(
                "committed in {} with no pull request: nobody reviewed it. Open a pull request \
                 for it, or list its author in gatehouse.yml's accept_unreviewed",
                short(sha)
            )
        };
        if accepted.is_empty() {
            return Ok(Err(held()));
        }
        #[derive(Deserialize)]
        struct Commit {
            author: Option<User>,
            committer: Option<User>,
        }
        let commit: Commit = self
            .client
            .get(&["repos", self.owner, self.name, "commits", sha])
            .await?
            .with_context(|| format!("commit {sha} is not on GitHub"))?;
        let listed = |u: &Option<User>| {
            u.as_ref()
                .and_then(|u| u.id)
                .is_some_and(|id| accepted.contains(&id))
        };
        if listed(&commit.author) && listed(&commit.committer) {
            let who = commit.author.map(|u| u.login).unwrap_or_default();
            eprintln!(
                "note: {path} has no pull request; accepted as committed by {who} (accept_unreviewed)"
            );
            Ok(Ok(RequestOrigin::default()))
        } else {
            Ok(Err(held()))
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// The rules (gatehouse.yml, resources/, people/) as they were at commit `sha`.
fn rules_at(dir: &Path, sha: &str) -> anyhow::Result<Repo> {
    let Some(files) = git::files_at(dir, sha, &["gatehouse.yml", "resources", "people"])? else {
        bail!(
            "the base commit {} of its pull request is not in this clone, so who reviews it \
             cannot be read; check out the access repository's whole history (actions/checkout \
             with fetch-depth: 0)",
            short(sha)
        );
    };
    Ok(Repo::from_sources(files))
}
