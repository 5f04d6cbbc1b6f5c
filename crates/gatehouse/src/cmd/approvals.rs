//! `gatehouse approvals --pr N`: whether a pull request on the access repository has the
//! approvals it needs, told to GitHub as the commit status `gatehouse/approval` on the head
//! commit and as one pull request comment (edited in place on later runs) with the plan and an
//! eligibility report.
//!
//! Who must approve follows from the files the pull request changes. A request file needs the
//! reviewers of every resource it names (the resource's own `reviewers`, or gatehouse.yml's);
//! any other file (grants/, resources/, gatehouse.yml, people/, workflows, a request that cannot
//! be read) changes the rules or the ledger directly and needs the organisation-level reviewers
//! (gatehouse.yml's). One approval counts only when it is the reviewer's latest word, is on the
//! head commit, is not by the pull request's author, and comes from someone in every one of
//! those groups; the pull request needs the largest `min_approvals` among them.
//!
//! What is read from where: the pull request, its reviews and its list of changed files come
//! from GitHub's API. The files themselves are read from DIR, a checkout of the pull request's
//! head that is only ever parsed as data, never run. The rules (gatehouse.yml, resources/ and the
//! current grants) come from `--base`, a checkout of the base branch, when given: read from the
//! head, a pull request could name its own reviewers. This command does not judge whether a
//! request is well-formed; `gatehouse check` does, in its own workflow.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_core::Repo;
use gatehouse_core::model::Reviewers;
use gatehouse_core::names::{login_key, same_project};
use jiff::civil::Date;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::json;

use crate::cli::ApprovalsArgs;
use crate::github::{self, Client, Method, Secret, Service, Settings};

/// The commit status this command sets.
pub const STATUS_CONTEXT: &str = "gatehouse/approval";
/// Starts the one comment this command writes, so that later runs find it.
pub const MARKER: &str = "<!-- gatehouse:approvals -->";
/// GitHub refuses a status description longer than this.
const MAX_DESCRIPTION: usize = 140;
/// GitHub refuses a comment longer than 65,536 characters; the plan is cut well before.
const MAX_PLAN_CHARS: usize = 50_000;

pub fn run(args: ApprovalsArgs, today: Date) -> anyhow::Result<ExitCode> {
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

    let head = super::load_repo_warn(&args.dir, today)?;
    let rules = match &args.base {
        Some(base) => gatehouse_core::repo::load_dir(base)?,
        None => head.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let target = Target {
        owner,
        name,
        number: args.pr,
    };
    runtime.block_on(approvals(
        &client,
        &target,
        &head,
        &rules,
        args.head_sha.as_deref(),
        today,
    ))
}

/// The pull request being judged.
struct Target<'a> {
    owner: &'a str,
    name: &'a str,
    number: u64,
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

#[derive(Deserialize)]
struct Pull {
    head: Head,
    user: Option<User>,
}

#[derive(Deserialize)]
struct Head {
    sha: String,
}

#[derive(Clone, Deserialize)]
struct User {
    login: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct ChangedFile {
    filename: String,
    #[serde(default)]
    previous_filename: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Review {
    pub user: Option<ReviewUser>,
    pub state: String,
    #[serde(default)]
    pub commit_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ReviewUser {
    pub login: String,
}

#[derive(Deserialize)]
struct Member {
    login: String,
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
    let sha = pull.head.sha;
    if let Some(expected) = expected_head
        && !sha.eq_ignore_ascii_case(expected)
    {
        eprintln!(
            "{pr_name} has moved on from {expected} to {sha}; the files checked out are not its \
             head, so nothing is judged. The run for the new head judges it"
        );
        return Ok(ExitCode::from(1));
    }
    let author = pull.user.map(|u| u.login).unwrap_or_default();
    let files: Vec<ChangedFile> = client
        .get_all(&target.path(&["pulls", &n, "files"]), None)
        .await?
        .unwrap_or_default();
    let changed: Vec<String> = files
        .into_iter()
        .flat_map(|f| std::iter::once(f.filename).chain(f.previous_filename))
        .collect();
    let reviews: Vec<Review> = client
        .get_all(&target.path(&["pulls", &n, "reviews"]), None)
        .await?
        .unwrap_or_default();

    let needs = requirements(head_repo, rules, &changed)?;
    let mut teams = Teams::default();
    for need in &needs {
        for team in &need.teams {
            teams.resolve(client, org, team).await?;
        }
    }
    let verdict = judge(&needs, &teams.members, &reviews, &author, &sha);

    let eligibility = eligibility(client, head_repo, rules, &changed, &author, today).await;
    let plan = super::plan::make_plan(head_repo, today);
    let body = comment_body(
        org,
        &sha,
        &author,
        &needs,
        &verdict,
        &eligibility,
        &super::plan::text(&plan),
    );

    println!("{}", verdict.summary());
    let comment_url = match upsert_comment(client, target, &body).await {
        Ok(url) => url,
        Err(e) => {
            write_refused(e, "post the comment")?;
            None
        }
    };
    let status = json!({
        "state": if verdict.approved() { "success" } else { "pending" },
        "context": STATUS_CONTEXT,
        "description": description(&verdict, &needs, org),
        "target_url": comment_url,
    });
    match client
        .mutate::<IgnoredAny>(
            Method::POST,
            &target.path(&["statuses", &sha]),
            Some(&status),
        )
        .await
    {
        Ok(_) => eprintln!(
            "set {STATUS_CONTEXT} to {} on {}",
            status["state"].as_str().unwrap_or(""),
            short(&sha)
        ),
        Err(e) => write_refused(e, "set the commit status")?,
    }
    Ok(if verdict.approved() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
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
    members: HashMap<String, HashSet<String>>,
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
            members.into_iter().map(|m| login_key(&m.login)).collect(),
        );
        Ok(())
    }
}

/// The comment marked with [`MARKER`] is edited; one is created only when there is none.
async fn upsert_comment(
    client: &Client,
    target: &Target<'_>,
    body: &str,
) -> Result<Option<String>, github::Error> {
    let n = target.number.to_string();
    let comments: Vec<Comment> = client
        .get_all(&target.path(&["issues", &n, "comments"]), None)
        .await?
        .unwrap_or_default();
    let marked: Vec<&Comment> = comments
        .iter()
        .filter(|c| c.body.as_deref().is_some_and(|b| b.starts_with(MARKER)))
        .collect();
    // Anyone can paste the marker; a bot's comment (gatehouse's, with the workflow's token) is
    // preferred over a person's.
    let mine = marked
        .iter()
        .find(|c| {
            c.user
                .as_ref()
                .is_some_and(|u| u.kind.as_deref() == Some("Bot"))
        })
        .or(marked.first());
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

// ---------------------------------------------------------------------------------------------
// Who must approve (pure)

/// One group that must approve: a resource's reviewers, or the organisation's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// `resource <name>` or `organisation`.
    pub group: String,
    /// Why this group is asked: the files that need it.
    pub because: Vec<String>,
    pub teams: Vec<String>,
    /// Lower-cased logins.
    pub users: Vec<String>,
    pub min_approvals: u32,
}

const ORG_GROUP: &str = "organisation";

impl Requirement {
    fn new(group: String, reviewers: &Reviewers) -> Self {
        Requirement {
            group,
            because: Vec::new(),
            teams: reviewers.teams.iter().map(|t| t.value.clone()).collect(),
            users: reviewers.users.iter().map(|u| login_key(u)).collect(),
            min_approvals: reviewers.min_approvals.value,
        }
    }

    fn admits(&self, login: &str, members: &HashMap<String, HashSet<String>>) -> bool {
        let key = login_key(login);
        self.users.contains(&key)
            || self
                .teams
                .iter()
                .any(|t| members.get(t).is_some_and(|m| m.contains(&key)))
    }

    /// `@org/core or @wolfv`.
    fn who(&self, org: &str) -> String {
        let mut who: Vec<String> = self.teams.iter().map(|t| format!("@{org}/{t}")).collect();
        who.extend(self.users.iter().map(|u| format!("@{u}")));
        if who.is_empty() {
            "nobody (no reviewers are configured)".into()
        } else {
            who.join(" or ")
        }
    }
}

/// The groups that must approve a pull request that changes `changed` (paths, old names of
/// renamed files included). Requests are read from `head`, reviewers from `rules`.
pub fn requirements(
    head: &Repo,
    rules: &Repo,
    changed: &[String],
) -> anyhow::Result<Vec<Requirement>> {
    let settings = &rules
        .settings
        .as_ref()
        .context("the access repository has no gatehouse.yml; it names the reviewers")?
        .value;
    let mut needs: BTreeMap<String, Requirement> = BTreeMap::new();
    let mut need = |group: String, reviewers: &Reviewers, because: String| {
        let r = needs
            .entry(group.clone())
            .or_insert_with(|| Requirement::new(group, reviewers));
        if !r.because.contains(&because) {
            r.because.push(because);
        }
    };
    let org = |path: &str, why: &str| (ORG_GROUP.to_string(), format!("`{path}` {why}"));
    let mut seen = BTreeSet::new();
    for path in changed {
        if !seen.insert(path) {
            continue;
        }
        let request = head
            .requests
            .iter()
            .find(|r| r.path == *path)
            .and_then(|r| r.value.request.as_ref());
        let (group, because) = match request {
            Some(req) if !req.resources.is_empty() => {
                let mut unknown = None;
                for res in &req.resources {
                    match rules.resource(res) {
                        Some(r) => need(
                            format!("resource {}", res.value),
                            r.reviewers.as_ref().unwrap_or(&settings.reviewers),
                            format!("`{path}`"),
                        ),
                        None => unknown = Some(res.value.clone()),
                    }
                }
                match unknown {
                    None => continue,
                    Some(u) => org(path, &format!("names `{u}`, which is not a resource")),
                }
            }
            Some(_) => org(path, "names no resource"),
            None if path.starts_with("requests/") => {
                org(path, "is not a request that can be read (or is deleted)")
            }
            None if path.starts_with("grants/") => org(path, "edits the ledger directly"),
            None if path.starts_with("resources/") || path == "gatehouse.yml" => {
                org(path, "changes the rules")
            }
            None => org(path, "is not a request"),
        };
        need(group, &settings.reviewers, because);
    }
    if seen.is_empty() {
        need(
            ORG_GROUP.into(),
            &settings.reviewers,
            "the pull request changes no file".into(),
        );
    }
    Ok(needs.into_values().collect())
}

/// One reviewer's latest word, and whether it counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewLine {
    pub login: String,
    pub state: String,
    pub counts: bool,
    pub why: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub needed: u32,
    pub approved_by: Vec<String>,
    pub reviews: Vec<ReviewLine>,
    /// Who is still needed (empty once approved).
    pub missing: Vec<String>,
}

impl Verdict {
    pub fn approved(&self) -> bool {
        self.approved_by.len() as u64 >= u64::from(self.needed)
    }

    fn summary(&self) -> String {
        if self.approved() {
            format!(
                "approved: {} of {} approval(s){}",
                self.approved_by.len(),
                self.needed,
                if self.approved_by.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", self.approved_by.join(", "))
                }
            )
        } else {
            format!(
                "pending: {} of {} approval(s); {}",
                self.approved_by.len(),
                self.needed,
                self.missing.join("; ")
            )
        }
    }
}

/// Counts the approvals that satisfy every requirement. `reviews` are in GitHub's order (oldest
/// first); comments neither give nor take an approval, any other later review replaces it.
pub fn judge(
    needs: &[Requirement],
    members: &HashMap<String, HashSet<String>>,
    reviews: &[Review],
    author: &str,
    head_sha: &str,
) -> Verdict {
    let needed = needs.iter().map(|r| r.min_approvals).max().unwrap_or(1);
    let mut latest: Vec<(String, &Review)> = Vec::new();
    for review in reviews {
        let Some(user) = &review.user else { continue };
        if matches!(review.state.as_str(), "COMMENTED" | "PENDING") {
            continue;
        }
        let key = login_key(&user.login);
        match latest.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = review,
            None => latest.push((key, review)),
        }
    }
    let mut lines = Vec::new();
    let mut approved_by = Vec::new();
    for (key, review) in latest {
        let login = review
            .user
            .as_ref()
            .map_or(key.clone(), |u| u.login.clone());
        let outside: Vec<&str> = needs
            .iter()
            .filter(|r| !r.admits(&login, members))
            .map(|r| r.group.as_str())
            .collect();
        let why = if review.state != "APPROVED" {
            format!("latest review is {}", review.state.to_lowercase())
        } else if key == login_key(author) {
            "the author cannot approve their own pull request".into()
        } else if review.commit_id.as_deref() != Some(head_sha) {
            "approved an older commit".into()
        } else if !outside.is_empty() {
            format!("not a reviewer of {}", outside.join(", "))
        } else {
            String::new()
        };
        let counts = why.is_empty();
        if counts {
            approved_by.push(login.clone());
        }
        lines.push(ReviewLine {
            login,
            state: review.state.clone(),
            counts,
            why: if counts { "counts".into() } else { why },
        });
    }
    let mut verdict = Verdict {
        needed,
        approved_by,
        reviews: lines,
        missing: Vec::new(),
    };
    if !verdict.approved() {
        let more = u64::from(needed) - verdict.approved_by.len() as u64;
        verdict.missing.push(format!(
            "needs {more} more approval(s) on the head commit{}",
            if needs.len() > 1 {
                " from someone who is in every group below"
            } else {
                ""
            }
        ));
    }
    verdict
}

/// The commit status's one line: who approved, or who is still needed.
fn description(verdict: &Verdict, needs: &[Requirement], org: &str) -> String {
    let text = if verdict.approved() {
        if verdict.approved_by.is_empty() {
            "no approval needed".to_string()
        } else {
            format!("approved by {}", verdict.approved_by.join(", "))
        }
    } else {
        let more = u64::from(verdict.needed) - verdict.approved_by.len() as u64;
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

fn comment_body(
    org: &str,
    sha: &str,
    author: &str,
    needs: &[Requirement],
    verdict: &Verdict,
    eligibility: &[Eligibility],
    plan: &str,
) -> String {
    let mut out = format!("{MARKER}\n### gatehouse: approvals\n\n");
    let _ = writeln!(
        out,
        "**{}**: {} of {} approval(s) on the head commit `{}`.\n",
        if verdict.approved() {
            "Approved"
        } else {
            "Pending"
        },
        verdict.approved_by.len(),
        verdict.needed,
        short(sha)
    );
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
            r.because.join(", ")
        );
    }
    if !author.is_empty() {
        let _ = writeln!(
            out,
            "\nThe author, `@{author}`, cannot approve their own pull request."
        );
    }
    if !verdict.reviews.is_empty() {
        out.push_str("\n| reviewer | latest review | counts? |\n| --- | --- | --- |\n");
        for r in &verdict.reviews {
            let _ = writeln!(
                out,
                "| `@{}` | {} | {} |",
                r.login,
                r.state.to_lowercase(),
                if r.counts {
                    "yes".to_string()
                } else {
                    format!("no: {}", r.why)
                }
            );
        }
    }
    if !eligibility.is_empty() {
        let _ = write!(
            out,
            "\n**Eligibility**\n\n| request | action | project | resource | repository | \
             role of `@{author}` there | already holds it | projects holding the resource now |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for e in eligibility {
            let _ = writeln!(
                out,
                "| `{}` | {} | `{}` | `{}` | `{}`: {} | {} | {} | {} |",
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
        }
    }
    // A fence longer than any run of backticks in the plan, which quotes file names.
    let longest = plan.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(
        out,
        "\n**Plan** (what `gatehouse apply` does once this is merged)\n\n{fence}text"
    );
    out.push_str(&cut(plan, MAX_PLAN_CHARS));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{fence}\n\n<sub>Written by `gatehouse approvals`; edited in place on every run.</sub>"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: &str = "org: cf\nreviewers: { teams: [core] }\n";

    fn repo(extra: &[(&str, &str)]) -> Repo {
        let mut files = vec![
            ("gatehouse.yml", SETTINGS),
            (
                "resources/gpu.yml",
                "name: gpu\nprovider: p\nreviewers: { teams: [gpu], min_approvals: 2 }\n",
            ),
            ("resources/cpu.yml", "name: cpu\nprovider: p\n"),
        ];
        files.extend_from_slice(extra);
        Repo::from_sources(files)
    }

    fn review(login: &str, state: &str, sha: &str) -> Review {
        Review {
            user: Some(ReviewUser {
                login: login.into(),
            }),
            state: state.into(),
            commit_id: Some(sha.into()),
        }
    }

    fn members() -> HashMap<String, HashSet<String>> {
        HashMap::from([
            ("core".into(), HashSet::from(["ada".into(), "bob".into()])),
            ("gpu".into(), HashSet::from(["ada".into(), "cy".into()])),
        ])
    }

    #[test]
    fn a_request_needs_its_resources_reviewers_and_other_files_the_organisation() {
        let r = repo(&[(
            "requests/x.yml",
            "action: grant\nprojects: [x]\nresources: [gpu, cpu]\n",
        )]);
        let needs = requirements(&r, &r, &["requests/x.yml".into()]).unwrap();
        let groups: Vec<_> = needs.iter().map(|n| n.group.as_str()).collect();
        assert_eq!(groups, ["resource cpu", "resource gpu"]);
        assert_eq!(needs[0].teams, ["core"]);
        assert_eq!(needs[1].min_approvals, 2);

        let needs = requirements(&r, &r, &["grants/x.yml".into()]).unwrap();
        assert_eq!(needs.len(), 1);
        assert_eq!(needs[0].group, ORG_GROUP);
        assert!(needs[0].because[0].contains("ledger"), "{needs:?}");
    }

    #[test]
    fn the_latest_decisive_review_wins_and_comments_do_not_count() {
        let r = repo(&[(
            "requests/x.yml",
            "action: grant\nprojects: [x]\nresources: [cpu]\n",
        )]);
        let needs = requirements(&r, &r, &["requests/x.yml".into()]).unwrap();
        let judged = |reviews: &[Review]| judge(&needs, &members(), reviews, "req", "h2");
        assert!(judged(&[review("Ada", "APPROVED", "h2")]).approved());
        assert!(
            judged(&[
                review("ada", "APPROVED", "h2"),
                review("ADA", "COMMENTED", "h2")
            ])
            .approved()
        );
        assert!(
            !judged(&[
                review("ada", "APPROVED", "h2"),
                review("ada", "CHANGES_REQUESTED", "h2")
            ])
            .approved()
        );
        assert!(!judged(&[review("ada", "APPROVED", "h1")]).approved());
        assert!(!judged(&[review("eve", "APPROVED", "h2")]).approved());
        let own = judge(
            &needs,
            &members(),
            &[review("ada", "APPROVED", "h2")],
            "ADA",
            "h2",
        );
        assert!(!own.approved());
        assert!(own.reviews[0].why.contains("own"));
    }

    #[test]
    fn an_approver_must_be_in_every_group_and_the_largest_minimum_applies() {
        let r = repo(&[(
            "requests/x.yml",
            "action: grant\nprojects: [x]\nresources: [gpu, cpu]\n",
        )]);
        let needs = requirements(&r, &r, &["requests/x.yml".into()]).unwrap();
        let v = judge(
            &needs,
            &members(),
            &[
                review("ada", "APPROVED", "h"),
                review("bob", "APPROVED", "h"),
                review("cy", "APPROVED", "h"),
            ],
            "req",
            "h",
        );
        assert_eq!(v.needed, 2);
        assert_eq!(v.approved_by, ["ada"]);
        assert!(!v.approved());
    }

    #[test]
    fn the_status_description_fits() {
        let v = Verdict {
            needed: 1,
            approved_by: vec!["x".repeat(200)],
            reviews: vec![],
            missing: vec![],
        };
        assert_eq!(description(&v, &[], "cf").chars().count(), MAX_DESCRIPTION);
    }
}
