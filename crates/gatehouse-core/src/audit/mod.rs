//! `gatehouse audit`: the other side of the ledger. `check` validates the access repository;
//! audit reads the projects' own files (workflows, `conda-forge.yml`) and the guard's records
//! and reports what would let one project use another's resource, let a fork's code reach a
//! runner, or keep a grant nobody uses.
//!
//! The rules here are pure: the caller reads the files and supplies a [`Ledger`], which answers
//! routing and grant questions from the compiled policy (so audit routes labels exactly as the
//! guard does, and holds no label rules of its own). Findings are [`Diagnostic`]s: an error is
//! a high-severity finding, a warning a medium one.

pub mod bots;
pub mod catalogue;
pub mod expr;
pub mod run_approvals;
pub mod workflow;
pub mod yaml;

use std::collections::HashMap;

use jiff::civil::Date;

use crate::diag::{Diagnostic, Diagnostics};
use crate::repo::Repo;
use crate::span::{Span, Spanned};

use workflow::{
    JobTimeout, Label, LabelSet, Workflow, reaches, read_build_config_labels, read_conda_forge_yml,
    read_workflow,
};

/// Where a set of labels goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    /// No managed resource.
    None,
    One(String),
    /// Two different resources (the guard denies such jobs).
    Ambiguous(String, String),
}

/// A project's grant of one resource, as of the audit's day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantState {
    None,
    Active { pull_request: bool },
    Expired(Date),
}

/// The questions audit asks of the access repository. The CLI answers them from the compiled
/// policy (`gatehouse_policy::Policy`), which is what the guard decides with.
pub trait Ledger {
    /// The project that repository `name` (without owner: `pytorch-cpu-feedstock`) is, or `None`
    /// when it is not a project repository of the organisation.
    fn project_of(&self, name: &str) -> Option<String>;
    /// Where a job asking for `labels` goes, on the organisation's runner group `group` when
    /// its `runs-on` names one: the guard's own router.
    fn route(&self, labels: &[&str], group: Option<&str>) -> Routed;
    fn grant(&self, project: &str, resource: &str) -> GrantState;
    /// The longest a job of `resource` may run, in minutes (`max_job_minutes`).
    fn max_job_minutes(&self, _resource: &str) -> Option<u32> {
        None
    }
}

/// Events a person without write access to the project can cause: each starts a workflow in
/// the project's own repository, with its secrets and its runners, for anyone (with what starts
/// it, in words). From GitHub's "Events that trigger workflows"
/// (https://docs.github.com/en/actions/reference/workflows-and-actions/events-that-trigger-workflows):
/// anyone may open a pull request from a fork (`pull_request_target`, and `workflow_run` after
/// the run it started), comment, open issues and discussions, fork or star a public repository,
/// and edit a wiki left open to everyone; apps report checks and statuses on every pull
/// request's commits, a fork's included. The other events need write access (`push`,
/// `workflow_dispatch`, `release`, labels, milestones, ...) or happen on their own
/// (`schedule`). The `pull_request` events are judged by the grant instead.
pub const FORK_REACHABLE_EVENTS: &[(&str, &str)] = &[
    ("pull_request_target", "a pull request from any fork"),
    (
        "workflow_run",
        "the end of a run that a fork's pull request started",
    ),
    ("issue_comment", "a comment by anyone"),
    ("issues", "an issue anyone opens"),
    ("discussion", "a discussion anyone opens"),
    ("discussion_comment", "a discussion comment by anyone"),
    ("fork", "anyone forking the repository"),
    ("watch", "anyone starring the repository"),
    ("gollum", "a wiki edit, anyone's when the wiki is open"),
    (
        "check_run",
        "an app's check on any pull request, a fork's included",
    ),
    (
        "check_suite",
        "an app's checks on any pull request, a fork's included",
    ),
    (
        "status",
        "an app's commit status on any pull request, a fork's included",
    ),
];

/// What starts `event` when a person without write access can, in words.
pub fn fork_reachable(event: &str) -> Option<&'static str> {
    FORK_REACHABLE_EVENTS
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(event))
        .map(|(_, how)| *how)
}

/// Events that build a pull request's code; a grant's `pull_request` must allow them.
pub const PULL_REQUEST_EVENTS: &[&str] = &[
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
];

/// The workflow files under a project checkout that audit reads, relative to the checkout.
pub fn is_workflow_path(rel: &str) -> bool {
    rel.strip_prefix(".github/workflows/").is_some_and(|name| {
        !name.contains('/') && (name.ends_with(".yml") || name.ends_with(".yaml"))
    })
}

pub const CONDA_FORGE_YML: &str = "conda-forge.yml";
/// A project's own Cirun configuration: runners it defines itself, outside the organisation's
/// catalogue (`.cirun.global.yml`), which the access policy may not cover.
pub const CIRUN_YML: &str = ".cirun.yml";

/// The part of a project's `.cirun.yml` audit reads; Cirun's other runner options are ignored.
#[derive(serde::Deserialize)]
struct OwnCirun {
    #[serde(default)]
    runners: Vec<OwnRunner>,
}

#[derive(serde::Deserialize)]
struct OwnRunner {
    name: Spanned<String>,
}
pub const BUILD_CONFIG: &str = "recipe/conda_build_config.yaml";

/// Audits one project checkout. `name` is the repository's name (the checkout's folder);
/// `files` are `(path relative to the checkout, contents)` of its workflows, `conda-forge.yml`
/// and `recipe/conda_build_config.yaml`. Findings name files as `name/path`.
pub fn audit_project(ledger: &impl Ledger, name: &str, files: &[(String, Vec<u8>)]) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let project = ledger.project_of(name);
    let ctx = Judge {
        ledger,
        name,
        project: project.as_deref(),
    };
    let mut config = workflow::FeedstockConfig::default();
    for (rel, bytes) in files.iter().filter(|(rel, _)| rel == CONDA_FORGE_YML) {
        match yaml::parse_tree(&format!("{name}/{rel}"), bytes) {
            Ok(tree) => config = read_conda_forge_yml(&tree),
            Err(d) => diags.push(d),
        }
    }
    for (rel, bytes) in files.iter().filter(|(rel, _)| rel == CIRUN_YML) {
        let file = format!("{name}/{rel}");
        match crate::parse::parse_yaml::<OwnCirun>(&file, bytes) {
            Ok(own) => {
                for r in own.runners {
                    diags.push(
                        Diagnostic::warning(
                            "audit-own-cirun-runner",
                            file.as_str(),
                            r.name.span,
                            format!(
                                "the project defines its own Cirun runner `{}`, outside the organisation's catalogue (.cirun.global.yml): no resource names it, so no grant governs it and the guard decides its jobs only if its labels are managed",
                                r.name.value
                            ),
                        )
                        .with_help("remove the runner and ask for a catalogue resource through a request, or add it to the catalogue as a resource"),
                    );
                }
            }
            Err(d) => diags.push(d),
        }
    }
    let mut workflows: Vec<(&str, Workflow)> = Vec::new();
    for (rel, bytes) in files.iter().filter(|(rel, _)| is_workflow_path(rel)) {
        match yaml::parse_tree(&format!("{name}/{rel}"), bytes) {
            Ok(tree) => workflows.push((rel.as_str(), read_workflow(&tree))),
            Err(d) => diags.push(d),
        }
    }
    let reaching = reaching_events(&workflows);
    for ((rel, wf), triggers) in workflows.iter().zip(&reaching) {
        let file = format!("{name}/{rel}");
        for set in &wf.runs_on {
            ctx.judge(&file, set, triggers, &mut diags);
        }
    }
    for (rel, bytes) in files.iter().filter(|(rel, _)| rel == BUILD_CONFIG) {
        let file = format!("{name}/{rel}");
        match yaml::parse_tree(&file, bytes) {
            Ok(tree) => {
                // conda-smithy builds only `push` on self-hosted runners unless
                // `github_actions: triggers` says otherwise.
                let triggers: Vec<Trigger> = if config.triggers.is_empty() {
                    let default: &[&str] = if config.self_hosted.is_some() {
                        &["push"]
                    } else {
                        &["push", "pull_request"]
                    };
                    default
                        .iter()
                        .map(|e| Trigger {
                            name: e.to_string(),
                            named: Named::Default,
                        })
                        .collect()
                } else {
                    config
                        .triggers
                        .iter()
                        .map(|e| Trigger {
                            name: e.value.clone(),
                            named: Named::In {
                                file: CONDA_FORGE_YML.to_string(),
                                line: e.span.line,
                                through: None,
                            },
                        })
                        .collect()
                };
                for mut set in read_build_config_labels(&tree) {
                    set.timeout = JobTimeout::Smithy {
                        minutes: config.timeout_minutes.clone(),
                        file: format!("{name}/{CONDA_FORGE_YML}"),
                    };
                    ctx.judge(&file, &set, &triggers, &mut diags);
                }
            }
            Err(d) => diags.push(d),
        }
    }
    diags
}

/// An event that starts a workflow, and where it is named.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Trigger {
    name: String,
    named: Named,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Named {
    /// In the judged file itself.
    Here(u32),
    /// In another file (`conda-forge.yml`, or a workflow that calls the judged one `through`
    /// its job).
    In {
        file: String,
        line: u32,
        through: Option<String>,
    },
    /// Nowhere: conda-smithy's default.
    Default,
}

impl Trigger {
    /// `` `push` (line 3) ``, in words for a finding.
    fn place(&self) -> String {
        let name = &self.name;
        match &self.named {
            Named::Here(line) if *line > 0 => format!("`{name}` (line {line})"),
            Named::Here(_) => format!("`{name}`"),
            Named::In {
                file,
                line,
                through: None,
            } => format!("`{name}` ({file} line {line})"),
            Named::In {
                file,
                line,
                through: Some(job),
            } => format!("`{name}` ({file} line {line}, through {job})"),
            Named::Default => format!("`{name}` (conda-smithy's default)"),
        }
    }
}

/// Reusable workflows may call each other this deep (GitHub allows ten levels).
const MAX_CALL_DEPTH: usize = 10;

/// The events that start each workflow: its own, and those of every workflow of the project
/// that calls it (`uses: ./.github/workflows/x.yml`), whose event the called workflow's jobs run
/// for, unless the calling job's `if:` keeps it out.
fn reaching_events(workflows: &[(&str, Workflow)]) -> Vec<Vec<Trigger>> {
    let mut reach: Vec<Vec<Trigger>> = workflows
        .iter()
        .map(|(_, wf)| {
            wf.events
                .iter()
                .map(|e| Trigger {
                    name: e.value.clone(),
                    named: Named::Here(e.span.line),
                })
                .collect()
        })
        .collect();
    for _ in 0..MAX_CALL_DEPTH {
        let mut changed = false;
        for (caller, (rel, wf)) in workflows.iter().enumerate() {
            for call in &wf.calls {
                let Some(callee) = workflows
                    .iter()
                    .position(|(r, _)| *r == call.workflow.value)
                else {
                    continue;
                };
                let through = format!("`{rel}` job `{}`", call.job);
                let passed: Vec<Trigger> = reach[caller]
                    .iter()
                    .filter(|t| !t.name.eq_ignore_ascii_case("workflow_call"))
                    .filter(|t| reaches(call.condition.as_deref(), &t.name))
                    .map(|t| Trigger {
                        name: t.name.clone(),
                        named: match &t.named {
                            Named::Here(line) => Named::In {
                                file: rel.to_string(),
                                line: *line,
                                through: Some(through.clone()),
                            },
                            Named::In { file, line, .. } => Named::In {
                                file: file.clone(),
                                line: *line,
                                through: Some(through.clone()),
                            },
                            Named::Default => Named::Default,
                        },
                    })
                    .collect();
                for t in passed {
                    if !reach[callee].contains(&t) {
                        reach[callee].push(t);
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    reach
}

struct Judge<'a, L> {
    ledger: &'a L,
    name: &'a str,
    project: Option<&'a str>,
}

impl<L: Ledger> Judge<'_, L> {
    /// Judges one runner's labels (and runner group) started by `triggers`.
    fn judge(&self, file: &str, set: &LabelSet, triggers: &[Trigger], diags: &mut Diagnostics) {
        // The events the job's `if:` lets through.
        let triggers: Vec<&Trigger> = triggers
            .iter()
            .filter(|t| reaches(set.condition.as_deref(), &t.name))
            .collect();
        let fork_events: Vec<String> = triggers
            .iter()
            .filter_map(|t| {
                Some(format!(
                    "{}, started by {}",
                    t.place(),
                    fork_reachable(&t.name)?
                ))
            })
            .collect();
        let pr_events: Vec<String> = triggers
            .iter()
            .filter(|t| {
                PULL_REQUEST_EVENTS
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(&t.name))
            })
            .map(|t| t.place())
            .collect();

        let mut routed: Vec<(String, &Spanned<Label>)> = Vec::new();
        let mut ambiguous = false;
        for label in &set.labels {
            let Some(text) = label.value.routes_as() else {
                let Label::Expression(expr) = &label.value else {
                    continue;
                };
                let d = if workflow::reads_event_input(expr) {
                    Diagnostic::error(
                        "audit-label-expression",
                        file,
                        label.span,
                        format!(
                            "job `{}` takes a runner label from `{expr}`, which whoever triggers the run controls: it can select any managed resource",
                            set.job
                        ),
                    )
                } else {
                    Diagnostic::warning(
                        "audit-label-expression",
                        file,
                        label.span,
                        format!(
                            "job `{}` takes a runner label from `{expr}`, which audit cannot resolve: it could select a managed resource",
                            set.job
                        ),
                    )
                };
                diags.push(d.with_help(
                    "write the labels in the workflow (or in the job's matrix) so that reviewers and audit can see them",
                ));
                continue;
            };
            match self.ledger.route(&[text], None) {
                Routed::None => {}
                Routed::One(resource) => routed.push((resource, label)),
                Routed::Ambiguous(a, b) => {
                    ambiguous = true;
                    diags.push(
                        Diagnostic::error(
                            "audit-ambiguous-labels",
                            file,
                            label.span,
                            format!("label `{text}` routes to both `{a}` and `{b}`; the guard denies every such job"),
                        )
                        .with_help("fix the access repository: two resources claim one label"),
                    );
                }
            }
        }
        // The job as a whole, as the guard routes it: its labels, and its runner group.
        let texts: Vec<&str> = set
            .labels
            .iter()
            .filter_map(|l| l.value.routes_as())
            .collect();
        let group = set.group.as_ref();
        let whole = self.ledger.route(&texts, group.map(|g| g.value.as_str()));
        if let Routed::One(resource) = &whole {
            let span = routed
                .first()
                .map(|(_, l)| l.span)
                .or(group.map(|g| g.span))
                .unwrap_or(Span::UNKNOWN);
            self.judge_timeout(file, set, resource, span, diags);
        }
        match whole {
            Routed::Ambiguous(a, b) if !ambiguous => {
                let span = routed
                    .first()
                    .map(|(_, l)| l.span)
                    .or(group.map(|g| g.span))
                    .unwrap_or(Span::UNKNOWN);
                diags.push(
                    Diagnostic::error(
                        "audit-ambiguous-labels",
                        file,
                        span,
                        format!(
                            "job `{}` asks for both `{a}` and `{b}`; the guard denies it",
                            set.job
                        ),
                    )
                    .with_help("ask for one managed resource per job"),
                );
            }
            // A managed runner group serves its resource to whoever it lets in: the project
            // must hold it, as for a label.
            Routed::One(resource) if !routed.iter().any(|(r, _)| *r == resource) => {
                if let Some(group) = group {
                    let text = format!("group: {}", group.value);
                    self.judge_label(
                        file,
                        &resource,
                        group.span,
                        (&text, None),
                        &fork_events,
                        &pr_events,
                        diags,
                    );
                }
            }
            _ => {}
        }
        for (resource, label) in &routed {
            let written = match &label.value {
                Label::Literal(text) => (text.as_str(), None),
                Label::Resolved { value, expression } => {
                    (value.as_str(), Some(expression.as_str()))
                }
                Label::Expression(_) => continue,
            };
            self.judge_label(
                file,
                resource,
                label.span,
                written,
                &fork_events,
                &pr_events,
                diags,
            );
        }
    }

    /// A job on a resource with a time limit should stop itself before the guard cancels its
    /// whole run: its `timeout-minutes` is set, and no larger than the limit. `span`: where
    /// the job asks for the resource.
    fn judge_timeout(
        &self,
        file: &str,
        set: &LabelSet,
        resource: &str,
        span: Span,
        diags: &mut Diagnostics,
    ) {
        let Some(limit) = self.ledger.max_job_minutes(resource) else {
            return;
        };
        let job = &set.job;
        let help = format!(
            "set `timeout-minutes: {limit}` (or less) on job `{job}`, so that it stops itself and the rest of its run goes on"
        );
        let d = match &set.timeout {
            JobTimeout::Absent => Diagnostic::warning(
                "audit-job-timeout",
                file,
                span,
                format!(
                    "job `{job}` runs on `{resource}`, whose jobs may run {limit} minutes, but sets no `timeout-minutes`: the guard cancels its whole run at {limit} minutes"
                ),
            ),
            JobTimeout::Minutes(m) if m.value > u64::from(limit) => Diagnostic::warning(
                "audit-job-timeout",
                file,
                m.span,
                format!(
                    "job `{job}` sets `timeout-minutes: {}`, above the {limit} minutes `{resource}` allows: the guard cancels its whole run at {limit} minutes",
                    m.value
                ),
            ),
            JobTimeout::Smithy { minutes: None, .. }
                if workflow::SMITHY_TIMEOUT_MINUTES > u64::from(limit) =>
            {
                let smithy = workflow::SMITHY_TIMEOUT_MINUTES;
                diags.push(
                    Diagnostic::warning(
                        "audit-job-timeout",
                        file,
                        span,
                        format!(
                            "this build runs on `{resource}`, whose jobs may run {limit} minutes, but conda-forge.yml sets no `github_actions: timeout_minutes`, so conda-smithy gives its job {smithy}: the guard cancels its whole run at {limit} minutes"
                        ),
                    )
                    .with_help(format!(
                        "set `github_actions: {{ timeout_minutes: {limit} }}` (or less) in conda-forge.yml and re-render"
                    )),
                );
                return;
            }
            JobTimeout::Smithy {
                minutes: Some(m),
                file: smithy_file,
            } if m.value > u64::from(limit) => {
                diags.push(
                    Diagnostic::warning(
                        "audit-job-timeout",
                        smithy_file.as_str(),
                        m.span,
                        format!(
                            "`github_actions: timeout_minutes: {}` is above the {limit} minutes `{resource}` allows, which builds of {file} run on: the guard cancels their whole run at {limit} minutes",
                            m.value
                        ),
                    )
                    .with_help(format!(
                        "lower `timeout_minutes` to {limit} (or less) and re-render"
                    )),
                );
                return;
            }
            _ => return,
        };
        diags.push(d.with_help(help));
    }

    #[allow(clippy::too_many_arguments)]
    /// Judges one label (`text`, the value of `expression` when computed) that routes to
    /// `resource`.
    fn judge_label(
        &self,
        file: &str,
        resource: &str,
        span: Span,
        (text, expression): (&str, Option<&str>),
        fork_events: &[String],
        pr_events: &[String],
        diags: &mut Diagnostics,
    ) {
        let mut shown = format!("`{text}`");
        if let Some(expression) = expression {
            shown.push_str(&format!(" (the value of `{expression}`)"));
        }
        if text != resource {
            shown.push_str(&format!(" (routed as `{resource}`: routing ignores case, everything from `--` or `;`, and what follows the text of a resource's pattern)"));
        }
        let grant = match self.project {
            Some(p) => self.ledger.grant(p, resource),
            None => GrantState::None,
        };
        match (&grant, self.project) {
            (GrantState::None, None) => diags.push(
                Diagnostic::error(
                    "audit-no-grant",
                    file,
                    span,
                    format!("{shown} asks for a managed resource, but `{}` is not a project repository of the organisation, so it can hold no grant", self.name),
                )
                .with_help("remove the label: the guard denies these jobs"),
            ),
            (GrantState::None, Some(project)) => diags.push(
                Diagnostic::error(
                    "audit-no-grant",
                    file,
                    span,
                    format!("{shown} asks for `{resource}`, which `{project}` holds no grant for: a cross-access attempt or stale configuration"),
                )
                .with_help(format!("file a request for `{resource}` in the access repository, or remove the label (the guard denies these jobs)")),
            ),
            (GrantState::Expired(day), Some(project)) => diags.push(
                Diagnostic::warning(
                    "audit-expired-grant",
                    file,
                    span,
                    format!("{shown} asks for `{resource}`, but `{project}`'s grant expired on {day}"),
                )
                .with_help("file a renew request, or remove the label"),
            ),
            (GrantState::Active { pull_request: false }, Some(project)) if !pr_events.is_empty() => diags.push(
                Diagnostic::error(
                    "audit-pr-not-granted",
                    file,
                    span,
                    format!("{shown} runs on {}, but `{project}`'s grant of `{resource}` does not allow pull request builds", pr_events.join(", ")),
                )
                .with_help("remove the pull request trigger, or ask for `pull_request: true` in a renew request"),
            ),
            _ => {}
        }
        for event in fork_events {
            diags.push(
                Diagnostic::error(
                    "audit-fork-reachable",
                    file,
                    span,
                    format!("{shown} runs on {event}: anyone can start a job on `{resource}`, and their code or text reaches its runner"),
                )
                .with_help("run managed resources only on `push` (and `pull_request` where the grant allows it)"),
            );
        }
    }
}

/// Grants with no allowed job in the last `days` days, proposed for revocation. `last_used`
/// maps (lower-cased project, resource) to the day of the latest job the guard allowed; a grant
/// younger than `days` is not judged.
pub fn idle_grants(
    repo: &Repo,
    today: Date,
    days: i64,
    last_used: &HashMap<(String, String), Date>,
) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let Ok(since) = today.checked_sub(jiff::Span::new().days(days)) else {
        return diags;
    };
    for file in &repo.grants {
        let project = file.value.project.value.to_ascii_lowercase();
        for g in &file.value.grants {
            if !g.is_active(today) || g.granted.value.0 > since {
                continue;
            }
            let last = last_used.get(&(project.clone(), g.resource.value.clone()));
            if last.is_some_and(|d| *d >= since) {
                continue;
            }
            let when = match last {
                Some(d) => format!("the last was on {d}"),
                None => "the guard has recorded none".to_string(),
            };
            diags.push(
                Diagnostic::warning(
                    "audit-idle-grant",
                    file.path.as_str(),
                    g.resource.span,
                    format!(
                        "`{}` ran no job on `{}` in the last {days} days ({when})",
                        file.value.project.value, g.resource.value
                    ),
                )
                .with_help("propose revocation: file a revoke request, so the resource goes to a project that uses it"),
            );
        }
    }
    diags
}

/// A runner group of the organisation, as GitHub describes it.
#[derive(Clone, Debug)]
pub struct RunnerGroupFact {
    pub name: String,
    /// `all`, `selected` or `private`.
    pub visibility: String,
    pub allows_public_repositories: bool,
    /// `owner/name` of the selected repositories (empty unless `visibility` is `selected`).
    pub repositories: Vec<String>,
}

/// Runner groups that public repositories may use without a grant: open to every repository,
/// or selecting one that holds no active grant of a resource the group serves.
pub fn public_runner_groups(
    repo: &Repo,
    ledger: &impl Ledger,
    groups: &[RunnerGroupFact],
) -> Diagnostics {
    use crate::model::ProviderSettings;
    let mut diags = Diagnostics::new();
    let Some(settings) = &repo.settings else {
        return diags;
    };
    let file = settings.path.as_str();
    for group in groups.iter().filter(|g| g.allows_public_repositories) {
        // The provider that manages this group, and the resources it serves.
        let provider = settings.value.providers.iter().find(|(_, p)| {
            matches!(p, ProviderSettings::RunnerGroup(p)
                if p.group.value.eq_ignore_ascii_case(&group.name))
        });
        let span = provider.map_or(settings.value.org.span, |(_, p)| p.kind_at());
        let resources: Vec<&str> = provider
            .map(|(name, _)| {
                repo.resources
                    .iter()
                    .filter(|r| r.value.provider.value == *name)
                    .map(|r| r.value.name.value.as_str())
                    .collect()
            })
            .unwrap_or_default();
        if group.visibility == "all" {
            diags.push(
                Diagnostic::error(
                    "audit-public-runner-group",
                    file,
                    span,
                    format!("runner group `{}` lets every repository of the organisation, public ones included, run jobs on it without a grant", group.name),
                )
                .with_help("set the group to selected repositories (gatehouse apply then keeps the list), or stop allowing public repositories"),
            );
            continue;
        }
        for full in &group.repositories {
            let name = full.rsplit('/').next().unwrap_or(full);
            let granted = ledger.project_of(name).is_some_and(|p| {
                resources
                    .iter()
                    .any(|r| matches!(ledger.grant(&p, r), GrantState::Active { .. }))
            });
            if !granted {
                diags.push(
                    Diagnostic::error(
                        "audit-public-runner-group",
                        file,
                        span,
                        format!("runner group `{}` allows public repositories and lets in {full}, which holds no grant of a resource it serves", group.name),
                    )
                    .with_help("remove the repository from the group (gatehouse apply does), or file a request for it"),
                );
            }
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger with one resource `gpu` (label `gpu`) held by `a` without pull requests.
    struct Fake;
    impl Ledger for Fake {
        fn project_of(&self, name: &str) -> Option<String> {
            name.strip_suffix("-feedstock").map(str::to_string)
        }
        fn route(&self, labels: &[&str], group: Option<&str>) -> Routed {
            let gpu = labels
                .iter()
                .any(|l| l.to_ascii_lowercase().split("--").next() == Some("gpu"))
                || group.is_some_and(|g| g.eq_ignore_ascii_case("gpu-pool"));
            if gpu {
                Routed::One("gpu".into())
            } else {
                Routed::None
            }
        }
        fn grant(&self, project: &str, resource: &str) -> GrantState {
            if project == "a" && resource == "gpu" {
                GrantState::Active {
                    pull_request: false,
                }
            } else {
                GrantState::None
            }
        }
    }

    #[test]
    fn a_managed_runner_group_needs_a_grant_like_a_label() {
        let wf = b"on: push\njobs:\n  a:\n    runs-on: { group: gpu-pool }\n  b:\n    runs-on:\n      group: other\n      labels: [x]\n".to_vec();
        let files = vec![(".github/workflows/x.yml".to_string(), wf)];
        let held = audit_project(&Fake, "a-feedstock", &files).sorted();
        assert!(held.is_empty(), "{held:?}");
        let found: Vec<_> = audit_project(&Fake, "b-feedstock", &files)
            .sorted()
            .into_iter()
            .map(|d| (d.span.line, d.code))
            .collect();
        assert_eq!(found, [(4, "audit-no-grant")]);
    }

    fn codes(name: &str, files: &[(&str, &str)]) -> Vec<(String, u32, &'static str)> {
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect();
        audit_project(&Fake, name, &files)
            .sorted()
            .into_iter()
            .map(|d| (d.file, d.span.line, d.code))
            .collect()
    }

    #[test]
    fn grants_events_and_expressions_are_judged() {
        let wf = "on: [push, pull_request, workflow_run]\njobs:\n  a:\n    runs-on: GPU--123\n  b:\n    runs-on: ${{ inputs.runner }}\n";
        let found = codes("a-feedstock", &[(".github/workflows/x.yml", wf)]);
        let f = "a-feedstock/.github/workflows/x.yml".to_string();
        assert_eq!(
            found,
            [
                (f.clone(), 4, "audit-fork-reachable"),
                (f.clone(), 4, "audit-pr-not-granted"),
                (f.clone(), 6, "audit-label-expression"),
            ]
        );
        let found = codes(
            "b-feedstock",
            &[(
                ".github/workflows/x.yml",
                "on: push\njobs:\n  a:\n    runs-on: gpu\n",
            )],
        );
        assert_eq!(
            found,
            [(
                "b-feedstock/.github/workflows/x.yml".into(),
                4,
                "audit-no-grant"
            )]
        );
    }

    #[test]
    fn reusable_workflows_run_for_their_callers_events() {
        let callee = "on: workflow_call\njobs:\n  build:\n    runs-on: gpu\n";
        let caller = |on: &str, condition: &str| {
            format!(
                "on: {on}\njobs:\n  call:\n{condition}    uses: ./.github/workflows/build.yml\n"
            )
        };
        let f = |file: &str| format!("a-feedstock/.github/workflows/{file}");
        // Called from `pull_request_target`: anyone's pull request reaches the GPU.
        let found = codes(
            "a-feedstock",
            &[
                (".github/workflows/build.yml", callee),
                (
                    ".github/workflows/pr.yml",
                    &caller("pull_request_target", ""),
                ),
            ],
        );
        assert_eq!(found, [(f("build.yml"), 4, "audit-fork-reachable")]);
        // Through two levels, from `pull_request`, which `a`'s grant does not allow.
        let middle =
            "on: workflow_call\njobs:\n  again:\n    uses: ./.github/workflows/build.yml\n";
        let found = codes(
            "a-feedstock",
            &[
                (".github/workflows/build.yml", callee),
                (".github/workflows/middle.yml", middle),
                (
                    ".github/workflows/pr.yml",
                    &caller("pull_request", "").replace("build.yml", "middle.yml"),
                ),
            ],
        );
        assert_eq!(found, [(f("build.yml"), 4, "audit-pr-not-granted")]);
        // A calling job whose `if:` keeps the event out, and a workflow that calls itself.
        let guarded = caller(
            "[push, pull_request_target]",
            "    if: github.event_name == 'push'\n",
        );
        let found = codes(
            "a-feedstock",
            &[
                (
                    ".github/workflows/build.yml",
                    &format!("{callee}  loop:\n    uses: ./.github/workflows/build.yml\n"),
                ),
                (".github/workflows/pr.yml", &guarded),
            ],
        );
        assert_eq!(found, []);
        let d = audit_project(
            &Fake,
            "a-feedstock",
            &[
                (
                    ".github/workflows/build.yml".into(),
                    callee.as_bytes().to_vec(),
                ),
                (
                    ".github/workflows/pr.yml".into(),
                    caller("pull_request_target", "").into_bytes(),
                ),
            ],
        )
        .sorted();
        assert!(
            d[0].message.contains("`pull_request_target` (.github/workflows/pr.yml line 1, through `.github/workflows/pr.yml` job `call`)"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn every_event_a_stranger_can_cause_is_fork_reachable() {
        for event in [
            "discussion_comment",
            "discussion",
            "issues",
            "watch",
            "fork",
            "gollum",
            "check_suite",
            "status",
        ] {
            let wf = format!("on: {event}\njobs:\n  a:\n    runs-on: gpu\n");
            let found = codes("a-feedstock", &[(".github/workflows/x.yml", &wf)]);
            let f = "a-feedstock/.github/workflows/x.yml".to_string();
            assert_eq!(found, [(f, 4, "audit-fork-reachable")], "{event}");
        }
        let watch = audit_project(
            &Fake,
            "a-feedstock",
            &[(
                ".github/workflows/x.yml".into(),
                b"on: watch\njobs:\n  a:\n    runs-on: gpu\n".to_vec(),
            )],
        )
        .sorted();
        assert!(
            watch[0]
                .message
                .contains("`watch` (line 1), started by anyone starring the repository"),
            "{}",
            watch[0].message
        );
        for event in [
            "push",
            "schedule",
            "workflow_dispatch",
            "release",
            "merge_group",
        ] {
            let wf = format!("on: {event}\njobs:\n  a:\n    runs-on: gpu\n");
            assert_eq!(
                codes("a-feedstock", &[(".github/workflows/x.yml", &wf)]),
                [],
                "{event}"
            );
        }
    }

    #[test]
    fn constant_expressions_are_judged_as_if_written_out() {
        let wf = "on: [push, pull_request]\njobs:\n  a:\n    runs-on: ${{ 'gpu' }}\n  b:\n    runs-on: ${{ format('{0}', matrix.r) }}\n    strategy: { matrix: { r: [gpu, cpu] } }\n  c:\n    if: github.event_name == 'push'\n    runs-on: gpu\n";
        let f = "b-feedstock/.github/workflows/x.yml".to_string();
        assert_eq!(
            codes("b-feedstock", &[(".github/workflows/x.yml", wf)]),
            [
                (f.clone(), 4, "audit-no-grant"),
                (f.clone(), 6, "audit-no-grant"),
                (f.clone(), 10, "audit-no-grant"),
            ]
        );
        // `a` holds the GPU without pull requests: `c` is kept from them by its `if:`.
        let f = "a-feedstock/.github/workflows/x.yml".to_string();
        assert_eq!(
            codes("a-feedstock", &[(".github/workflows/x.yml", wf)]),
            [
                (f.clone(), 4, "audit-pr-not-granted"),
                (f, 6, "audit-pr-not-granted")
            ]
        );
    }

    #[test]
    fn build_config_labels_use_conda_smithy_triggers() {
        let cfg = "github_actions_labels:\n- gpu\n";
        // Self-hosted without triggers: push only, nothing to report.
        let quiet = codes(
            "a-feedstock",
            &[
                ("conda-forge.yml", "github_actions:\n  self_hosted: true\n"),
                (BUILD_CONFIG, cfg),
            ],
        );
        assert!(quiet.is_empty(), "{quiet:?}");
        let loud = codes(
            "a-feedstock",
            &[
                (
                    "conda-forge.yml",
                    "github_actions:\n  self_hosted: true\n  triggers: [push, pull_request]\n",
                ),
                (BUILD_CONFIG, cfg),
            ],
        );
        assert_eq!(
            loud,
            [(
                "a-feedstock/recipe/conda_build_config.yaml".into(),
                2,
                "audit-pr-not-granted"
            )]
        );
    }

    #[test]
    fn public_runner_groups_without_grants_are_reported() {
        let repo = Repo::from_sources([
            (
                "gatehouse.yml",
                "org: cf\nrepo_suffix: -feedstock\nreviewers: { teams: [core] }\nproviders:\n  pool: { kind: runner-group, group: GPU }\n",
            ),
            (
                "resources/gpu.yml",
                "name: gpu\nprovider: pool\nlabels: [gpu]\n",
            ),
        ]);
        let group = |name: &str, visibility: &str, public: bool, repos: &[&str]| RunnerGroupFact {
            name: name.into(),
            visibility: visibility.into(),
            allows_public_repositories: public,
            repositories: repos.iter().map(|r| r.to_string()).collect(),
        };
        let found: Vec<(u32, String)> = public_runner_groups(
            &repo,
            &Fake,
            &[
                // `a` holds `gpu`; `b` holds nothing; `gpu` is managed by `pool`.
                group(
                    "gpu",
                    "selected",
                    true,
                    &["cf/a-feedstock", "cf/b-feedstock"],
                ),
                group("everyone", "all", true, &[]),
                // Private repositories only: not this check's business.
                group("internal", "all", false, &[]),
            ],
        )
        .sorted()
        .into_iter()
        .map(|d| (d.span.line, d.message))
        .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .any(|(line, m)| *line == 5 && m.contains("cf/b-feedstock")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(line, m)| *line == 1 && m.contains("`everyone` lets every repository")),
            "{found:?}"
        );
    }

    #[test]
    fn an_expired_grant_in_a_workflow_is_a_warning() {
        struct Expired;
        impl Ledger for Expired {
            fn project_of(&self, name: &str) -> Option<String> {
                Fake.project_of(name)
            }
            fn route(&self, labels: &[&str], group: Option<&str>) -> Routed {
                Fake.route(labels, group)
            }
            fn grant(&self, _: &str, _: &str) -> GrantState {
                GrantState::Expired(jiff::civil::date(2026, 1, 1))
            }
        }
        let files = vec![(
            ".github/workflows/x.yml".to_string(),
            b"on: push\njobs:\n  a:\n    runs-on: gpu\n".to_vec(),
        )];
        let found = audit_project(&Expired, "a-feedstock", &files).sorted();
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].code, found[0].severity),
            ("audit-expired-grant", crate::Severity::Warning)
        );
        assert!(
            found[0].message.contains("expired on 2026-01-01"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn jobs_on_a_resource_with_a_time_limit_should_stop_themselves_first() {
        /// `gpu` jobs may run 60 minutes.
        struct Timed;
        impl Ledger for Timed {
            fn project_of(&self, name: &str) -> Option<String> {
                Fake.project_of(name)
            }
            fn route(&self, labels: &[&str], group: Option<&str>) -> Routed {
                Fake.route(labels, group)
            }
            fn grant(&self, project: &str, resource: &str) -> GrantState {
                Fake.grant(project, resource)
            }
            fn max_job_minutes(&self, resource: &str) -> Option<u32> {
                (resource == "gpu").then_some(60)
            }
        }
        let wf = "on: push\njobs:\n  none:\n    runs-on: gpu\n  long:\n    runs-on: gpu\n    timeout-minutes: 90\n  fits:\n    runs-on: gpu\n    timeout-minutes: 60\n  computed:\n    runs-on: gpu\n    timeout-minutes: ${{ matrix.t }}\n  cpu:\n    runs-on: ubuntu-latest\n";
        let files = vec![(
            ".github/workflows/x.yml".to_string(),
            wf.as_bytes().to_vec(),
        )];
        let found: Vec<_> = audit_project(&Timed, "a-feedstock", &files)
            .sorted()
            .into_iter()
            .map(|d| (d.span.line, d.code, d.severity, d.message))
            .collect();
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!((found[0].0, found[0].1), (4, "audit-job-timeout"));
        assert!(
            found[0].3.contains("job `none`") && found[0].3.contains("sets no `timeout-minutes`")
        );
        assert_eq!((found[1].0, found[1].1), (7, "audit-job-timeout"));
        assert!(
            found[1]
                .3
                .contains("`timeout-minutes: 90`, above the 60 minutes")
        );
        assert!(found.iter().all(|f| f.2 == crate::Severity::Warning));
        // A resource without a limit asks nothing of the job.
        assert!(audit_project(&Fake, "a-feedstock", &files).is_empty());

        // A feedstock's builds: conda-smithy writes `timeout-minutes` from conda-forge.yml,
        // 360 when it does not say.
        let feedstock = |cf: &str| {
            let files: Vec<(String, Vec<u8>)> = [
                ("conda-forge.yml", cf),
                (BUILD_CONFIG, "github_actions_labels:\n- gpu\n"),
            ]
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect();
            audit_project(&Timed, "a-feedstock", &files)
                .sorted()
                .into_iter()
                .map(|d| (d.file, d.span.line, d.code, d.message))
                .collect::<Vec<_>>()
        };
        let default = feedstock("github_actions:\n  self_hosted: true\n");
        assert_eq!(default.len(), 1, "{default:#?}");
        assert_eq!(
            (default[0].0.as_str(), default[0].1, default[0].2),
            (
                "a-feedstock/recipe/conda_build_config.yaml",
                2,
                "audit-job-timeout"
            )
        );
        assert!(
            default[0].3.contains("conda-smithy gives its job 360"),
            "{default:#?}"
        );
        let above = feedstock("github_actions:\n  self_hosted: true\n  timeout_minutes: 600\n");
        assert_eq!(above.len(), 1, "{above:#?}");
        assert_eq!(
            (above[0].0.as_str(), above[0].1, above[0].2),
            ("a-feedstock/conda-forge.yml", 3, "audit-job-timeout")
        );
        let fits = feedstock("github_actions:\n  self_hosted: true\n  timeout_minutes: 45\n");
        assert!(fits.is_empty(), "{fits:#?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// Any bytes, and any text shaped like a workflow, as a workflow, `conda-forge.yml` or
        /// `conda_build_config.yaml`: findings only, each with a file and a message.
        #[test]
        fn workflow_scanner_never_panics(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            on in "(push|pull_request|pull_request_target|issue_comment|workflow_run|\\[push, pull_request\\]|\\{\\})",
            label in "[ -~]{0,40}",
            key in "[a-z_]{1,8}",
        ) {
            let shaped = format!(
                "on: {on}\njobs:\n  j:\n    runs-on: ${{{{ matrix.{key} }}}}\n    strategy:\n      matrix:\n        {key}: ['{l}', [gpu, '{l}']]\n        include:\n          - {key}: \"{l}--${{{{ github.run_id }}}}\"\n  k:\n    runs-on: [\"{l}\", gpu]\n",
                l = label.replace(['\'', '"', '\\'], ""),
            );
            for text in [raw.clone(), shaped.into_bytes()] {
                let files: Vec<(String, Vec<u8>)> = [".github/workflows/w.yml", CONDA_FORGE_YML, BUILD_CONFIG]
                    .iter()
                    .map(|p| (p.to_string(), text.clone()))
                    .collect();
                for d in audit_project(&Fake, "a-feedstock", &files).sorted() {
                    proptest::prop_assert!(!d.message.is_empty());
                    proptest::prop_assert!(d.file.starts_with("a-feedstock/"));
                }
            }
        }
    }

    #[test]
    fn malformed_files_are_findings() {
        let found = codes(
            "a-feedstock",
            &[
                (".github/workflows/x.yml", "jobs: [\n"),
                ("conda-forge.yml", "\u{0}"),
            ],
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|(_, _, c)| *c == "audit-unreadable"));
    }
}
