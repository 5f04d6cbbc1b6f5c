use std::collections::{HashMap, HashSet};

use super::CheckContext;
use super::settings::validate_reviewers;
use crate::diag::{Diagnostic, Diagnostics};
use crate::model::{ProviderKind, Resource};
use crate::names::{
    GENERIC_LABELS, HOSTED_LABEL_PREFIXES, is_generic_label, is_hosted_runner_key, label_key,
    label_pattern, patterns_overlap, validate_project_name,
};
use crate::span::Spanned;

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
/// compares them), no two resources' patterns can match one label, and no resource claims a
/// label every runner has or one GitHub's own hosted runners answer to.
pub(super) fn validate_labels(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    // Every valid pattern: (the text before its `*`, the label, its resource).
    let patterns: Vec<(String, &Spanned<String>, &str)> = ctx
        .repo
        .resources
        .iter()
        .flat_map(|r| {
            r.value
                .labels
                .iter()
                .map(move |l| (l, r.value.name.as_str()))
        })
        .filter_map(|(l, owner)| {
            let prefix = label_pattern(&label_key(l)).ok()??.to_string();
            Some((prefix, l, owner))
        })
        .collect();
    for r in &ctx.repo.resources {
        let res = &r.value;
        let file = r.path.as_str();
        if res.labels.is_empty() && !served_by_a_runner_group(ctx, res) {
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
        // `self-hosted` alone selects every self-hosted runner the repository may use.
        let only_self_hosted =
            !res.labels.is_empty() && res.labels.iter().all(|l| label_key(l) == "self-hosted");
        let mut own: HashSet<String> = HashSet::new();
        for label in &res.labels {
            let key = label_key(label);
            if key.is_empty() {
                diags.push(
                    Diagnostic::error(
                        "label",
                        file,
                        label.span,
                        format!(
                            "label `{}` is empty once its `--` or `;` suffix is dropped",
                            label.value
                        ),
                    )
                    .with_help("write the label's name before any `--` or `;`"),
                );
                continue;
            }
            if only_self_hosted {
                diags.push(
                    Diagnostic::error(
                        "hosted-label",
                        file,
                        label.span,
                        format!(
                            "resource `{}` claims only `{}`, which every self-hosted runner of the organisation answers to: the guard could not tell this resource's jobs from any other's",
                            res.name.value, label.value
                        ),
                    )
                    .with_help("list the labels only this resource's runners carry"),
                );
                break;
            }
            let pattern = match label_pattern(&key) {
                Ok(p) => p,
                Err(e) => {
                    diags.push(
                        Diagnostic::error(
                            "label-pattern",
                            file,
                            label.span,
                            format!("label `{}` {e}", label.value),
                        )
                        .with_help("a pattern ends in its only `*` (`namespace-profile-*`); otherwise remove the `*`"),
                    );
                    continue;
                }
            };
            if let Some(hosted) = hosted_runner_match(&key, pattern) {
                diags.push(
                    Diagnostic::error(
                        "hosted-label",
                        file,
                        label.span,
                        format!(
                            "label `{}` {hosted}: a job asking for one runs on GitHub's machines (or on any runner that carries the label), and the guard never routes it",
                            label.value
                        ),
                    )
                    .with_help(format!(
                        "remove it; labels beginning with {} belong to GitHub",
                        HOSTED_LABEL_PREFIXES
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
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
                                "label `{}` is also claimed by {} (labels compare case-insensitively, without any `--` or `;` suffix)",
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
                    continue;
                }
            }
            if let Some(prefix) = pattern {
                validate_pattern_overlap(file, res.name.as_str(), label, prefix, &patterns, diags);
            }
        }
    }
}

/// A pattern may not match a label another pattern matches: a job would then route to two
/// resources. (A different pattern with the same text is a `label-conflict`; an overlap within
/// one resource routes nowhere else, but one of the two is redundant.)
fn validate_pattern_overlap(
    file: &str,
    resource: &str,
    label: &Spanned<String>,
    prefix: &str,
    patterns: &[(String, &Spanned<String>, &str)],
    diags: &mut Diagnostics,
) {
    for (other, other_label, owner) in patterns {
        if std::ptr::eq(*other_label, label) || other == prefix || !patterns_overlap(prefix, other)
        {
            continue;
        }
        if *owner == resource {
            // Reported once, on the narrower of the two.
            if prefix.starts_with(other.as_str()) {
                diags.push(
                    Diagnostic::warning(
                        "duplicate-label",
                        file,
                        label.span,
                        format!(
                            "pattern `{}` adds nothing: `{}` of this resource already matches every label it matches",
                            label.value, other_label.value
                        ),
                    )
                    .with_help("remove the narrower pattern"),
                );
            }
            continue;
        }
        diags.push(
            Diagnostic::error(
                "pattern-overlap",
                file,
                label.span,
                format!(
                    "pattern `{}` and pattern `{}` of `{owner}` both match labels that begin with `{}`: such a job would route to two resources",
                    label.value,
                    other_label.value,
                    if prefix.len() >= other.len() { prefix } else { other.as_str() }
                ),
            )
            .with_help("make the patterns disjoint (neither's text before `*` may begin the other's), or list exact labels"),
        );
    }
}

/// How a routing key (or, for a pattern, the text before its `*`) meets GitHub's hosted-runner
/// labels, in words; `None` when it does not.
fn hosted_runner_match(key: &str, pattern: Option<&str>) -> Option<String> {
    match pattern {
        None => is_hosted_runner_key(key.as_bytes())
            .then(|| "is a label of GitHub's own hosted runners".to_string()),
        Some(prefix) => HOSTED_LABEL_PREFIXES
            .iter()
            .find(|h| patterns_overlap(prefix, h))
            .map(|h| {
                format!("matches labels of GitHub's own hosted runners (`{h}latest` and the others beginning with `{h}`)")
            }),
    }
}

/// A resource served through a runner group, which `runs-on: { group: ... }` reaches without
/// labels.
fn served_by_a_runner_group(ctx: &CheckContext<'_>, res: &Resource) -> bool {
    ctx.repo.settings.as_ref().is_some_and(|s| {
        s.value
            .providers
            .get(res.provider.as_str())
            .is_some_and(|p| p.kind() == ProviderKind::RunnerGroup)
    })
}

/// Concurrency caps hold at least one job, a project's cap fits in its resource's, and
/// `on_exceed` is said only where a cap is set.
pub(super) fn validate_caps(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let zero = |file: &str, cap: &Spanned<u32>, name: &str, diags: &mut Diagnostics| {
        if cap.value == 0 {
            diags.push(
                Diagnostic::error(
                    "concurrency-cap",
                    file,
                    cap.span,
                    format!("`{name}: 0` lets no job run"),
                )
                .with_help(format!(
                    "set `{name}` to at least 1, or remove it for no cap (revoke the grants to close the resource)"
                )),
            );
        }
    };
    if let Some(settings) = &ctx.repo.settings {
        for p in settings.value.providers.values() {
            if let Some(cap) = p.max_concurrency() {
                zero(settings.path.as_str(), cap, "max_concurrency", diags);
            }
        }
    }
    for r in &ctx.repo.resources {
        let file = r.path.as_str();
        let Some(quota) = &r.value.quota else {
            continue;
        };
        for (name, cap) in [
            ("concurrency", &quota.concurrency),
            ("project_concurrency", &quota.project_concurrency),
        ] {
            if let Some(cap) = cap {
                zero(file, cap, name, diags);
            }
        }
        if let (Some(all), Some(one)) = (&quota.concurrency, &quota.project_concurrency)
            && one.value > all.value
        {
            diags.push(
                Diagnostic::warning(
                    "concurrency-cap",
                    file,
                    one.span,
                    format!(
                        "`project_concurrency: {}` is above `concurrency: {}`: it never limits anything",
                        one.value, all.value
                    ),
                )
                .with_help("lower `project_concurrency` below `concurrency`, or remove it"),
            );
        }
        let provider_cap = ctx
            .repo
            .settings
            .as_ref()
            .and_then(|s| s.value.providers.get(r.value.provider.as_str()))
            .is_some_and(|p| p.max_concurrency().is_some());
        if let Some(on_exceed) = &quota.on_exceed
            && quota.concurrency.is_none()
            && quota.project_concurrency.is_none()
            && !provider_cap
        {
            diags.push(
                Diagnostic::warning(
                    "concurrency-cap",
                    file,
                    on_exceed.span,
                    "`on_exceed` is set but no concurrency cap applies to this resource",
                )
                .with_help(
                    "set `quota.concurrency` or `quota.project_concurrency` (or the provider's `max_concurrency`), or remove `on_exceed`",
                ),
            );
        }
    }
}

/// The longest a job on a self-hosted runner can run before GitHub ends it itself: 5 days
/// ("Usage limits", docs.github.com/actions/reference/limits). Every managed runner is
/// self-hosted to GitHub.
pub const GITHUB_JOB_LIMIT_MINUTES: u32 = 5 * 24 * 60;

/// A job time limit lets a job run, and is below the limit GitHub enforces itself.
pub(super) fn validate_job_time_limits(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    for r in &ctx.repo.resources {
        let Some(limit) = &r.value.max_job_minutes else {
            continue;
        };
        let file = r.path.as_str();
        if limit.value == 0 {
            diags.push(
                Diagnostic::error(
                    "job-time-limit",
                    file,
                    limit.span,
                    "`max_job_minutes: 0` lets no job run",
                )
                .with_help("set `max_job_minutes` to at least 1, or remove it for no limit"),
            );
        } else if limit.value > GITHUB_JOB_LIMIT_MINUTES {
            diags.push(
                Diagnostic::warning(
                    "job-time-limit",
                    file,
                    limit.span,
                    format!(
                        "`max_job_minutes: {}` is above the {GITHUB_JOB_LIMIT_MINUTES} minutes (5 days) after which GitHub ends a self-hosted runner's job itself: it never limits anything",
                        limit.value
                    ),
                )
                .with_help(format!("lower it below {GITHUB_JOB_LIMIT_MINUTES}, or remove it")),
            );
        }
    }
}

/// A price reads, and a priced resource has a ceiling: conda-forge adds a paid provider only
/// with "fixed costs or org-wide capped concurrency to estimate an upper bound for the costs".
pub(super) fn validate_costs(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let ceilings = crate::cost::worst_case(ctx.repo, ctx.today);
    for r in &ctx.repo.resources {
        let Some(cost) = &r.value.cost else {
            continue;
        };
        let file = r.path.as_str();
        if let Some(problem) = crate::cost::problem(&cost.value) {
            diags.push(
                Diagnostic::error("cost", file, cost.span, format!("the price {problem}"))
                    .with_help(
                        "write `cost: { per_minute: 0.008, currency: USD }` (or `per_hour`)",
                    ),
            );
            continue;
        }
        let unbounded = ceilings
            .resources
            .iter()
            .any(|c| c.resource == r.value.name.value && c.ceiling.is_none());
        if unbounded {
            diags.push(
                Diagnostic::warning(
                    "cost-ceiling",
                    file,
                    cost.span,
                    format!(
                        "`{}` has a price but no cap: its monthly cost has no ceiling",
                        r.value.name.value
                    ),
                )
                .with_help("set `quota.concurrency` or `quota.minutes_per_month`, or the provider's `max_concurrency` in gatehouse.yml"),
            );
        }
    }
}
