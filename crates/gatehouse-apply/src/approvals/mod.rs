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

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_core::Repo;
use gatehouse_core::approval::{Ident, Members, Requirement, Review, Verdict, judge, requirements};
use gatehouse_core::names::same_project;
use jiff::civil::Date;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;

use gatehouse_github::{self as github, Client, Method, Secret, Service, Settings};

/// The commit status this command sets.
pub const STATUS_CONTEXT: &str = "gatehouse/approval";
/// Starts the one comment this command writes, so that later runs find it.
pub const MARKER: &str = "<!-- gatehouse:approvals -->";
/// GitHub refuses a status description longer than this.
const MAX_DESCRIPTION: usize = 140;
/// GitHub refuses a comment longer than 65,536 characters; the comment stays well below.
const MAX_COMMENT_CHARS: usize = 60_000;

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

/// The open pull request whose head is commit `sha` (`pulls/list`).
async fn pull_for_head(
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
async fn head_from_api(
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

// ---------------------------------------------------------------------------------------------
// GitHub's answers

/// `pulls/get` (a `pull-request`), and the `pull-request-simple` items of
/// `repos/list-pull-requests-associated-with-commit`: the fields the judge reads.
#[derive(Clone, Debug, Deserialize)]
pub struct Pull {
    pub number: u64,
    #[serde(default)]
    pub html_url: Option<String>,
    pub head: Head,
    #[serde(default)]
    pub base: Option<Head>,
    pub user: Option<User>,
    #[serde(default)]
    pub merged_at: Option<String>,
    /// Only in `pulls/get`: how many files and commits the pull request has.
    #[serde(default)]
    pub changed_files: Option<u64>,
    #[serde(default)]
    pub commits: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Head {
    pub sha: String,
}

/// A `simple-user`: login and numeric account id. The id is what identifies a person; a
/// login can be renamed and taken by someone else.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub login: String,
    #[serde(default)]
    pub id: Option<i64>,
}

#[derive(Deserialize)]
struct ChangedFile {
    filename: String,
    #[serde(default)]
    previous_filename: Option<String>,
}

/// One item of `pulls/list-commits`: the GitHub accounts of its author and committer (absent
/// when the commit's e-mail matches no account).
#[derive(Deserialize)]
struct PullCommit {
    #[serde(default)]
    author: Option<User>,
    #[serde(default)]
    committer: Option<User>,
}

/// One item of `teams/list-members-in-org`.
#[derive(Deserialize)]
struct Member {
    login: String,
    #[serde(default)]
    id: Option<i64>,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct Permission {
    permission: String,
}

// ---------------------------------------------------------------------------------------------
// The run

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

/// Sets the commit status `gatehouse/approval` (`repos/create-commit-status`).
async fn set_status(
    client: &Client,
    target: &Target<'_>,
    sha: &str,
    state: &str,
    description: &str,
    target_url: Option<&str>,
) -> anyhow::Result<()> {
    let status = json!({
        "state": state,
        "context": STATUS_CONTEXT,
        "description": cut(description, MAX_DESCRIPTION),
        "target_url": target_url,
    });
    match client
        .mutate::<IgnoredAny>(
            Method::POST,
            &target.path(&["statuses", sha]),
            Some(&status),
        )
        .await
    {
        Ok(_) => {
            eprintln!("set {STATUS_CONTEXT} to {state} on {}", short(sha));
            Ok(())
        }
        Err(e) => write_refused(e, "set the commit status"),
    }
}

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

/// A write the token may not make is a warning: a fork's pull request gets a read-only token, and
/// the exit status still tells the verdict. Any other failure is an error.
fn write_refused(e: github::Error, what: &str) -> anyhow::Result<()> {
    if matches!(e, github::Error::Forbidden { .. }) {
        eprintln!(
            "warning: could not {what}: {e}. A pull request from a fork gets a read-only token; \
             the exit status still tells the verdict"
        );
        Ok(())
    } else {
        Err(anyhow::Error::new(e).context(format!("could not {what}")))
    }
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
        let members: Vec<Member> = client
            .get_all(&["orgs", org, "teams", team, "members"], None)
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
                .map(|m| Ident::new(&m.login, m.id))
                .collect(),
        );
        Ok(())
    }
}

/// The account id of GitHub Actions' `github-actions[bot]`, which the workflow's token writes
/// as. A GitHub App's token writes as the app's bot: set `GATEHOUSE_BOT_ID` to its id.
pub const ACTIONS_BOT_ID: i64 = 41_898_282;

/// The account whose comment this command edits.
fn bot_id() -> anyhow::Result<i64> {
    match std::env::var("GATEHOUSE_BOT_ID") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| {
            format!("GATEHOUSE_BOT_ID must be the numeric account id of the bot, got `{v}`")
        }),
        _ => Ok(ACTIONS_BOT_ID),
    }
}

/// The comment marked with [`MARKER`] and written by the bot's own account (by numeric id) is
/// edited; anyone can paste the marker into a comment of their own, and such a comment is never
/// touched. One is created only when the bot has none.
async fn upsert_comment(
    client: &Client,
    target: &Target<'_>,
    body: &str,
) -> Result<Option<String>, github::Error> {
    let bot = bot_id().unwrap_or(ACTIONS_BOT_ID);
    let n = target.number.to_string();
    let comments: Vec<Comment> = client
        .get_all(&target.path(&["issues", &n, "comments"]), None)
        .await?
        .unwrap_or_default();
    let mine = comments.iter().find(|c| {
        c.body.as_deref().is_some_and(|b| b.starts_with(MARKER))
            && c.user.as_ref().is_some_and(|u| u.id == Some(bot))
    });
    let payload = json!({ "body": body });
    let written: Comment = match mine {
        Some(c) => {
            let id = c.id.to_string();
            client
                .mutate(
                    Method::PATCH,
                    &target.path(&["issues", "comments", &id]),
                    Some(&payload),
                )
                .await?
        }
        None => {
            client
                .mutate(
                    Method::POST,
                    &target.path(&["issues", &n, "comments"]),
                    Some(&payload),
                )
                .await?
        }
    };
    eprintln!(
        "{} the comment on #{}",
        if mine.is_some() { "edited" } else { "posted" },
        target.number
    );
    Ok(written.html_url)
}

/// The commit status's one line: who approved, or who is still needed.
fn description(verdict: &Verdict, needs: &[Requirement], org: &str) -> String {
    let text = if let Some(why) = &verdict.refused {
        format!("refused: {why}")
    } else if verdict.approved() {
        if verdict.approved_by.is_empty() {
            "no approval needed".to_string()
        } else {
            format!("approved by {}", verdict.logins())
        }
    } else {
        let more = u64::from(verdict.needed).saturating_sub(verdict.approved_by.len() as u64);
        let who: Vec<String> = needs.iter().map(|r| r.who(org)).collect();
        match who.as_slice() {
            [one] => format!("needs {more} more approval(s) from {one}"),
            many => format!(
                "needs {more} more approval(s), each from someone in all of: {}",
                many.join("; ")
            ),
        }
    };
    cut(&text, MAX_DESCRIPTION)
}

/// `text` cut to at most `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

// ---------------------------------------------------------------------------------------------
// Eligibility

/// What reviewers want to know about one requested project and resource.
struct Eligibility {
    request: String,
    action: String,
    project: String,
    resource: String,
    repository: String,
    /// Exists and is not archived, or why not, or why it is unknown.
    repository_state: String,
    author_role: String,
    holds: bool,
    projects_now: usize,
}

async fn eligibility(
    client: &Client,
    head: &Repo,
    rules: &Repo,
    changed: &[String],
    author: &str,
    today: Date,
) -> Vec<Eligibility> {
    let Some(settings) = rules.settings.as_ref().map(|s| &s.value) else {
        return Vec::new();
    };
    let holders = |resource: &str| {
        rules
            .grants
            .iter()
            .filter(|f| {
                f.value
                    .grants
                    .iter()
                    .any(|g| g.resource.as_str() == resource && g.is_active(today))
            })
            .map(|f| f.value.project.value.clone())
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    let mut asked: HashMap<String, (String, String)> = HashMap::new();
    for entry in head.requests.iter().filter(|r| changed.contains(&r.path)) {
        let Some(req) = &entry.value.request else {
            continue;
        };
        for project in &req.projects {
            let full = settings.repository_of(project);
            if !asked.contains_key(&full) {
                let facts = repository_facts(client, &full, author).await;
                asked.insert(full.clone(), facts);
            }
            let (repository_state, author_role) = asked[&full].clone();
            for resource in &req.resources {
                let holding = holders(resource);
                out.push(Eligibility {
                    request: entry.path.clone(),
                    action: format!("{:?}", req.action.value).to_lowercase(),
                    project: project.value.clone(),
                    resource: resource.value.clone(),
                    repository: full.clone(),
                    repository_state: repository_state.clone(),
                    author_role: author_role.clone(),
                    holds: holding.iter().any(|h| same_project(h, project)),
                    projects_now: holding.len(),
                });
            }
        }
    }
    out
}

/// Whether the repository exists and is not archived, and the author's role on it. Best
/// effort: a question the token may not ask is reported as unknown, not as an error.
async fn repository_facts(client: &Client, full: &str, author: &str) -> (String, String) {
    let Some((owner, name)) = full.split_once('/') else {
        return ("unknown".into(), "unknown".into());
    };
    let state = match client.get_repo(owner, name).await {
        Ok(Some(r)) if r.archived => "archived".to_string(),
        Ok(Some(_)) => "exists".to_string(),
        Ok(None) => "**not found**".to_string(),
        Err(e) => format!("unknown ({})", brief(&e)),
    };
    if state != "exists" || author.is_empty() {
        return (state, "unknown".into());
    }
    let role = match client
        .get::<Permission>(&["repos", owner, name, "collaborators", author, "permission"])
        .await
    {
        Ok(Some(p)) => p.permission,
        Ok(None) => "none".to_string(),
        Err(e) => format!("unknown ({})", brief(&e)),
    };
    (state, role)
}

fn brief(e: &github::Error) -> &'static str {
    if e.is_refusal() {
        "the token may not ask"
    } else if e.is_unavailable() {
        "GitHub did not answer"
    } else {
        "unexpected answer"
    }
}

// ---------------------------------------------------------------------------------------------
// The comment

#[allow(clippy::too_many_arguments)]
fn comment_body(
    org: &str,
    sha: &str,
    author: &str,
    needs: &[Requirement],
    verdict: &Verdict,
    eligibility: &[Eligibility],
    plan: &str,
    run_url: Option<&str>,
) -> String {
    let mut out = format!("{MARKER}\n### gatehouse: approvals\n\n");
    let _ = writeln!(
        out,
        "**{}**: {} of {} approval(s) on the head commit `{}`.\n",
        if verdict.refused.is_some() {
            "Refused"
        } else if verdict.approved() {
            "Approved"
        } else {
            "Pending"
        },
        verdict.approved_by.len(),
        verdict.needed,
        short(sha)
    );
    if let Some(why) = &verdict.refused {
        let _ = writeln!(out, "This pull request cannot be judged: {why}.\n");
    }
    out.push_str("**Who must approve**");
    if needs.len() > 1 {
        out.push_str(" (one approval counts only from someone in every group)");
    }
    out.push_str("\n\n");
    for r in needs {
        let _ = writeln!(
            out,
            "- {}: {} approval(s) from `{}`; because of {}",
            r.group,
            r.min_approvals,
            r.who(org),
            cut(&r.because.join(", "), 2_000)
        );
    }
    if !author.is_empty() {
        let _ = writeln!(
            out,
            "\nThe author, `@{author}`, and whoever wrote or committed its commits cannot \
             approve this pull request."
        );
    }
    // What is left for the tables and the plan; each is cut to what fits, with a link to the
    // whole of it in the run's log.
    let whole = match run_url {
        Some(url) => format!("[the workflow run's log]({url})"),
        None => "the workflow run's log".to_string(),
    };
    let fits = |out: &String, more: &str| {
        out.chars().count() + more.chars().count() < MAX_COMMENT_CHARS / 2
    };
    if !verdict.reviews.is_empty() {
        out.push_str("\n| reviewer | latest review | counts? |\n| --- | --- | --- |\n");
        for (i, r) in verdict.reviews.iter().enumerate() {
            let row = format!(
                "| `@{}` | {} | {} |\n",
                r.login,
                r.state.to_lowercase(),
                if r.counts {
                    "yes".to_string()
                } else {
                    format!("no: {}", r.why)
                }
            );
            if !fits(&out, &row) {
                let _ = writeln!(out, "\n…and {} more review(s).", verdict.reviews.len() - i);
                break;
            }
            out.push_str(&row);
        }
    }
    if !eligibility.is_empty() {
        let _ = write!(
            out,
            "\n**Eligibility**\n\n| request | action | project | resource | repository | \
             role of `@{author}` there | already holds it | projects holding the resource now |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for (i, e) in eligibility.iter().enumerate() {
            let row = format!(
                "| `{}` | {} | `{}` | `{}` | `{}`: {} | {} | {} | {} |\n",
                e.request,
                e.action,
                e.project,
                e.resource,
                e.repository,
                e.repository_state,
                e.author_role,
                if e.holds { "yes" } else { "no" },
                e.projects_now
            );
            if !fits(&out, &row) {
                let _ = writeln!(
                    out,
                    "\n…and {} more row(s); the whole report is in {whole}.",
                    eligibility.len() - i
                );
                break;
            }
            out.push_str(&row);
        }
    }
    // A fence longer than any run of backticks in the plan, which quotes file names.
    let longest = plan.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.clamp(2, 100) + 1);
    let _ = writeln!(
        out,
        "\n**Plan** (what `gatehouse apply` does once this is merged)\n\n{fence}text"
    );
    let room = MAX_COMMENT_CHARS.saturating_sub(out.chars().count() + 1_000);
    let shown = cut(plan, room);
    out.push_str(&shown);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "{fence}");
    if shown != plan {
        let _ = writeln!(out, "\nThe plan is cut here; the whole plan is in {whole}.");
    }
    let _ = writeln!(
        out,
        "\n<sub>Written by `gatehouse approvals`; edited in place on every run.</sub>"
    );
    cut(&out, MAX_COMMENT_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::approval::Approver;

    #[test]
    fn the_status_description_fits() {
        let v = Verdict {
            needed: 1,
            approved_by: vec![Approver {
                login: "x".repeat(200),
                id: None,
            }],
            reviews: vec![],
            missing: vec![],
            refused: None,
        };
        assert_eq!(description(&v, &[], "cf").chars().count(), MAX_DESCRIPTION);
    }
}
