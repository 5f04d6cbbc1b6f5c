//! What audit reads from a project's files: the events that start each workflow and the
//! runner labels each job asks for, each with its place.
//!
//! Labels are taken as GitHub would see them. A literal `runs-on` is its labels; `${{
//! matrix.KEY }}` is every value KEY takes in the job's matrix (its lists and its `include`
//! entries); a label whose expression comes after a `--` (conda-smithy's
//! `cirun-openstack-gpu-large--${{ github.run_id }}-linux_64`) routes by the text before it.
//! Any other expression cannot be resolved from the file and is reported as such.

use crate::span::{Span, Spanned};

use super::yaml::Node;

/// How a runner label is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Label {
    /// A label known from the file (an expression after `--` is part of the suffix that
    /// routing ignores, so such a label is known too).
    Literal(String),
    /// An expression whose value is not in the file: it could select any label.
    Expression(String),
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
}

/// A workflow file: its events and its jobs' label sets.
#[derive(Clone, Debug, Default)]
pub struct Workflow {
    /// Event names with where they are named.
    pub events: Vec<Spanned<String>>,
    /// One entry per runner a job may run on (a matrix job has one per matrix value).
    pub runs_on: Vec<LabelSet>,
}

/// Reads the events and runs-on labels of a workflow tree.
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
            for runs_on in body.value.get_all("runs-on") {
                let matrix = body
                    .value
                    .get("strategy")
                    .and_then(|s| s.value.get("matrix"));
                wf.runs_on
                    .extend(job_label_sets(job.value, runs_on, matrix));
            }
        }
    }
    wf
}

/// The runner label sets of one `runs-on`: one set, or one per matrix value it names.
fn job_label_sets(
    job: &str,
    runs_on: &Spanned<Node>,
    matrix: Option<&Spanned<Node>>,
) -> Vec<LabelSet> {
    // `runs-on: { group: ..., labels: ... }`: the group and the labels both select.
    let group = runs_on
        .value
        .get("group")
        .and_then(|g| Some(Spanned::new(g.value.as_str()?.to_string(), g.span)));
    let value = match &runs_on.value {
        Node::Map(_) => match runs_on.value.get("labels") {
            Some(l) => l,
            None => {
                return vec![LabelSet {
                    job: job.to_string(),
                    labels: Vec::new(),
                    group,
                }];
            }
        },
        _ => runs_on,
    };
    // A whole `runs-on` that is one matrix reference expands to each value of that key.
    if let Some(s) = value.value.as_str()
        && let Some(key) = matrix_key(s)
    {
        let values = matrix_values(matrix, key);
        if let Some(values) = values {
            return values
                .into_iter()
                .map(|v| LabelSet {
                    job: job.to_string(),
                    labels: labels_of(v),
                    group: group.clone(),
                })
                .collect();
        }
    }
    vec![LabelSet {
        job: job.to_string(),
        labels: labels_of(value),
        group,
    }]
}

/// The labels a scalar or a list gives.
fn labels_of(value: &Spanned<Node>) -> Vec<Spanned<Label>> {
    match &value.value {
        Node::Scalar(s) => vec![Spanned::new(label_of(s), value.span)],
        Node::Seq(items) => items
            .iter()
            .filter_map(|i| Some(Spanned::new(label_of(i.value.as_str()?), i.span)))
            .collect(),
        // A map or null where labels belong gives GitHub nothing to route; not ours to judge.
        _ => Vec::new(),
    }
}

/// One label's text, judged for expressions.
pub fn label_of(text: &str) -> Label {
    match text.find("${{") {
        None => Label::Literal(text.to_string()),
        Some(at) => {
            let before = &text[..at];
            // The routing key ends at the first `--`: what follows cannot change the route.
            if before.contains("--") {
                Label::Literal(text.to_string())
            } else {
                Label::Expression(text.trim().to_string())
            }
        }
    }
}

/// `KEY` when `text` is exactly `${{ matrix.KEY }}`.
fn matrix_key(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("${{")?.strip_suffix("}}")?.trim();
    let key = inner.strip_prefix("matrix.")?;
    key.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        .then_some(key)
}

/// Every value `key` takes in `matrix`, or `None` when the matrix is not in the file (absent,
/// or itself an expression).
fn matrix_values<'a>(
    matrix: Option<&'a Spanned<Node>>,
    key: &str,
) -> Option<Vec<&'a Spanned<Node>>> {
    let matrix = matrix?;
    if !matches!(matrix.value, Node::Map(_)) {
        return None;
    }
    let mut values: Vec<&Spanned<Node>> = Vec::new();
    for list in matrix.value.get_all(key) {
        match &list.value {
            Node::Seq(items) => values.extend(items.iter()),
            _ => values.push(list),
        }
    }
    for include in matrix.value.get_all("include") {
        for entry in include.value.items() {
            values.extend(entry.value.get_all(key));
        }
    }
    if values.is_empty() {
        return None;
    }
    Some(values)
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
/// one build variant (conda-smithy adds the generic labels itself).
pub fn read_build_config_labels(tree: &Spanned<Node>) -> Vec<LabelSet> {
    tree.value
        .get_all("github_actions_labels")
        .flat_map(|v| match &v.value {
            Node::Seq(items) => items.iter().collect::<Vec<_>>(),
            _ => vec![v],
        })
        .map(|v| LabelSet {
            job: "github_actions_labels".to_string(),
            labels: labels_of(v),
            group: None,
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
}
