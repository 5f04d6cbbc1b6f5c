use super::CheckContext;
use super::grants::unknown_resource;
use crate::diag::{Diagnostic, Diagnostics};
use crate::model::{RequestAction, RequestForm};
use crate::names::{project_key, validate_project_name};
use crate::repo::{Loaded, RequestEntry};

fn requests<'a>(
    ctx: &'a CheckContext<'_>,
) -> impl Iterator<Item = (&'a Loaded<RequestEntry>, &'a crate::model::Request)> {
    ctx.repo
        .requests
        .iter()
        .filter_map(|e| e.value.request.as_ref().map(|r| (e, r)))
}

/// Every project a request names is a valid name, listed once (in any case: names compare
/// case-insensitively).
pub(super) fn validate_request_projects(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    for (entry, req) in requests(ctx) {
        let file = entry.path.as_str();
        let mut seen = std::collections::HashSet::new();
        for p in &req.projects {
            if let Err(e) = validate_project_name(p) {
                diags.push(
                    Diagnostic::error(
                        "project-name",
                        file,
                        p.span,
                        format!("project name `{}` {e}", p.value),
                    )
                    .with_help("project names match ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"),
                );
            } else if !seen.insert(project_key(p)) {
                diags.push(
                    Diagnostic::warning(
                        "duplicate-project",
                        file,
                        p.span,
                        format!(
                            "project `{}` is listed twice (project names compare case-insensitively)",
                            p.value
                        ),
                    )
                    .with_help("list it once"),
                );
            }
        }
        if req.projects.is_empty() {
            diags.push(
                Diagnostic::error(
                    "invalid-request",
                    file,
                    req.action.span,
                    "the request names no projects",
                )
                .with_help("list at least one project"),
            );
        }
    }
}

/// Every resource a request names exists.
pub(super) fn validate_request_resources(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    for (entry, req) in requests(ctx) {
        for r in &req.resources {
            if !ctx.index.resources.contains_key(r.as_str()) {
                diags.push(unknown_resource(ctx, entry.path.as_str(), r));
            }
        }
    }
}

/// Revoke and renew need an existing grant; a grant of something already held does nothing.
pub(super) fn validate_request_targets(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    for (entry, req) in requests(ctx) {
        let file = entry.path.as_str();
        for p in &req.projects {
            if validate_project_name(p).is_err() {
                continue;
            }
            for r in &req.resources {
                if !ctx.index.resources.contains_key(r.as_str()) {
                    continue;
                }
                let held = ctx.index.has_grant(p, r);
                match (req.action.value, held) {
                    (RequestAction::Grant, true) => diags.push(
                        Diagnostic::warning(
                            "already-granted",
                            file,
                            p.span,
                            format!(
                                "`{}` already holds `{}`; this request changes nothing",
                                p.value, r.value
                            ),
                        )
                        .with_help("to extend it, file a renew request (`action: renew`)"),
                    ),
                    (RequestAction::Revoke | RequestAction::Renew, false) => {
                        let verb = if req.action.value == RequestAction::Revoke {
                            "revoke"
                        } else {
                            "renew"
                        };
                        diags.push(
                            Diagnostic::error(
                                "no-such-grant",
                                file,
                                p.span,
                                format!("cannot {verb} `{}` for `{}`: the project does not hold it", r.value, p.value),
                            )
                            .with_help(format!("check the project name against grants/; grants/{}.yml lists what it holds", p.value)),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A request's `expires` is in the future and within each resource's `max_duration`.
pub(super) fn validate_request_dates(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    for (entry, req) in requests(ctx) {
        let Some(expires) = &req.expires else {
            continue;
        };
        let file = entry.path.as_str();
        if req.action.value == RequestAction::Revoke {
            diags.push(
                Diagnostic::warning(
                    "ignored-field",
                    file,
                    expires.span,
                    "`expires` has no meaning on a revoke request",
                )
                .with_help("remove it"),
            );
            continue;
        }
        if expires.value.0 <= ctx.today {
            diags.push(
                Diagnostic::error(
                    "expires-in-past",
                    file,
                    expires.span,
                    format!(
                        "the request would expire on {}, which is not in the future",
                        expires.value
                    ),
                )
                .with_help(
                    "pick a later date, or leave `expires` out to get the resource's default",
                ),
            );
            continue;
        }
        for r in &req.resources {
            let Some(max) = ctx
                .index
                .resources
                .get(r.as_str())
                .and_then(|res| res.value.max_duration.as_ref())
            else {
                continue;
            };
            if let Some(limit) = max.value.end_from(ctx.today)
                && expires.value.0 > limit
            {
                diags.push(
                    Diagnostic::error(
                        "expires-beyond-max",
                        file,
                        expires.span,
                        format!(
                            "`{}` is granted for at most {}; {} is past {limit}",
                            r.value, max.value, expires.value
                        ),
                    )
                    .with_help(format!(
                        "set `expires: {limit}` or earlier, or leave it out"
                    )),
                );
            }
        }
    }
}

/// conda-forge's admin-requests rules, so that files written for the old process keep working.
pub(super) fn validate_admin_requests(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let suffix = ctx
        .repo
        .settings
        .as_ref()
        .map(|s| s.value.repo_suffix.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("-feedstock");
    for (entry, req) in requests(ctx) {
        let file = entry.path.as_str();
        let RequestForm::AdminRequests { action } = &req.form else {
            continue;
        };
        let raw = &entry.value.file;
        if action.as_str() == "cirun" && raw.resources.as_ref().is_none_or(|r| r.is_empty()) {
            diags.push(
                Diagnostic::error(
                    "admin-requests",
                    file,
                    action.span,
                    "`action: cirun` needs `resources`: which runners are requested",
                )
                .with_help("add `resources: [<runner name>]`, e.g. cirun-openstack-gpu-large"),
            );
        }
        if action.as_str() == "travis"
            && let Some(revoke) = raw.revoke.as_ref().filter(|r| r.value)
        {
            diags.push(
                Diagnostic::error(
                    "admin-requests",
                    file,
                    revoke.span,
                    "`action: travis` cannot revoke",
                )
                .with_help(
                    "Travis access is removed by the Travis administrators; drop `revoke: true`",
                ),
            );
        }
        for r in raw.resources.iter().flatten() {
            let Some(res) = ctx.index.resources.get(r.as_str()) else {
                continue; // unknown resources are reported on their own
            };
            let provider = res.value.provider.as_str();
            if !action_serves(ctx, action.as_str(), provider) {
                diags.push(
                    Diagnostic::error(
                        "admin-requests",
                        file,
                        r.span,
                        format!(
                            "`action: {}` cannot ask for `{}`: provider `{provider}` serves it",
                            action.value, r.value
                        ),
                    )
                    .with_help(format!(
                        "ask for it in a request of its own provider's action, or name a resource of `{}`",
                        action.value
                    )),
                );
            }
        }
        for p in &req.projects {
            if p.ends_with(suffix) && p.len() > suffix.len() {
                diags.push(
                    Diagnostic::error(
                        "admin-requests",
                        file,
                        p.span,
                        format!(
                            "`feedstocks` lists `{}` with its `{suffix}` suffix",
                            p.value
                        ),
                    )
                    .with_help(format!(
                        "write the name without the suffix: `{}`",
                        p.trim_end_matches(suffix)
                    )),
                );
            }
        }
    }
}

/// Whether admin-requests' `action` asks for resources of `provider`: `cirun` for the Cirun
/// providers, every other action for the provider of its own name (`cirrus_runners` and
/// `cirrus-runners` alike).
fn action_serves(ctx: &CheckContext<'_>, action: &str, provider: &str) -> bool {
    let kind = ctx
        .repo
        .settings
        .as_ref()
        .and_then(|s| s.value.providers.get(provider))
        .map(|p| p.kind());
    let same = |a: &str, b: &str| {
        a.replace('_', "-")
            .eq_ignore_ascii_case(&b.replace('_', "-"))
    };
    match action {
        "cirun" => kind == Some(crate::model::ProviderKind::Cirun) || same(provider, "cirun"),
        _ => same(provider, action),
    }
}

/// A request's terms-of-service acceptance (`accept_tos`): a positive account id, consistent
/// with `people/tos.yml`, on a request that grants or renews. (Whether it names the request's
/// author is `apply`'s to verify, with GitHub.)
pub(super) fn validate_request_tos(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let listed = ctx
        .repo
        .tos
        .as_ref()
        .map(|t| t.value.as_slice())
        .unwrap_or_default();
    for (entry, req) in requests(ctx) {
        let Some(claim) = &req.accept_tos else {
            continue;
        };
        let file = entry.path.as_str();
        let (login, id) = (&claim.github.value, claim.id.value.0);
        if id <= 0 {
            diags.push(
                Diagnostic::error(
                    "request-tos-id",
                    file,
                    claim.id.span,
                    format!(
                        "`accept_tos` gives `{login}` the id {id}; GitHub account ids are positive"
                    ),
                )
                .with_help(format!(
                    "your account id is at https://api.github.com/users/{login} (`id`)"
                )),
            );
        }
        if req.action.value == RequestAction::Revoke {
            diags.push(
                Diagnostic::error(
                    "request-tos-revoke",
                    file,
                    claim.github.span,
                    "a request that revokes cannot accept the terms of service",
                )
                .with_help("remove `accept_tos`, or accept the terms with a request that grants"),
            );
        }
        if let Some(e) = listed
            .iter()
            .find(|e| crate::names::login_key(&e.github) == crate::names::login_key(login))
            .filter(|e| e.id.value.0 != id)
        {
            diags.push(
                Diagnostic::error(
                    "request-tos-mismatch",
                    file,
                    claim.id.span,
                    format!(
                        "`accept_tos` gives `{login}` the id {id}, and people/tos.yml lists `{}` with id {}",
                        e.github.value, e.id.value
                    ),
                )
                .with_help("the numeric id is what identifies a person; give your own account's id"),
            );
        } else if listed.iter().any(|e| e.id.value.0 == id) {
            diags.push(
                Diagnostic::warning(
                    "request-tos-known",
                    file,
                    claim.github.span,
                    format!("`{login}` (id {id}) accepted the terms of service already"),
                )
                .with_help("`accept_tos` can be left out"),
            );
        }
    }
}
