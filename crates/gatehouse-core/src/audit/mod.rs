//! `gatehouse audit`: the other side of the ledger. `check` validates the access repository;
//! audit reads the projects' own files (workflows, `conda-forge.yml`) and the guard's records
//! and reports what would let one project use another's resource, let a fork's code reach a
//! runner, or keep a grant nobody uses.
//!
//! The rules here are pure: the caller reads the files and supplies a [`Ledger`], which answers
//! routing and grant questions from the compiled policy (so audit routes labels exactly as the
//! guard does, and holds no label rules of its own). Findings are [`Diagnostic`]s: an error is
//! a high-severity finding, a warning a medium one.

pub mod workflow;
pub mod yaml;

use std::collections::HashMap;

use jiff::civil::Date;

use crate::diag::{Diagnostic, Diagnostics};
use crate::repo::Repo;
use crate::span::{Span, Spanned};

use workflow::{Label, LabelSet, read_build_config_labels, read_conda_forge_yml, read_workflow};

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
    fn route(&self, labels: &[&str]) -> Routed;
    fn grant(&self, project: &str, resource: &str) -> GrantState;
    /// The resources served through the organisation's runner group `group` (a provider of
    /// kind `runner-group`), which a job selects with `runs-on: { group: ... }`.
    fn group_resources(&self, group: &str) -> Vec<String> {
        let _ = group;
        Vec::new()
    }
}

/// Events that let code from a fork, or text from anyone, start a workflow in the project's own
/// repository, with its secrets and its runners.
pub const FORK_REACHABLE_EVENTS: &[&str] =
    &["pull_request_target", "workflow_run", "issue_comment"];

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
    for (rel, bytes) in files {
        let file = format!("{name}/{rel}");
        if is_workflow_path(rel) {
            match yaml::parse_tree(&file, bytes) {
                Ok(tree) => {
                    let wf = read_workflow(&tree);
                    for set in &wf.runs_on {
                        ctx.judge(&file, set, &wf.events, None, &mut diags);
                    }
                }
                Err(d) => diags.push(d),
            }
        } else if rel == BUILD_CONFIG {
            match yaml::parse_tree(&file, bytes) {
                Ok(tree) => {
                    // conda-smithy builds only `push` on self-hosted runners unless
                    // `github_actions: triggers` says otherwise.
                    let events: Vec<Spanned<String>> = if config.triggers.is_empty() {
                        let default: &[&str] = if config.self_hosted.is_some() {
                            &["push"]
                        } else {
                            &["push", "pull_request"]
                        };
                        default
                            .iter()
                            .map(|e| Spanned::new(e.to_string(), Span::UNKNOWN))
                            .collect()
                    } else {
                        config.triggers.clone()
                    };
                    for set in read_build_config_labels(&tree) {
                        ctx.judge(&file, &set, &events, Some(CONDA_FORGE_YML), &mut diags);
                    }
                }
                Err(d) => diags.push(d),
            }
        }
    }
    diags
}

struct Judge<'a, L> {
    ledger: &'a L,
    name: &'a str,
    project: Option<&'a str>,
}

impl<L: Ledger> Judge<'_, L> {
    /// Judges one runner's labels started by `events`, which are named in `events_file` (when
    /// not the file itself).
    fn judge(
        &self,
        file: &str,
        set: &LabelSet,
        events: &[Spanned<String>],
        events_file: Option<&str>,
        diags: &mut Diagnostics,
    ) {
        let place = |e: &Spanned<String>| match (e.span.is_known(), events_file) {
            (true, None) => format!("`{}` (line {})", e.value, e.span.line),
            (true, Some(f)) => format!("`{}` ({f} line {})", e.value, e.span.line),
            (false, _) => format!("`{}` (conda-smithy's default)", e.value),
        };
        let fork_events: Vec<String> = events
            .iter()
            .filter(|e| {
                FORK_REACHABLE_EVENTS
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(&e.value))
            })
            .map(place)
            .collect();
        let pr_events: Vec<String> = events
            .iter()
            .filter(|e| {
                PULL_REQUEST_EVENTS
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(&e.value))
            })
            .map(place)
            .collect();

        let mut routed: Vec<(String, &Spanned<Label>, &str)> = Vec::new();
        for label in &set.labels {
            match &label.value {
                Label::Literal(text) => match self.ledger.route(&[text.as_str()]) {
                    Routed::None => {}
                    Routed::One(resource) => routed.push((resource, label, text)),
                    Routed::Ambiguous(a, b) => diags.push(
                        Diagnostic::error(
                            "audit-ambiguous-labels",
                            file,
                            label.span,
                            format!("label `{text}` routes to both `{a}` and `{b}`; the guard denies every such job"),
                        )
                        .with_help("fix the access repository: two resources claim one label"),
                    ),
                },
                Label::Expression(expr) => {
                    let d = if workflow::reads_event_input(expr) {
                        Diagnostic::error(
                            "audit-label-expression",
                            file,
                            label.span,
                            format!("job `{}` takes a runner label from `{expr}`, which whoever triggers the run controls: it can select any managed resource", set.job),
                        )
                    } else {
                        Diagnostic::warning(
                            "audit-label-expression",
                            file,
                            label.span,
                            format!("job `{}` takes a runner label from `{expr}`, which audit cannot resolve: it could select a managed resource", set.job),
                        )
                    };
                    diags.push(d.with_help(
                        "write the labels in the workflow (or in the job's matrix) so that reviewers and audit can see them",
                    ));
                }
            }
        }
        if let Some((first, label, _)) = routed.first()
            && let Some((other, _, _)) = routed.iter().find(|(r, _, _)| r != first)
        {
            diags.push(
                Diagnostic::error(
                    "audit-ambiguous-labels",
                    file,
                    label.span,
                    format!(
                        "job `{}` asks for both `{first}` and `{other}`; the guard denies it",
                        set.job
                    ),
                )
                .with_help("ask for one managed resource per job"),
            );
        }
        for (resource, label, text) in &routed {
            self.judge_label(
                file,
                resource,
                label.span,
                text,
                &fork_events,
                &pr_events,
                diags,
            );
        }
        // A managed runner group serves its resources to whoever it lets in: the project must
        // hold one of them, as for a label.
        if let Some(group) = &set.group {
            let resources = self.ledger.group_resources(&group.value);
            let held = resources.iter().find(|r| {
                self.project
                    .is_some_and(|p| !matches!(self.ledger.grant(p, r), GrantState::None))
            });
            if let Some(resource) = held.or(resources.first()) {
                let text = format!("group: {}", group.value);
                self.judge_label(
                    file,
                    resource,
                    group.span,
                    &text,
                    &fork_events,
                    &pr_events,
                    diags,
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn judge_label(
        &self,
        file: &str,
        resource: &str,
        span: Span,
        text: &str,
        fork_events: &[String],
        pr_events: &[String],
        diags: &mut Diagnostics,
    ) {
        let shown = if text == resource {
            format!("`{text}`")
        } else {
            format!(
                "`{text}` (routed as `{resource}`: routing ignores case and everything from `--`)"
            )
        };
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
                    format!("{shown} runs on {event}, which anyone can start from a fork or a comment: their code or text reaches a runner of `{resource}`"),
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
    use crate::model::ProviderKind;
    let mut diags = Diagnostics::new();
    let Some(settings) = &repo.settings else {
        return diags;
    };
    let file = settings.path.as_str();
    for group in groups.iter().filter(|g| g.allows_public_repositories) {
        // The provider that manages this group, and the resources it serves.
        let provider = settings.value.providers.iter().find(|(_, p)| {
            p.kind.value == ProviderKind::RunnerGroup
                && p.group
                    .as_ref()
                    .is_some_and(|g| g.value.eq_ignore_ascii_case(&group.name))
        });
        let span = provider.map_or(settings.value.org.span, |(_, p)| p.kind.span);
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
        fn route(&self, labels: &[&str]) -> Routed {
            let gpu = labels
                .iter()
                .any(|l| l.to_ascii_lowercase().split("--").next() == Some("gpu"));
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
        struct Groups;
        impl Ledger for Groups {
            fn project_of(&self, name: &str) -> Option<String> {
                Fake.project_of(name)
            }
            fn route(&self, labels: &[&str]) -> Routed {
                Fake.route(labels)
            }
            fn grant(&self, project: &str, resource: &str) -> GrantState {
                Fake.grant(project, resource)
            }
            fn group_resources(&self, group: &str) -> Vec<String> {
                if group.eq_ignore_ascii_case("gpu-pool") {
                    vec!["gpu".into()]
                } else {
                    Vec::new()
                }
            }
        }
        let wf = b"on: push\njobs:\n  a:\n    runs-on: { group: gpu-pool }\n  b:\n    runs-on:\n      group: other\n      labels: [x]\n".to_vec();
        let files = vec![(".github/workflows/x.yml".to_string(), wf)];
        let held = audit_project(&Groups, "a-feedstock", &files).sorted();
        assert!(held.is_empty(), "{held:?}");
        let found: Vec<_> = audit_project(&Groups, "b-feedstock", &files)
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
            fn route(&self, labels: &[&str]) -> Routed {
                Fake.route(labels)
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
