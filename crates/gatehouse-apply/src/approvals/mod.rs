//! `gatehouse approvals --pr N`: whether a pull request on the access repository has the
//! approvals it needs, told to GitHub as the commit status `gatehouse/approval` on the head
//! commit and as one pull request comment (edited in place on later runs) with the plan and an
//! eligibility report.
//!
//! Who must approve follows from the files the pull request changes; the rules are
//! `gatehouse_core::approval` ([`requirements`] and [`judge`], pure and tested there). This
//! file is their edge: it fetches the facts from GitHub and writes the verdict back.
//!
//! What is read from where: the pull request, its reviews and its list of changed files come
//! from GitHub's API. The files themselves are read from DIR, a checkout of the pull request's
//! head that is only ever parsed as data, never run. The rules (gatehouse.yml, resources/ and the
//! current grants) come from `--base`, a checkout of the base branch, when given: read from the
//! head, a pull request could name its own reviewers. This command does not judge whether a
//! request is well-formed; `gatehouse check` does, in its own workflow.
//!
//! One file a concern: this one runs the command; [`head`] finds the pull request and reads
//! its files, [`judge`] gathers the facts the rules judge, [`status`] sets the commit status,
//! [`comment`] writes the comment with [`eligibility`]'s report; [`answers`] are GitHub's.

mod answers;
mod comment;
mod eligibility;
mod head;
mod judge;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_core::Repo;
use jiff::civil::Date;

use gatehouse_github::{Client, Secret, Service, Settings};

pub use answers::{Head, Pull, User};
pub use comment::{ACTIONS_BOT_ID, MARKER};
pub use judge::{Judged, MAX_COMMITS, MAX_FILES, judge_pull};
pub use status::STATUS_CONTEXT;

use comment::{bot_id, comment_body, upsert_comment};
use eligibility::eligibility;
use head::{head_from_api, pull_for_head};
use status::{description, set_status, write_refused};

/// What `gatehouse approvals` is asked to judge (the command line's flags).
#[derive(Clone, Debug)]
pub struct ApprovalsOptions {
    /// The pull request; or, with `for_head`, the open one whose head is that commit.
    pub pr: Option<u64>,
    pub for_head: Option<String>,
    /// A checkout of the pull request's head, read as data only.
    pub dir: PathBuf,
    /// A checkout of the base branch: where the rules (reviewers) are read.
    pub base: Option<PathBuf>,
    /// `OWNER/NAME`; else GITHUB_REPOSITORY.
    pub repo: Option<String>,
    pub head_sha: Option<String>,
    /// Read the changed files through GitHub's API instead of `dir`.
    pub files_from_api: bool,
}

/// `gatehouse approvals`, as the module's documentation says.
pub fn run(
    args: ApprovalsOptions,
    today: Date,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let access_repo = match &args.repo {
        Some(r) => r.clone(),
        None => std::env::var("GITHUB_REPOSITORY")
            .ok()
            .filter(|r| !r.trim().is_empty())
            .context(
                "which repository? Pass --repo OWNER/NAME or set GITHUB_REPOSITORY \
                 (GitHub Actions sets it)",
            )?,
    };
    let Some((owner, name)) = access_repo
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
    else {
        bail!("the repository must be OWNER/NAME, got `{access_repo}`");
    };
    let var = Service::GitHub.token_var();
    let Some(token) = std::env::var(var).ok().filter(|t| !t.trim().is_empty()) else {
        bail!(
            "{var} is not set: `gatehouse approvals` reads the pull request's reviews and the \
             reviewer teams, and writes a commit status and a comment, through GitHub's API. Set \
             {var} to a token that may read the organisation's teams and write statuses and \
             pull request comments"
        );
    };
    let client = Client::new(Secret::new(token), Settings::from_env()?)?;
    bot_id()?;

    let head = if args.files_from_api {
        None
    } else {
        Some(crate::load_repo_warn(&args.dir, today)?)
    };
    // Read from the pull request's own files, the rules would let it name its own reviewers.
    let Some(base) = &args.base else {
        bail!(
            "--base is required: a checkout of the pull request's base commit, where \
             gatehouse.yml and resources/ say who reviews. The rules are never read from the \
             pull request's own files (DIR), which could name their own reviewers"
        );
    };
    let rules = gatehouse_core::repo::load_dir(base)?;
    let base_dir = base.clone();
    rt.block_on(async {
        let number = match (args.pr, &args.for_head) {
            (Some(n), _) => n,
            (None, Some(sha)) => match pull_for_head(&client, owner, name, sha).await? {
                Some(n) => n,
                None => {
                    eprintln!(
                        "no open pull request of {owner}/{name} has its head at {sha}; nothing \
                         to judge"
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            },
            (None, None) => bail!("pass --pr N or --for-head SHA"),
        };
        let target = Target {
            owner,
            name,
            number,
        };
        let head = match head {
            Some(h) => h,
            None => head_from_api(&client, &target, &base_dir).await?,
        };
        approvals(
            &client,
            &target,
            &head,
            &rules,
            args.head_sha.as_deref(),
            today,
        )
        .await
    })
}

/// The access repository, and the pull request being judged.
pub struct Target<'a> {
    pub owner: &'a str,
    pub name: &'a str,
    pub number: u64,
}

impl Target<'_> {
    /// `repos/{owner}/{name}/{rest...}`, as path segments.
    fn path<'s>(&'s self, rest: &[&'s str]) -> Vec<&'s str> {
        let mut p = vec!["repos", self.owner, self.name];
        p.extend_from_slice(rest);
        p
    }
}

async fn approvals(
    client: &Client,
    target: &Target<'_>,
    head_repo: &Repo,
    rules: &Repo,
    expected_head: Option<&str>,
    today: Date,
) -> anyhow::Result<ExitCode> {
    let settings = &rules
        .settings
        .as_ref()
        .context("the access repository has no gatehouse.yml; it names the reviewers")?
        .value;
    let org = settings.org.value.as_str();
    let n = target.number.to_string();
    let pr_name = format!("{}/{}#{}", target.owner, target.name, target.number);

    let pull: Pull = client
        .get(&target.path(&["pulls", &n]))
        .await?
        .with_context(|| format!("{pr_name} was not found"))?;
    let sha = pull.head.sha.clone();
    if let Some(expected) = expected_head
        && !sha.eq_ignore_ascii_case(expected)
    {
        eprintln!(
            "{pr_name} has moved on from {expected} to {sha}; the files checked out are not its \
             head, so nothing is judged. The run for the new head judges it"
        );
        return Ok(ExitCode::from(1));
    }
    // Pending first: whatever fails from here on leaves `pending` (or `failure`), never an
    // earlier run's `success`.
    set_status(
        client,
        target,
        &sha,
        "pending",
        "gatehouse is judging the approvals",
        None,
    )
    .await?;
    let judged = match judge_pull(client, target, &pull, head_repo, rules).await {
        Ok(j) => j,
        Err(e) => {
            let _ = set_status(
                client,
                target,
                &sha,
                "failure",
                "gatehouse could not judge this pull request; see the workflow run",
                run_url().as_deref(),
            )
            .await;
            return Err(e);
        }
    };
    let verdict = &judged.verdict;
    let author = pull
        .user
        .as_ref()
        .map(|u| u.login.clone())
        .unwrap_or_default();

    let eligibility = eligibility(client, head_repo, rules, &judged.changed, &author, today).await;
    let plan = crate::plan::text(&crate::plan::make_plan(head_repo, today));
    println!("{}", verdict.summary());
    // The whole plan is in the run's log, which the comment links to when it cuts it.
    println!("{plan}");
    let body = comment_body(
        org,
        &sha,
        &author,
        &judged.needs,
        verdict,
        &eligibility,
        &plan,
        run_url().as_deref(),
    );

    // The status first, then the comment: a comment that cannot be written never leaves an
    // old status standing.
    set_status(
        client,
        target,
        &sha,
        if verdict.approved() {
            "success"
        } else if verdict.refused.is_some() {
            "failure"
        } else {
            "pending"
        },
        &description(verdict, &judged.needs, org),
        run_url().as_deref(),
    )
    .await?;
    if let Err(e) = upsert_comment(client, target, &body).await {
        write_refused(e, "post the comment")?;
    }
    Ok(if verdict.approved() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The workflow run's page, when run in GitHub Actions.
fn run_url() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    Some(format!(
        "{}/{}/actions/runs/{}",
        var("GITHUB_SERVER_URL")?,
        var("GITHUB_REPOSITORY")?,
        var("GITHUB_RUN_ID")?
    ))
}
