//! `gatehouse audit`: reads the project checkouts, the guard's database and (online) GitHub and
//! the providers, and finds what [`run`] reports (the command line prints it with `check`'s
//! renderers, or as SARIF with [`sarif`]).
//!
//! The rules are in `gatehouse_core::audit`; this file does the reading and answers the rules'
//! routing questions from the compiled policy, the same one the guard decides with. [`run`]
//! holds the list of what an audit looks at, one line each.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use gatehouse_core::audit::catalogue::{self, CATALOGUE_FILE};
use gatehouse_core::audit::{
    self, BUILD_CONFIG, CONDA_FORGE_YML, GrantState, Ledger, Routed, RunnerGroupFact,
};
use gatehouse_core::check::{check_online, online_targets};
use gatehouse_core::model::Standing;
use gatehouse_core::parse::MAX_FILE_BYTES;
use gatehouse_core::{Diagnostic, Diagnostics, Severity, Span};
use gatehouse_policy::{Policy, compile};
use jiff::civil::Date;

use gatehouse_providers::{self as providers, Configured};

/// The compiled policy, answering audit's questions as the guard would.
pub struct PolicyLedger<'a> {
    pub policy: &'a Policy,
    /// What the policy does not carry (jobs' time limits).
    pub repo: &'a gatehouse_core::Repo,
    pub today: Date,
}

impl Ledger for PolicyLedger<'_> {
    fn project_of(&self, name: &str) -> Option<String> {
        let full = format!("{}/{name}", self.policy.org());
        self.policy.project_of(&full).map(str::to_string)
    }

    fn route(&self, labels: &[&str], group: Option<&str>) -> Routed {
        match self.policy.route_job(labels.iter().copied(), group) {
            Ok(None) => Routed::None,
            Ok(Some(id)) => Routed::One(self.policy.resource(id).name.to_string()),
            Err((a, b)) => Routed::Ambiguous(
                self.policy.resource(a).name.to_string(),
                self.policy.resource(b).name.to_string(),
            ),
        }
    }

    fn grant(&self, project: &str, resource: &str) -> GrantState {
        let found = self.policy.grants().find(|(_, g)| {
            g.project.eq_ignore_ascii_case(project)
                && &*self.policy.resource(g.resource).name == resource
        });
        match found {
            None => GrantState::None,
            Some((_, g)) => match g.validity().on(self.today) {
                Standing::Expired(day) => GrantState::Expired(day),
                Standing::Active | Standing::NotYet(_) => GrantState::Active {
                    pull_request: g.pull_request,
                },
            },
        }
    }

    fn max_job_minutes(&self, resource: &str) -> Option<u32> {
        self.repo.max_job_minutes(resource)
    }
}

/// What `gatehouse audit` is asked to read.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// The access repository's top folder.
    pub dir: PathBuf,
    /// The folder of project checkouts (`--projects`).
    pub projects: Option<PathBuf>,
    /// The guard's database, read only (`--db`).
    pub db: Option<String>,
    /// Ask GitHub and the providers (`--online`).
    pub online: bool,
    /// With `db`: how many days without a job make a grant idle.
    pub idle_days: u32,
}

/// Every finding of an audit, each naming its file relative to where audit runs.
pub fn run(
    args: &AuditOptions,
    today: Date,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Diagnostics> {
    if args.projects.is_none() && args.db.is_none() && !args.online {
        anyhow::bail!("nothing to audit: pass --projects DIR, --db URL or --online (or several)");
    }
    let repo = crate::load_repo_warn(&args.dir, today)?;
    let policy = compile(&repo, today);
    let ledger = PolicyLedger {
        policy: &policy,
        repo: &repo,
        today,
    };
    // Findings about the access repository name its files relative to it; findings about
    // projects relative to the projects folder. Both are shown relative to where audit runs.
    let mut repo_diags = Diagnostics::new();
    let mut project_diags = Diagnostics::new();
    for d in accept_unreviewed(&repo)
        .into_iter()
        .chain(gatehouse_core::audit::bots::trusted_bots(&repo))
    {
        repo_diags.push(d);
    }

    if let Some(projects) = &args.projects {
        project_diags.extend(audit_projects(&ledger, projects)?);
    }
    if let Some(url) = &args.db {
        let last_used = last_allowed_jobs(url, rt)?;
        repo_diags.extend(audit::idle_grants(
            &repo,
            today,
            i64::from(args.idle_days),
            &last_used,
        ));
        repo_diags.extend(usage_outliers(url, &repo, today, rt)?);
        for d in crate::run_approval_rows::audit(url, &repo, today, rt)? {
            repo_diags.push(d);
        }
    }
    if args.online {
        repo_diags.extend(online(&args.dir, &repo, &ledger, today, rt)?);
    }

    let mut all = Diagnostics::new();
    for d in repo_diags {
        all.push(relocate(d, &args.dir));
    }
    if let Some(projects) = &args.projects {
        for d in project_diags {
            all.push(relocate(d, projects));
        }
    }
    Ok(all)
}

/// Every account whose requests `apply` grants with no pull request (`accept_unreviewed` in
/// gatehouse.yml): nobody reviews those, so an audit lists them.
fn accept_unreviewed(repo: &gatehouse_core::Repo) -> Vec<Diagnostic> {
    let Some(settings) = &repo.settings else {
        return Vec::new();
    };
    settings
        .value
        .accept_unreviewed
        .iter()
        .map(|u| {
            let id = repo
                .account_of(&u.value)
                .map_or("no account id: matches nobody".to_string(), |id| {
                    format!("id {id}")
                });
            Diagnostic::warning(
                "accept-unreviewed",
                settings.path.as_str(),
                u.span,
                format!(
                    "requests committed by `{}` ({id}) straight to the default branch are granted \
                     with no review (accept_unreviewed)",
                    u.value.login()
                ),
            )
            .with_help("remove the entry to grant only requests whose pull request was approved")
        })
        .collect()
}

/// `d` with its file named relative to the current folder rather than to `base`.
pub fn relocate(mut d: Diagnostic, base: &Path) -> Diagnostic {
    let joined = if d.file.is_empty() {
        base.to_path_buf()
    } else {
        base.join(&d.file)
    };
    let text = joined.to_string_lossy().replace('\\', "/");
    d.file = text.strip_prefix("./").unwrap_or(&text).to_string();
    d
}

/// Audits every project checkout under `dir`, in name order.
pub fn audit_projects(ledger: &PolicyLedger<'_>, dir: &Path) -> anyhow::Result<Diagnostics> {
    let mut diags = Diagnostics::new();
    let meta = fs::metadata(dir).with_context(|| format!("{}: cannot read", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!(
            "{}: not a directory; pass the folder that holds the project checkouts",
            dir.display()
        );
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        names.push(name);
    }
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if meta.file_type().is_symlink() {
            diags.push(symlink_finding(&name));
            continue;
        }
        if !meta.is_dir() {
            continue;
        }
        let files = read_project(&path, &name, &mut diags)?;
        diags.extend(audit::audit_project(ledger, &name, &files));
    }
    Ok(diags)
}

fn symlink_finding(rel: &str) -> Diagnostic {
    Diagnostic::warning(
        "audit-unreadable",
        rel,
        Span::UNKNOWN,
        "is a symbolic link; audit does not follow links, so that nothing outside the checkouts is read",
    )
    .with_help("replace the link with the checkout itself")
}

/// The files of one checkout that audit reads: `(path in the checkout, contents)`. Links are
/// reported, not followed; a file is read up to one byte past the limit (the parser reports it).
fn read_project(
    root: &Path,
    name: &str,
    diags: &mut Diagnostics,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut wanted = vec![
        CONDA_FORGE_YML.to_string(),
        BUILD_CONFIG.to_string(),
        audit::CIRUN_YML.to_string(),
    ];
    let workflows = root.join(".github/workflows");
    if !has_link_on_the_way(root, ".github/workflows", name, diags) && workflows.is_dir() {
        let mut found = Vec::new();
        for entry in fs::read_dir(&workflows)
            .with_context(|| format!("{}: cannot list", workflows.display()))?
        {
            let entry = entry?;
            if let Some(file) = entry.file_name().to_str() {
                let rel = format!(".github/workflows/{file}");
                if audit::is_workflow_path(&rel) {
                    found.push(rel);
                }
            }
        }
        found.sort();
        wanted.extend(found);
    }
    let mut files = Vec::new();
    for rel in wanted {
        if rel == BUILD_CONFIG && has_link_on_the_way(root, "recipe", name, diags) {
            continue;
        }
        let full = root.join(&rel);
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", full.display())),
        };
        if meta.file_type().is_symlink() {
            diags.push(symlink_finding(&format!("{name}/{rel}")));
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        let mut bytes = Vec::new();
        fs::File::open(&full)
            .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
            .with_context(|| format!("{}: cannot read", full.display()))?;
        files.push((rel, bytes));
    }
    Ok(files)
}

/// Whether a folder on `rel` (inside `root`) is a symbolic link; reports it if so.
fn has_link_on_the_way(root: &Path, rel: &str, name: &str, diags: &mut Diagnostics) -> bool {
    let mut prefix = PathBuf::new();
    for part in rel.split('/') {
        prefix.push(part);
        if fs::symlink_metadata(root.join(&prefix)).is_ok_and(|m| m.file_type().is_symlink()) {
            diags.push(symlink_finding(&format!(
                "{name}/{}",
                prefix.to_string_lossy().replace('\\', "/")
            )));
            return true;
        }
    }
    false
}

/// Rows of `sql` from the guard's store at `url`, opened read-only (`what` names them in
/// errors; a PostgreSQL URL, which may hold a password, is never quoted).
pub(crate) fn read_only_rows<T>(
    url: &str,
    sql: &str,
    what: &str,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    rt.block_on(async {
        if url.starts_with("sqlite:") {
            use sqlx::sqlite::SqliteConnectOptions;
            let options = SqliteConnectOptions::from_str(url)
                .context("--db is not a SQLite URL such as sqlite://gatehouse.db")?
                .read_only(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .context("cannot open the SQLite database given with --db")?;
            let rows = sqlx::query_as(sql)
                .fetch_all(&pool)
                .await
                .with_context(|| format!("cannot read {what} from --db"))?;
            pool.close().await;
            Ok::<_, anyhow::Error>(rows)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            use sqlx::postgres::PgConnectOptions;
            // The URL may hold a password: errors name only the backend.
            let options = PgConnectOptions::from_str(url)
                .map_err(|_| anyhow::anyhow!("--db is not a PostgreSQL URL"))?
                .options([("default_transaction_read_only", "on")]);
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|_| {
                    anyhow::anyhow!("cannot connect to the PostgreSQL database given with --db")
                })?;
            let rows = sqlx::query_as(sql)
                .fetch_all(&pool)
                .await
                .with_context(|| format!("cannot read {what} from --db"))?;
            pool.close().await;
            Ok(rows)
        } else {
            anyhow::bail!("--db must start with sqlite:// or postgres://")
        }
    })
}

/// This week's outliers (`guard.outliers` of gatehouse.yml) from the minutes in the store.
fn usage_outliers(
    url: &str,
    repo: &gatehouse_core::Repo,
    today: Date,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Diagnostics> {
    let settings = repo
        .settings
        .as_ref()
        .map(|s| s.value.guard.outliers.clone())
        .unwrap_or_default();
    let (from, until) = gatehouse_core::outliers::window(today, &settings);
    // The days are ours (YYYY-MM-DD), never input: written into the statement.
    let sql = format!(
        "SELECT project, day, CAST(SUM(minutes) AS BIGINT) FROM job_minutes \
         WHERE day >= '{from}' AND day < '{until}' GROUP BY project, day"
    );
    let rows: Vec<(String, String, i64)> = read_only_rows(url, &sql, "the guard's minutes", rt)?;
    let rows = rows.into_iter().filter_map(|(project, day, minutes)| {
        Some((
            project,
            day.parse::<Date>().ok()?,
            u64::try_from(minutes).ok()?,
        ))
    });
    let file = if repo.settings.is_some() {
        "gatehouse.yml"
    } else {
        ""
    };
    let mut diags = Diagnostics::new();
    for o in gatehouse_core::outliers::from_days(rows, today, &settings) {
        diags.push(
            Diagnostic::warning(
                "audit-usage-outlier",
                file,
                Span::UNKNOWN,
                format!(
                    "`{}` used {} minutes this week, more than {} times its usual week ({} minutes, the median of its previous {} weeks)",
                    o.project, o.minutes, settings.factor, o.median, settings.weeks
                ),
            )
            .with_help("look at its recent runs (the dashboard's project page): a loop of re-runs, a bot, or a new matrix; `guard.outliers` in gatehouse.yml sets the factor, the weeks and the floor"),
        );
    }
    Ok(diags)
}

/// The day of each (lower-cased project, resource)'s latest allowed job, from the guard's
/// decisions.
fn last_allowed_jobs(
    url: &str,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<HashMap<(String, String), Date>> {
    const SQL: &str = "SELECT project, resource, MAX(decided_at) FROM decisions \
        WHERE outcome = 'allow' AND project IS NOT NULL AND resource IS NOT NULL \
        GROUP BY project, resource";
    let rows: Vec<(String, String, String)> =
        read_only_rows(url, SQL, "the guard's decisions", rt)?;
    let mut out: HashMap<(String, String), Date> = HashMap::new();
    for (project, resource, at) in rows {
        // `decided_at` is an RFC 3339 timestamp; its first ten characters are the UTC day.
        let Some(day) = at.get(..10).and_then(|d| d.parse::<Date>().ok()) else {
            continue;
        };
        let key = (project.to_ascii_lowercase(), resource);
        let slot = out.entry(key).or_insert(day);
        if day > *slot {
            *slot = day;
        }
    }
    Ok(out)
}

/// The online part: archived projects and ToS logins (the facts `check --online` gathers),
/// provider drift (what `apply` would change) and runner groups open to public repositories.
fn online(
    dir: &Path,
    repo: &gatehouse_core::Repo,
    ledger: &PolicyLedger<'_>,
    today: Date,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Diagnostics> {
    let mut diags = Diagnostics::new();
    let Some(token) = std::env::var("GITHUB_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    else {
        anyhow::bail!(
            "--online needs GITHUB_TOKEN (a token that can read the organisation's repositories and runner groups)"
        );
    };
    let Some(settings) = &repo.settings else {
        anyhow::bail!("the access repository has no gatehouse.yml");
    };
    let org = settings.value.org.value.clone();
    let (projects, logins) = online_targets(repo);
    let facts = crate::online::gather(
        &token,
        &org,
        &settings.value.repo_suffix,
        &projects,
        &logins,
        rt,
    )
    .context("asking GitHub about projects and logins")?;
    // Only what concerns grants and the ToS list: requests are `check`'s business.
    for d in check_online(repo, &facts) {
        if !d.file.starts_with("requests/") {
            diags.push(d);
        }
    }

    // What `gatehouse plan` shows: merged requests and expiries that `apply` has not made yet.
    // Until it runs, providers lag the ledger by exactly these changes.
    let plan = crate::plan::make_plan(repo, today);
    for c in &plan.ledger {
        diags.push(
            Diagnostic::warning(
                "audit-pending-change",
                settings.path.as_str(),
                Span::UNKNOWN,
                format!("the ledger is not applied yet: {c}"),
            )
            .with_help("run `gatehouse apply --confirm` (or `gatehouse expire --confirm`)"),
        );
    }
    let clients = providers::Clients::from_env();
    // Every provider of gatehouse.yml, then the configuration pull requests of `send_pr`
    // grants as `apply` recorded sending them (compared only when there are any).
    let mut compared: Vec<(&str, Span, anyhow::Result<Configured>)> = settings
        .value
        .providers
        .iter()
        .map(|(name, p)| {
            let configured = providers::configure(repo, name, p, today, &clients);
            (name.as_str(), p.kind_at(), configured)
        })
        .collect();
    if let Ok(client) = clients.github() {
        let sent = crate::sent_configuration(dir);
        let config = providers::FeedstockConfig::new(client, repo, today, sent);
        if !config.is_idle() {
            compared.push((
                providers::feedstock_config::NAME,
                Span::UNKNOWN,
                Ok(Configured::FeedstockConfig(config)),
            ));
        }
    }
    for (name, span, configured) in compared {
        let drift = configured.and_then(|c| rt.block_on(providers::drift(repo, name, &c)));
        match drift {
            Err(e) => diags.push(Diagnostic::warning(
                "audit-unverified",
                settings.path.as_str(),
                span,
                format!("could not compare provider `{name}` with the ledger: {e:#}"),
            )),
            Ok(drift) => {
                for c in drift.changes {
                    diags.push(
                        Diagnostic::error(
                            "audit-drift",
                            settings.path.as_str(),
                            span,
                            format!("provider `{name}` differs from the ledger: {c}"),
                        )
                        .with_help("run `gatehouse apply --confirm` (a grant the ledger does not hold is access nobody approved)"),
                    );
                }
                for l in drift.limits {
                    diags.push(
                        Diagnostic::error(
                            "audit-drift",
                            settings.path.as_str(),
                            span,
                            format!("provider `{name}`'s limit differs from the ledger's caps: {l}"),
                        )
                        .with_help("run `gatehouse apply --confirm` (the caps are the ledger's; change them there)"),
                    );
                }
            }
        }
    }

    // Repositories where Cirun is installed (Cirun's own app installation) without a grant.
    for (name, p) in &settings.value.providers {
        let (gatehouse_core::model::ProviderKind::Cirun, Some(installation)) =
            (p.kind(), p.installation_id())
        else {
            continue;
        };
        let granted = crate::granted_at(repo, name, today);
        let installed = clients.admin().and_then(|c| {
            rt.block_on(providers::cirun_app::installed_repositories(
                &c,
                installation.value,
            ))
        });
        match installed {
            Err(e) => diags.push(Diagnostic::warning(
                "audit-unverified",
                settings.path.as_str(),
                installation.span,
                format!("could not list Cirun's app installation of provider `{name}`: {e:#}"),
            )),
            Ok(installed) => {
                for r in providers::cirun_app::ungranted(&installed, &granted) {
                    diags.push(
                        Diagnostic::error(
                            "audit-cirun-ungranted",
                            settings.path.as_str(),
                            installation.span,
                            format!(
                                "Cirun is installed on {r} (app installation {}), which holds no grant of a resource of `{name}`",
                                installation.value
                            ),
                        )
                        .with_help("`gatehouse apply --confirm --deactivate-ungranted` switches Cirun off there (cirun-py's set_repo, and out of the installation); or grant it a resource through a request"),
                    );
                }
            }
        }
    }

    // Catalogue runners (`.cirun.global.yml` beside the policy) that no resource names.
    for (name, p) in &settings.value.providers {
        let gatehouse_core::model::ProviderSettings::Cirun(cirun) = p else {
            continue;
        };
        let access_repo = &cirun.access_repo;
        let file = format!("{org}/{}/{CATALOGUE_FILE}", access_repo.value);
        let read = clients.github().and_then(|c| {
            rt.block_on(providers::contents::read_file(
                &c,
                &org,
                &access_repo.value,
                CATALOGUE_FILE,
                None,
            ))
        });
        let unnamed = match read {
            // No catalogue: Cirun has no organisation runners to govern.
            Ok(None) => continue,
            Ok(Some(f)) => catalogue::unnamed_runners(repo, name, &file, f.text.as_bytes())
                .map_err(|d| anyhow::anyhow!("{}: {}", d.location(), d.message)),
            Err(e) => Err(e),
        };
        match unnamed {
            Err(e) => diags.push(Diagnostic::warning(
                "audit-unverified",
                settings.path.as_str(),
                access_repo.span,
                format!("could not read Cirun's runner catalogue of provider `{name}`: {e:#}"),
            )),
            Ok(unnamed) => {
                for r in unnamed {
                    diags.push(
                        Diagnostic::error(
                            "audit-cirun-unnamed-runner",
                            settings.path.as_str(),
                            access_repo.span,
                            format!(
                                "Cirun's catalogue runner `{}` ({file}, line {}) is named by no resource of `{name}`: no grant governs it, and the guard does not decide its jobs",
                                r.value, r.span.line
                            ),
                        )
                        .with_help("add a resource with that name (and its labels) so that grants govern it, or remove the runner from the catalogue"),
                    );
                }
            }
        }
    }

    match rt.block_on(runner_groups(&clients, &org)) {
        Ok(groups) => diags.extend(audit::public_runner_groups(repo, ledger, &groups)),
        Err(e) => diags.push(Diagnostic::warning(
            "audit-unverified",
            settings.path.as_str(),
            settings.value.org.span,
            format!("could not list the runner groups of {org}: {e:#}"),
        )),
    }
    Ok(diags)
}

/// The organisation's runner groups, with the repositories of those that allow public
/// repositories (listed through the runner-group provider's own calls).
async fn runner_groups(
    clients: &providers::Clients,
    org: &str,
) -> anyhow::Result<Vec<RunnerGroupFact>> {
    let client = clients.github()?;
    let mut out = Vec::new();
    for g in providers::runner_groups(&client, org).await? {
        let visibility = g.visibility.clone().unwrap_or_default();
        let repositories = if g.allows_public_repositories && visibility == "selected" {
            providers::group_repositories(&client, org, &g).await?
        } else {
            Vec::new()
        };
        out.push(RunnerGroupFact {
            name: g.name,
            visibility,
            allows_public_repositories: g.allows_public_repositories,
            repositories,
        });
    }
    Ok(out)
}

/// SARIF 2.1.0 for GitHub code scanning: one rule per finding code, with GitHub's
/// `security-severity` (high for errors, medium for warnings).
pub fn sarif(diags: &[Diagnostic]) -> serde_json::Value {
    use serde_json::json;
    let mut rules: Vec<(&str, Severity)> = Vec::new();
    for d in diags {
        match rules.iter_mut().find(|(code, _)| *code == d.code) {
            Some((_, sev)) => *sev = (*sev).min(d.severity),
            None => rules.push((d.code, d.severity)),
        }
    }
    let level = |s: Severity| match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let rules_json: Vec<_> = rules
        .iter()
        .map(|(code, sev)| {
            json!({
                "id": code,
                "name": code,
                "shortDescription": { "text": code.replace('-', " ") },
                "defaultConfiguration": { "level": level(*sev) },
                "properties": {
                    "security-severity": if *sev == Severity::Error { "8.0" } else { "5.0" },
                    "tags": ["security"],
                },
            })
        })
        .collect();
    let results: Vec<_> = diags
        .iter()
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(help) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(help);
            }
            let mut result = json!({
                "ruleId": d.code,
                "ruleIndex": rules.iter().position(|(c, _)| *c == d.code),
                "level": level(d.severity),
                "message": { "text": text },
            });
            if !d.file.is_empty() {
                let mut physical = json!({ "artifactLocation": { "uri": d.file } });
                if d.span.is_known() {
                    physical["region"] = json!({
                        "startLine": d.span.line,
                        "startColumn": d.span.column.max(1),
                    });
                }
                result["locations"] = json!([{ "physicalLocation": physical }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "gatehouse",
                "informationUri": "https://github.com/conda-forge/gatehouse",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules_json,
            }},
            "results": results,
        }],
    })
}
