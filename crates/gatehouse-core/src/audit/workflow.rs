//! What audit reads from a project's files: the events that start each workflow, the runner
//! labels each job asks for, and the project's own reusable workflows each job calls, each
//! with its place.
//!
//! Labels are taken as GitHub would see them. A literal `runs-on` is its labels; an expression
//! whose values the file determines (`${{ matrix.KEY }}`, `${{ 'label' }}`, `format(...)`,
//! `cond && 'a' || 'b'`; see [`super::expr`]) is each of those values, judged as if written out;
//! a label whose unknown part comes after a `--` or `;` (conda-smithy's
//! `cirun-openstack-gpu-large--${{ github.run_id }}-linux_64`) routes by the text before it.
//! Any other expression cannot be resolved from the file and is reported as such.

use crate::names::label_key_end;
use crate::span::{Span, Spanned};

use super::expr::{self, Env, MAX_VALUES, Piece, Value};
use super::yaml::Node;

/// How a runner label is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Label {
    /// A label written in the file (an expression after `--` or `;` is part of the suffix that
    /// routing ignores, so such a label is known too).
    Literal(String),
    /// The value of an expression that the file determines.
    Resolved { value: String, expression: String },
    /// An expression whose value is not in the file: it could select any label.
    Expression(String),
}

impl Label {
    /// The text that routes, when the file says it.
    pub fn routes_as(&self) -> Option<&str> {
        match self {
            Label::Literal(text) | Label::Resolved { value: text, .. } => Some(text),
            Label::Expression(_) => None,
        }
    }
}

/// The labels one job (or one configuration) asks for, each with its place.
#[derive(Clone, Debug)]
pub struct LabelSet {
    /// The job's id, or the configuration key.
    pub job: String,
    /// One runner's labels: a job runs on a runner that carries all of them.
    pub labels: Vec<Spanned<Label>>,
    /// `runs-on: { group: NAME }`: the job runs on the organisation's runner group NAME,
    /// whatever its labels.
    pub group: Option<Spanned<String>>,
    /// The job's `if:`, which may keep some events from reaching it.
    pub condition: Option<String>,
    /// The job's `timeout-minutes`.
    pub timeout: JobTimeout,
}

/// A job's `timeout-minutes`, as the file gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobTimeout {
    /// Not set: GitHub stops the job after 360 minutes on its own runners, after 5 days on a
    /// self-hosted one.
    Absent,
    Minutes(Spanned<u64>),
    /// An expression, or a value audit cannot read.
    Unknown(Spanned<String>),
    /// A conda-forge feedstock's build variant: conda-smithy writes its job's `timeout-minutes`
    /// from `conda-forge.yml`'s `github_actions: timeout_minutes` ([`SMITHY_TIMEOUT_MINUTES`]
    /// when absent). `file`: the place of `conda-forge.yml`.
    Smithy {
        minutes: Option<Spanned<u64>>,
        file: String,
    },
}

/// The `timeout-minutes` conda-smithy gives a feedstock's jobs when `conda-forge.yml` does not
/// say (its `github_actions: timeout_minutes` option, added in conda-smithy's news entry
/// 1703-cirun-self-hosted).
pub const SMITHY_TIMEOUT_MINUTES: u64 = 360;

impl JobTimeout {
    fn of(job: &Node) -> JobTimeout {
        let Some(value) = job.get("timeout-minutes") else {
            return JobTimeout::Absent;
        };
        let text = value.value.as_str().unwrap_or_default().trim();
        match text.parse::<u64>() {
            Ok(minutes) => JobTimeout::Minutes(Spanned::new(minutes, value.span)),
            Err(_) => JobTimeout::Unknown(Spanned::new(text.to_string(), value.span)),
        }
    }
}

/// A job that calls a reusable workflow of the same repository (`uses: ./.github/workflows/x.yml`):
/// the called workflow's jobs run for the caller's events.
#[derive(Clone, Debug)]
pub struct Call {
    pub job: String,
    /// The called file relative to the checkout, where `uses:` names it.
    pub workflow: Spanned<String>,
    /// The calling job's `if:`.
    pub condition: Option<String>,
}

/// A workflow file: its events, its jobs' label sets and its calls.
#[derive(Clone, Debug, Default)]
pub struct Workflow {
    /// Event names with where they are named.
    pub events: Vec<Spanned<String>>,
    /// One entry per runner a job may run on (a matrix job has one per matrix value).
    pub runs_on: Vec<LabelSet>,
    pub calls: Vec<Call>,
}

/// Reads the events, runs-on labels and local calls of a workflow tree.
pub fn read_workflow(tree: &Spanned<Node>) -> Workflow {
    let mut wf = Workflow::default();
    for on in tree.value.get_all("on") {
        match &on.value {
            Node::Scalar(s) => wf.events.push(Spanned::new(s.clone(), on.span)),
            Node::Seq(items) => wf.events.extend(
                items
                    .iter()
                    .filter_map(|i| Some(Spanned::new(i.value.as_str()?.to_string(), i.span))),
            ),
            Node::Map(_) => wf.events.extend(
                on.value
                    .entries()
                    .map(|(k, _)| Spanned::new(k.value.to_string(), k.span)),
            ),
            Node::Null => {}
        }
    }
    for jobs in tree.value.get_all("jobs") {
        for (job, body) in jobs.value.entries() {
            let condition = body
                .value
                .get("if")
                .and_then(|c| c.value.as_str())
                .map(str::to_string);
            let matrix = body
                .value
                .get("strategy")
                .and_then(|s| s.value.get("matrix"));
            let timeout = JobTimeout::of(&body.value);
            for runs_on in body.value.get_all("runs-on") {
                wf.runs_on.extend(job_label_sets(
                    job.value, runs_on, matrix, &condition, &timeout,
                ));
            }
            for uses in body.value.get_all("uses") {
                if let Some(path) = uses.value.as_str().and_then(local_workflow) {
                    wf.calls.push(Call {
                        job: job.value.to_string(),
                        workflow: Spanned::new(path, uses.span),
                        condition: condition.clone(),
                    });
                }
            }
        }
    }
    wf
}

/// `.github/workflows/x.yml` for a job's `uses: ./.github/workflows/x.yml` (the project's own
/// reusable workflow); `None` for another repository's.
fn local_workflow(uses: &str) -> Option<String> {
    let path = uses.trim().strip_prefix("./")?;
    let path = path.split('@').next().unwrap_or(path);
    Some(path.to_string())
}

/// The runner label sets of one `runs-on`: one set, or one per value its expressions take.
fn job_label_sets(
    job: &str,
    runs_on: &Spanned<Node>,
    matrix: Option<&Spanned<Node>>,
    condition: &Option<String>,
    timeout: &JobTimeout,
) -> Vec<LabelSet> {
    let env = Env {
        matrix,
        event_name: None,
    };
    // `runs-on: { group: ..., labels: ... }`: the group and the labels both select.
    let group = runs_on
        .value
        .get("group")
        .and_then(|g| Some(Spanned::new(g.value.as_str()?.to_string(), g.span)));
    let runners = match &runs_on.value {
        Node::Map(_) => match runs_on.value.get("labels") {
            Some(l) => runners(l, &env),
            None => vec![Vec::new()],
        },
        _ => runners(runs_on, &env),
    };
    runners
        .into_iter()
        .map(|labels| LabelSet {
            job: job.to_string(),
            labels,
            group: group.clone(),
            condition: condition.clone(),
            timeout: timeout.clone(),
        })
        .collect()
}

/// The runners a `runs-on` value may ask for, each as its labels.
fn runners(value: &Spanned<Node>, env: &Env<'_>) -> Vec<Vec<Spanned<Label>>> {
    match &value.value {
        Node::Scalar(s) => {
            // A whole expression may give a list: a matrix value such as
            // `['cirun-openstack-gpu-large--${{ github.run_id }}-linux_64', 'linux']`.
            if let [Piece::Expression(source, written)] = expr::pieces(s.trim()).as_slice() {
                let outcomes = expr::evaluate(source, env);
                let mut out: Vec<Vec<Spanned<Label>>> = Vec::new();
                for v in outcomes.values {
                    let span = if v.span.is_known() {
                        v.span
                    } else {
                        value.span
                    };
                    match &v.value {
                        Value::List(items) => {
                            let each: Vec<Vec<Spanned<Label>>> = items
                                .iter()
                                .map(|i| value_labels(i, span, written, env))
                                .collect();
                            out.extend(combinations(each));
                        }
                        // An object or null gives GitHub nothing to route; not ours to judge.
                        Value::Map(_) | Value::Null => {}
                        _ => out.extend(
                            value_labels(&v, span, written, env)
                                .into_iter()
                                .map(|l| vec![l]),
                        ),
                    }
                }
                if outcomes.open {
                    out.push(vec![Spanned::new(
                        Label::Expression(s.trim().to_string()),
                        value.span,
                    )]);
                }
                return out;
            }
            labels_of_text(s, value.span, env)
                .into_iter()
                .map(|l| vec![l])
                .collect()
        }
        Node::Seq(items) => combinations(
            items
                .iter()
                .filter_map(|i| Some(labels_of_text(i.value.as_str()?, i.span, env)))
                .collect(),
        ),
        // A map or null where labels belong gives GitHub nothing to route; not ours to judge.
        _ => vec![Vec::new()],
    }
}

/// The labels one value of a whole-`runs-on` expression stands for: a value written in the file
/// (a matrix value, itself evaluated by GitHub) is read like a label written there; a computed
/// one is the expression's value.
fn value_labels(
    v: &Spanned<Value>,
    fallback: Span,
    written: &str,
    env: &Env<'_>,
) -> Vec<Spanned<Label>> {
    match &v.value {
        Value::Str(text) if v.span.is_known() => labels_of_text(text, v.span, env),
        Value::List(_) | Value::Map(_) | Value::Null => Vec::new(),
        other => vec![Spanned::new(
            Label::Resolved {
                value: other.text(),
                expression: written.to_string(),
            },
            fallback,
        )],
    }
}

/// One runner per way of picking one label from each position, at most [`MAX_VALUES`]; past
/// that, each label alone (every label is still judged, only ambiguity between them is not).
fn combinations(positions: Vec<Vec<Spanned<Label>>>) -> Vec<Vec<Spanned<Label>>> {
    let count = positions
        .iter()
        .try_fold(1usize, |n, p| n.checked_mul(p.len().max(1)));
    if count.is_none_or(|n| n > MAX_VALUES) {
        return positions.into_iter().flatten().map(|l| vec![l]).collect();
    }
    let mut out: Vec<Vec<Spanned<Label>>> = vec![Vec::new()];
    for choices in positions.into_iter().filter(|p| !p.is_empty()) {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                choices.iter().map(move |c| {
                    let mut runner = prefix.clone();
                    runner.push(c.clone());
                    runner
                })
            })
            .collect();
    }
    out
}

/// The labels a label's text may be, judged for expressions.
pub fn labels_of_text(text: &str, span: Span, env: &Env<'_>) -> Vec<Spanned<Label>> {
    let pieces = expr::pieces(text);
    if !pieces.iter().any(|p| matches!(p, Piece::Expression(..))) {
        return vec![Spanned::new(Label::Literal(text.to_string()), span)];
    }
    // Each way of filling the expressions in: the text, and where the first unknown part starts.
    let mut filled: Vec<(String, Option<usize>)> = vec![(String::new(), None)];
    for piece in &pieces {
        let choices: Vec<(String, bool)> = match piece {
            Piece::Text(t) => vec![(t.to_string(), false)],
            Piece::Expression(source, written) => {
                let o = expr::evaluate(source, env);
                let mut c: Vec<(String, bool)> =
                    o.values.iter().map(|v| (v.value.text(), false)).collect();
                if o.open {
                    c.push((written.to_string(), true));
                }
                c
            }
        };
        if filled.len() * choices.len() > MAX_VALUES {
            return vec![Spanned::new(
                Label::Expression(text.trim().to_string()),
                span,
            )];
        }
        filled = filled
            .iter()
            .flat_map(|(prefix, open_at)| {
                choices.iter().map(move |(c, open)| {
                    let at = open_at.or(open.then_some(prefix.len()));
                    (format!("{prefix}{c}"), at)
                })
            })
            .collect();
    }
    let mut out: Vec<Spanned<Label>> = Vec::new();
    for (value, open_at) in filled {
        let label = match open_at {
            None => Label::Resolved {
                value,
                expression: text.to_string(),
            },
            // The routing key ends before the unknown part: what follows cannot change it.
            Some(at) if label_key_end(&value.as_bytes()[..at]) < at => {
                if value == text {
                    Label::Literal(value)
                } else {
                    Label::Resolved {
                        value,
                        expression: text.to_string(),
                    }
                }
            }
            Some(_) => Label::Expression(text.trim().to_string()),
        };
        if !out.iter().any(|l| l.value == label) {
            out.push(Spanned::new(label, span));
        }
    }
    out
}

/// Whether `event` can start a job with this `if:` (false only when the condition is false
/// for that event whatever else happens).
pub fn reaches(condition: Option<&str>, event: &str) -> bool {
    condition.is_none_or(|c| {
        !expr::condition(
            c,
            &Env {
                matrix: None,
                event_name: Some(event),
            },
        )
        .always_false()
    })
}

/// Whether an expression reads data that whoever triggers the run controls (event payload,
/// workflow inputs, a branch name).
pub fn reads_event_input(expression: &str) -> bool {
    let e = expression.to_ascii_lowercase();
    ["github.event", "inputs.", "github.head_ref", "fromjson("]
        .iter()
        .any(|p| e.contains(p))
}

/// The parts of a conda-forge feedstock's configuration that decide its runners:
/// `conda-forge.yml`'s `github_actions` and `recipe/conda_build_config.yaml`'s
/// `github_actions_labels`.
#[derive(Clone, Debug, Default)]
pub struct FeedstockConfig {
    /// `github_actions: self_hosted: true`, with its place.
    pub self_hosted: Option<Span>,
    /// `github_actions: triggers: [...]`; conda-smithy builds only `push` on self-hosted runners
    /// unless these say otherwise.
    pub triggers: Vec<Spanned<String>>,
    /// `github_actions: timeout_minutes`, when it is a number.
    pub timeout_minutes: Option<Spanned<u64>>,
}

/// Reads `conda-forge.yml`.
pub fn read_conda_forge_yml(tree: &Spanned<Node>) -> FeedstockConfig {
    let mut config = FeedstockConfig::default();
    for gha in tree.value.get_all("github_actions") {
        for s in gha.value.get_all("self_hosted") {
            if s.value.as_str() == Some("true") {
                config.self_hosted = Some(s.span);
            }
        }
        for t in gha.value.get_all("timeout_minutes") {
            if let Some(m) = t.value.as_str().and_then(|m| m.trim().parse().ok()) {
                config.timeout_minutes = Some(Spanned::new(m, t.span));
            }
        }
        for t in gha.value.get_all("triggers") {
            match &t.value {
                Node::Scalar(s) => config.triggers.push(Spanned::new(s.clone(), t.span)),
                Node::Seq(items) => config.triggers.extend(
                    items
                        .iter()
                        .filter_map(|i| Some(Spanned::new(i.value.as_str()?.to_string(), i.span))),
                ),
                _ => {}
            }
        }
    }
    config
}

/// `github_actions_labels` of `recipe/conda_build_config.yaml`: each value is the label set of
/// one build variant (conda-smithy adds the generic labels itself). Their timeout is
/// conda-smithy's default until the caller sets `conda-forge.yml`'s.
pub fn read_build_config_labels(tree: &Spanned<Node>) -> Vec<LabelSet> {
    tree.value
        .get_all("github_actions_labels")
        .flat_map(|v| match &v.value {
            Node::Seq(items) => items.iter().collect::<Vec<_>>(),
            _ => vec![v],
        })
        .flat_map(|v| runners(v, &Env::default()))
        .map(|labels| LabelSet {
            job: "github_actions_labels".to_string(),
            labels,
            group: None,
            condition: None,
            timeout: JobTimeout::Smithy {
                minutes: None,
                file: String::new(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::yaml::parse_tree;

    fn literal(s: &str) -> Label {
        Label::Literal(s.to_string())
    }

    #[test]
    fn matrix_references_expand_to_each_value_with_its_line() {
        let text = "on:\n  push:\n  pull_request:\njobs:\n  build:\n    runs-on: ${{ matrix.runs_on }}\n    strategy:\n      matrix:\n        include:\n          - CONFIG: a\n            runs_on: ['cirun-openstack-gpu-large--${{ github.run_id }}-linux_64', 'linux']\n          - CONFIG: b\n            runs_on: ['ubuntu-latest']\n";
        let wf = read_workflow(&parse_tree("w.yml", text.as_bytes()).unwrap());
        let events: Vec<_> = wf
            .events
            .iter()
            .map(|e| (e.value.as_str(), e.span.line))
            .collect();
        assert_eq!(events, [("push", 2), ("pull_request", 3)]);
        assert_eq!(wf.runs_on.len(), 2);
        let first: Vec<_> = wf.runs_on[0]
            .labels
            .iter()
            .map(|l| (l.value.clone(), l.span.line))
            .collect();
        assert_eq!(
            first,
            [
                (
                    literal("cirun-openstack-gpu-large--${{ github.run_id }}-linux_64"),
                    11
                ),
                (literal("linux"), 11)
            ]
        );
        assert_eq!(wf.runs_on[1].labels[0].value, literal("ubuntu-latest"));
    }

    #[test]
    fn unresolvable_expressions_stay_expressions() {
        let text = "on: [issue_comment]\njobs:\n  a:\n    runs-on: ${{ github.event.comment.body }}\n  b:\n    runs-on: [self-hosted, 'gpu-${{ inputs.size }}']\n  c:\n    runs-on: { group: big, labels: [cirun-x] }\n  d:\n    runs-on: ${{ matrix.os }}\n    strategy: { matrix: '${{ fromJSON(needs.a.outputs.m) }}' }\n";
        let wf = read_workflow(&parse_tree("w.yml", text.as_bytes()).unwrap());
        assert_eq!(wf.events[0].value, "issue_comment");
        let labels: Vec<Vec<Label>> = wf
            .runs_on
            .iter()
            .map(|s| s.labels.iter().map(|l| l.value.clone()).collect())
            .collect();
        assert_eq!(
            labels,
            [
                vec![Label::Expression("${{ github.event.comment.body }}".into())],
                vec![
                    literal("self-hosted"),
                    Label::Expression("gpu-${{ inputs.size }}".into())
                ],
                vec![literal("cirun-x")],
                vec![Label::Expression("${{ matrix.os }}".into())],
            ]
        );
        assert!(reads_event_input("${{ github.event.comment.body }}"));
        assert!(!reads_event_input("${{ vars.RUNNER }}"));
    }

    fn runners_of(text: &str) -> Vec<Vec<(Label, u32)>> {
        let wf = read_workflow(&parse_tree("w.yml", text.as_bytes()).unwrap());
        wf.runs_on
            .iter()
            .map(|s| {
                s.labels
                    .iter()
                    .map(|l| (l.value.clone(), l.span.line))
                    .collect()
            })
            .collect()
    }

    fn resolved(value: &str, expression: &str) -> Label {
        Label::Resolved {
            value: value.into(),
            expression: expression.into(),
        }
    }

    #[test]
    fn constant_expressions_are_read_as_their_values() {
        let text = "jobs:\n  a:\n    runs-on: ${{ 'namespace-profile-default' }}\n  b:\n    runs-on: [self-hosted, \"${{ format('cirun-openstack-{0}-large', 'gpu') }}\"]\n  c:\n    runs-on: ${{ github.ref == 'refs/heads/main' && 'depot-ubuntu-24.04' || 'ubuntu-latest' }}\n  d:\n    runs-on: namespace-profile-${{ matrix.size }}-on-linux-64\n    strategy:\n      matrix:\n        size: [16cpu, 32cpu]\n";
        let w = |e: &str| format!("${{{{ {e} }}}}");
        let c = w("github.ref == 'refs/heads/main' && 'depot-ubuntu-24.04' || 'ubuntu-latest'");
        assert_eq!(
            runners_of(text),
            [
                vec![(
                    resolved(
                        "namespace-profile-default",
                        &w("'namespace-profile-default'")
                    ),
                    3
                )],
                vec![
                    (literal("self-hosted"), 5),
                    (
                        resolved(
                            "cirun-openstack-gpu-large",
                            &w("format('cirun-openstack-{0}-large', 'gpu')")
                        ),
                        5
                    )
                ],
                vec![(resolved("depot-ubuntu-24.04", &c), 7)],
                vec![(resolved("ubuntu-latest", &c), 7)],
                vec![(
                    resolved(
                        "namespace-profile-16cpu-on-linux-64",
                        "namespace-profile-${{ matrix.size }}-on-linux-64"
                    ),
                    9
                )],
                vec![(
                    resolved(
                        "namespace-profile-32cpu-on-linux-64",
                        "namespace-profile-${{ matrix.size }}-on-linux-64"
                    ),
                    9
                )],
            ]
        );
    }

    #[test]
    fn an_unknown_part_after_a_semicolon_does_not_hide_the_label() {
        let text = "jobs:\n  a:\n    runs-on: namespace-profile-x;${{ inputs.options }}\n  b:\n    runs-on: namespace-profile-${{ inputs.size }}\n";
        assert_eq!(
            runners_of(text),
            [
                vec![(literal("namespace-profile-x;${{ inputs.options }}"), 3)],
                vec![(
                    Label::Expression("namespace-profile-${{ inputs.size }}".into()),
                    5
                )],
            ]
        );
    }

    #[test]
    fn local_reusable_workflows_and_job_conditions_are_read() {
        let text = "on: pull_request_target\njobs:\n  build:\n    if: github.event_name != 'push'\n    uses: ./.github/workflows/build.yml\n  other:\n    uses: conda-forge/x/.github/workflows/y.yml@main\n";
        let wf = read_workflow(&parse_tree("w.yml", text.as_bytes()).unwrap());
        assert_eq!(wf.calls.len(), 1);
        assert_eq!(wf.calls[0].workflow.value, ".github/workflows/build.yml");
        assert_eq!(wf.calls[0].workflow.span.line, 5);
        assert!(!reaches(wf.calls[0].condition.as_deref(), "push"));
        assert!(reaches(
            wf.calls[0].condition.as_deref(),
            "pull_request_target"
        ));
    }
}
