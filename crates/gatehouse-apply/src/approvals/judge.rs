//! The judge's facts from GitHub (the pull request's files, commits and reviews, the
//! reviewer teams' members) handed to the rules (`gatehouse_core::approval`).

use anyhow::Context;
use gatehouse_core::Repo;
use gatehouse_core::approval::{Ident, Members, Requirement, Review, Verdict, judge, requirements};
use gatehouse_github::Client;

use super::Target;
use super::answers::{ChangedFile, Pull, PullCommit};

/// GitHub's files API lists at most this many files of a pull request (`pulls/list-files`).
pub const MAX_FILES: u64 = 3000;

/// ... and its commits API at most this many commits (`pulls/list-commits`).
pub const MAX_COMMITS: u64 = 250;

/// What the judge found about one pull request.
pub struct Judged {
    pub needs: Vec<Requirement>,
    pub verdict: Verdict,
    /// Changed paths, old names of renamed files included.
    pub changed: Vec<String>,
}

/// Judges pull request `pull` (as `pulls/get` answers it): its files, commits and reviews from
/// GitHub, the requests it adds from `head_repo`, who reviews what from `rules` (its base).
pub async fn judge_pull(
    client: &Client,
    target: &Target<'_>,
    pull: &Pull,
    head_repo: &Repo,
    rules: &Repo,
) -> anyhow::Result<Judged> {
    let settings = &rules
        .settings
        .as_ref()
        .context("the access repository has no gatehouse.yml; it names the reviewers")?
        .value;
    let org = settings.org.value.as_str();
    let n = pull.number.to_string();
    let files: Vec<ChangedFile> = client
        .get_all(&target.path(&["pulls", &n, "files"]), None)
        .await?
        .unwrap_or_default();
    let listed_files = files.len() as u64;
    let changed: Vec<String> = files
        .into_iter()
        .flat_map(|f| std::iter::once(f.filename).chain(f.previous_filename))
        .collect();
    let commits: Vec<PullCommit> = client
        .get_all(&target.path(&["pulls", &n, "commits"]), None)
        .await?
        .unwrap_or_default();
    let listed_commits = commits.len() as u64;
    let reviews: Vec<Review> = client
        .get_all(&target.path(&["pulls", &n, "reviews"]), None)
        .await?
        .unwrap_or_default();

    // Whoever wrote or committed any of its commits cannot approve it, nor can its author.
    let mut excluded: Vec<Ident> = Vec::new();
    let people = pull.user.iter().chain(
        commits
            .iter()
            .flat_map(|c| c.author.iter().chain(c.committer.iter())),
    );
    for u in people {
        let who = Ident::new(&u.login, u.id);
        if !excluded.contains(&who) {
            excluded.push(who);
        }
    }

    let needs = requirements(head_repo, rules, &changed)?;
    let mut teams = Teams::default();
    for need in &needs {
        for team in &need.teams {
            teams.resolve(client, org, team).await?;
        }
    }
    let mut verdict = judge(&needs, &teams.members, &reviews, &excluded, &pull.head.sha);
    let files_total = pull.changed_files.unwrap_or(listed_files).max(listed_files);
    let commits_total = pull.commits.unwrap_or(listed_commits).max(listed_commits);
    let refused = if files_total >= MAX_FILES {
        Some(format!(
            "it changes {files_total} files, and GitHub lists at most {MAX_FILES} of a pull \
             request's files, so the rest could not be judged. Split it into smaller pull requests"
        ))
    } else if commits_total >= MAX_COMMITS {
        Some(format!(
            "it has {commits_total} commits, and GitHub lists at most {MAX_COMMITS}, so not \
             every author could be excluded from approving. Squash them, or split the pull request"
        ))
    } else {
        None
    };
    if let Some(why) = refused {
        verdict.missing = vec![why.clone()];
        verdict.refused = Some(why);
    }
    Ok(Judged {
        needs,
        verdict,
        changed,
    })
}

/// Team members by slug, each team asked for once per run.
#[derive(Default)]
struct Teams {
    members: Members,
}

impl Teams {
    async fn resolve(&mut self, client: &Client, org: &str, team: &str) -> anyhow::Result<()> {
        if self.members.contains_key(team) {
            return Ok(());
        }
        let members = client
            .team_members(org, team)
            .await
            .with_context(|| {
                format!(
                    "reading the members of team {org}/{team} (the token must be allowed to \
                     read the organisation's teams)"
                )
            })?
            .with_context(|| {
                format!("team {org}/{team} was not found; fix the reviewers that name it")
            })?;
        self.members.insert(
            team.to_string(),
            members
                .into_iter()
                .map(|m| Ident::new(&m.login, Some(m.id)))
                .collect(),
        );
        Ok(())
    }
}
