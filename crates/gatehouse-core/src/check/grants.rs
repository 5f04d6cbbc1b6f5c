use std::collections::HashMap;

use super::CheckContext;
use crate::diag::{Diagnostic, Diagnostics};
use crate::names::{project_key, validate_project_name};

/// Project names are valid and equal the grant file's name.
pub(super) fn validate_grant_files(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let suffix = ctx
        .repo
        .settings
        .as_ref()
        .map(|s| s.value.repo_suffix.as_str())
        .unwrap_or("");
    for f in &ctx.repo.grants {
        let project = &f.value.project;
        let file = f.path.as_str();
        if let Err(e) = validate_project_name(project) {
            diags.push(
                Diagnostic::error(
                    "project-name",
                    file,
                    project.span,
                    format!("project name `{}` {e}", project.value),
                )
                .with_help("project names match ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"),
            );
            continue;
        }
        if f.stem() != project.as_str() {
            diags.push(
                Diagnostic::error(
                    "project-name",
                    file,
                    project.span,
                    format!(
                        "project `{}` is in a file named `{}`",
                        project.value, f.path
                    ),
                )
                .with_help(format!("rename the file to `grants/{}.yml`", project.value)),
            );
        }
        if !suffix.is_empty() && project.ends_with(suffix) {
            diags.push(
                Diagnostic::error(
                    "project-suffix",
                    file,
                    project.span,
                    format!(
                        "project `{}` ends with the repository suffix `{suffix}`",
                        project.value
                    ),
                )
                .with_help(format!(
                    "write `{}`; gatehouse adds `{suffix}` to find the repository",
                    project.trim_end_matches(suffix)
                )),
            );
        }
        if f.value.grants.is_empty() {
            diags.push(
                Diagnostic::warning(
                    "empty-grant-file",
                    file,
                    project.span,
                    format!("project `{}` holds no grants", project.value),
                )
                .with_help("delete the file"),
            );
        }
    }
}

/// One grant file per project. Project names compare case-insensitively, so two files whose
/// projects differ only in case are one project held twice: `apply` edits one of them, and the
/// other shadows it and outlives its revocation. Reported at every such file, so that the pull
/// request that adds either sees it. (A file whose name differs from its `project` only in case
/// is a `project-name` error: the name must spell the project exactly.)
pub(super) fn validate_duplicate_projects(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, f) in ctx.repo.grants.iter().enumerate() {
        if validate_project_name(&f.value.project).is_ok() {
            by_key
                .entry(project_key(&f.value.project))
                .or_default()
                .push(i);
        }
    }
    for (i, f) in ctx.repo.grants.iter().enumerate() {
        let Some(group) = by_key
            .get(&project_key(&f.value.project))
            .filter(|g| g.len() > 1 && g.contains(&i))
        else {
            continue;
        };
        let others: Vec<String> = group
            .iter()
            .filter(|&&o| o != i)
            .map(|&o| {
                let other = &ctx.repo.grants[o];
                format!("`{}` in {}", other.value.project.value, other.path)
            })
            .collect();
        diags.push(
            Diagnostic::error(
                "duplicate-project",
                f.path.as_str(),
                f.value.project.span,
                format!(
                    "project `{}` is the same project as {}: project names compare case-insensitively",
                    f.value.project.value,
                    others.join(" and ")
                ),
            )
            .with_help(
                "keep one file, `grants/<project>.yml` in the project's own spelling: move the \
                 other's grants into it and delete the other",
            ),
        );
    }
}

/// Every grant names a resource that exists.
pub(super) fn validate_grant_resources(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    for f in &ctx.repo.grants {
        for g in &f.value.grants {
            if !ctx.index.resources.contains_key(g.resource.as_str()) {
                diags.push(unknown_resource(ctx, f.path.as_str(), &g.resource));
            }
        }
    }
}

pub(super) fn unknown_resource(
    ctx: &CheckContext<'_>,
    file: &str,
    name: &crate::Spanned<String>,
) -> Diagnostic {
    let wanted = name.to_ascii_lowercase();
    let hint = ctx
        .index
        .resources
        .keys()
        .filter(|k| close(&k.to_ascii_lowercase(), &wanted))
        .min_by_key(|k| {
            (
                strsim::damerau_levenshtein(&k.to_ascii_lowercase(), &wanted),
                **k,
            )
        });
    Diagnostic::error(
        "unknown-resource",
        file,
        name.span,
        format!("resource `{}` does not exist", name.value),
    )
    .with_help(match hint {
        Some(h) => format!("did you mean `{h}`? Resources are defined in resources/"),
        None => "name a resource defined in resources/".to_string(),
    })
}

/// Close enough to be a typo: at most two edits (a transposition counts as one).
fn close(a: &str, b: &str) -> bool {
    strsim::damerau_levenshtein(a, b) <= 2.min(a.len().max(b.len()) / 3)
}

/// `expires` after `granted`, within the resource's `max_duration`, and not already past.
pub(super) fn validate_grant_dates(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    for f in &ctx.repo.grants {
        let file = f.path.as_str();
        for g in &f.value.grants {
            let max = ctx
                .index
                .resources
                .get(g.resource.as_str())
                .and_then(|r| r.value.max_duration.as_ref());
            let Some(expires) = &g.expires else {
                if let Some(max) = max {
                    diags.push(
                        Diagnostic::error(
                            "no-expiry",
                            file,
                            g.resource.span,
                            format!(
                                "grant of `{}` has no `expires`, but the resource's grants last at most {}",
                                g.resource.value, max.value
                            ),
                        )
                        .with_help(match max.value.end_from(g.granted.value.0) {
                            Some(end) => format!("add `expires: {end}` or earlier"),
                            None => "add `expires: YYYY-MM-DD`".to_string(),
                        }),
                    );
                }
                continue;
            };
            if expires.value < g.granted.value {
                diags.push(
                    Diagnostic::error(
                        "expires-before-granted",
                        file,
                        expires.span,
                        format!(
                            "grant of `{}` expires on {}, before it was granted on {}",
                            g.resource.value, expires.value, g.granted.value
                        ),
                    )
                    .with_help("correct one of the two dates"),
                );
                continue;
            }
            if let Some(max) = max
                && let Some(limit) = max.value.end_from(g.granted.value.0)
                && expires.value.0 > limit
            {
                diags.push(
                    Diagnostic::error(
                        "expires-beyond-max",
                        file,
                        expires.span,
                        format!(
                            "grant of `{}` expires on {}, beyond the resource's max_duration of {} (at most {limit})",
                            g.resource.value, expires.value, max.value
                        ),
                    )
                    .with_help(format!("set `expires: {limit}` or earlier; renew it when it ends")),
                );
            }
            if expires.value.0 < ctx.today {
                diags.push(
                    Diagnostic::warning(
                        "expired",
                        file,
                        expires.span,
                        format!(
                            "grant of `{}` expired on {}",
                            g.resource.value, expires.value
                        ),
                    )
                    .with_help("`gatehouse expire` revokes it; file a renew request to keep it"),
                );
            }
        }
    }
}

/// A project holds each resource at most once. Within one file: the same grant in two files
/// of one project is part of `duplicate-project`.
pub(super) fn validate_duplicate_grants(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    for f in &ctx.repo.grants {
        let key_project = f.value.project.as_str();
        let Some(held) = ctx.index.grants.get(&project_key(key_project)) else {
            continue;
        };
        for g in &f.value.grants {
            let Some(all) = held.get(g.resource.as_str()) else {
                continue;
            };
            // Report every grant after the first, pointing at the first.
            let Some(first) = all.iter().find(|(file, _)| *file == f.path) else {
                continue;
            };
            if std::ptr::eq(first.1, g) {
                continue;
            }
            diags.push(
                Diagnostic::error(
                    "duplicate-grant",
                    f.path.as_str(),
                    g.resource.span,
                    format!(
                        "project `{key_project}` is granted `{}` more than once (first at {}:{})",
                        g.resource.value, first.0, first.1.resource.span.line
                    ),
                )
                .with_help("keep one grant; merge their settings"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn typo_distance() {
        assert!(super::close("cirun-gpu", "cirun-gpx"));
        assert!(super::close("cirun-gpu", "cirun-gp"));
        assert!(super::close("gpu-large", "gpu-lrage"));
        assert!(!super::close("cirun-gpu", "cirun-cpu-large"));
        assert!(!super::close("ab", "cd"));
    }
}
