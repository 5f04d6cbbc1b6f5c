use std::collections::{HashMap, HashSet};

use super::CheckContext;
use super::settings::validate_reviewers;
use crate::diag::{Diagnostic, Diagnostics};
use crate::names::{GENERIC_LABELS, is_generic_label, label_key, validate_project_name};

/// Resource names are valid, match their file names, and are defined once.
pub(super) fn validate_resource_files(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let mut first_seen: HashMap<&str, &str> = HashMap::new();
    for r in &ctx.repo.resources {
        let res = &r.value;
        let file = r.path.as_str();
        if let Err(e) = validate_project_name(&res.name) {
            diags.push(Diagnostic::error(
                "resource-name",
                file,
                res.name.span,
                format!("resource name `{}` {e}", res.name.value),
            ));
        } else if r.stem() != res.name.as_str() {
            diags.push(
                Diagnostic::error(
                    "resource-name",
                    file,
                    res.name.span,
                    format!(
                        "resource `{}` is in a file named `{}`",
                        res.name.value, r.path
                    ),
                )
                .with_help(format!(
                    "rename the file to `resources/{}.yml`",
                    res.name.value
                )),
            );
        }
        match first_seen.get(res.name.as_str()) {
            Some(other) => diags.push(
                Diagnostic::error(
                    "duplicate-resource",
                    file,
                    res.name.span,
                    format!(
                        "resource `{}` is already defined in {other}",
                        res.name.value
                    ),
                )
                .with_help("keep one definition"),
            ),
            None => {
                first_seen.insert(res.name.as_str(), file);
            }
        }
        if let Some(reviewers) = &res.reviewers {
            validate_reviewers(file, reviewers, res.name.span, diags);
        }
    }
}

/// Every resource names a provider that `gatehouse.yml` defines.
pub(super) fn validate_resource_providers(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let Some(settings) = &ctx.repo.settings else {
        return;
    };
    let providers = &settings.value.providers;
    for r in &ctx.repo.resources {
        let p = &r.value.provider;
        if !providers.contains_key(p.as_str()) {
            let known: Vec<&str> = providers.keys().map(String::as_str).collect();
            diags.push(
                Diagnostic::error(
                    "unknown-provider",
                    r.path.as_str(),
                    p.span,
                    format!("provider `{}` is not defined in gatehouse.yml", p.value),
                )
                .with_help(if known.is_empty() {
                    "define it under `providers:` in gatehouse.yml".to_string()
                } else {
                    format!(
                        "use one of {}, or define it under `providers:` in gatehouse.yml",
                        known.join(", ")
                    )
                }),
            );
        }
    }
}

/// Labels route jobs unambiguously: no label is claimed by two resources (compared as the guard
/// compares them), and no resource claims a label every runner has.
pub(super) fn validate_labels(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    for r in &ctx.repo.resources {
        let res = &r.value;
        let file = r.path.as_str();
        if res.labels.is_empty() {
            diags.push(
                Diagnostic::warning(
                    "no-labels",
                    file,
                    res.name.span,
                    format!(
                        "resource `{}` has no labels, so no job can reach it",
                        res.name.value
                    ),
                )
                .with_help("add the runs-on labels that select this resource"),
            );
        }
        let mut own: HashSet<String> = HashSet::new();
        for label in &res.labels {
            let key = label_key(label);
            if key.is_empty() {
                diags.push(Diagnostic::error(
                    "label",
                    file,
                    label.span,
                    format!(
                        "label `{}` is empty once its `--` suffix is dropped",
                        label.value
                    ),
                ));
                continue;
            }
            if is_generic_label(label) {
                diags.push(
                    Diagnostic::error(
                        "generic-label",
                        file,
                        label.span,
                        format!(
                            "label `{}` is carried by every runner and cannot select a resource",
                            label.value
                        ),
                    )
                    .with_help(format!(
                        "remove it; the generic labels ({}) never route a job",
                        GENERIC_LABELS.join(", ")
                    )),
                );
                continue;
            }
            if !own.insert(key.clone()) {
                diags.push(Diagnostic::warning(
                    "duplicate-label",
                    file,
                    label.span,
                    format!("label `{}` is listed twice in this resource", label.value),
                ));
                continue;
            }
            if let Some(owners) = ctx.index.labels.get(&key) {
                let others: Vec<&str> = owners
                    .iter()
                    .copied()
                    .filter(|o| *o != res.name.as_str())
                    .collect();
                if !others.is_empty() {
                    diags.push(
                        Diagnostic::error(
                            "label-conflict",
                            file,
                            label.span,
                            format!(
                                "label `{}` is also claimed by {} (labels compare case-insensitively, without any `--` suffix)",
                                label.value,
                                others
                                    .iter()
                                    .map(|o| format!("`{o}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                        .with_help("give each resource labels of its own, so that a job routes to one resource"),
                    );
                }
            }
        }
    }
}
