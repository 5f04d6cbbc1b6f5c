use super::CheckContext;
use crate::diag::{Diagnostic, Diagnostics};
use crate::model::Reviewers;
use crate::repo::SETTINGS_FILE;
use crate::span::Span;

/// The most days `audit --db` may look back at run approvals (ten years).
const MAX_AUDIT_DAYS: u32 = 3650;

/// The most weeks an outlier's median may span (a year); see also [`crate::outliers`].
const MAX_OUTLIER_WEEKS: u32 = crate::outliers::MAX_WEEKS;

pub(super) fn validate_settings(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let Some(settings) = &ctx.repo.settings else {
        // A broken gatehouse.yml is already reported by the loader.
        if !ctx.repo.load_errors.iter().any(|d| d.file == SETTINGS_FILE) {
            diags.push(
                Diagnostic::error(
                    "no-settings",
                    SETTINGS_FILE,
                    Span::UNKNOWN,
                    "the repository has no gatehouse.yml",
                )
                .with_help("run `gatehouse init` to create one, or pass the access repository's top folder"),
            );
        }
        return;
    };
    let file = settings.path.as_str();
    let s = &settings.value;
    if s.org.trim().is_empty() {
        diags.push(Diagnostic::error(
            "settings",
            file,
            s.org.span,
            "`org` is empty",
        ));
    }
    validate_reviewers(file, &s.reviewers, s.org.span, diags);
    let approvals = &s.run_approvals;
    let approvals_wrong = if approvals.phrase.trim().is_empty()
        || approvals.phrase.chars().any(char::is_control)
    {
        Some("`run_approvals.phrase` is empty or spans lines, so no comment could approve a run")
    } else if approvals.hours == 0 {
        Some("`run_approvals.hours` is 0: an approval would never be in force")
    } else if approvals.audit.days == 0 || approvals.audit.days > MAX_AUDIT_DAYS {
        Some("`run_approvals.audit.days` must be from 1 to 3650: the days `audit --db` looks back")
    } else if approvals.audit.many_pulls == 0 || approvals.audit.factor == 0 {
        Some(
            "`run_approvals.audit.many_pulls` and `factor` must be at least 1: at 0 every approver and every approved job would be reported",
        )
    } else {
        None
    };
    if let Some(what) = approvals_wrong {
        diags.push(
            Diagnostic::error("settings", file, s.org.span, what).with_help(
                "leave `run_approvals` out for the defaults (`/gatehouse run`, 3 runs, 24 hours; audit: 90 days, 5 pull requests, 3 times the median, 30 minutes, 5 jobs)",
            ),
        );
    }
    let outliers = &s.guard.outliers;
    let outliers_wrong = if outliers.factor == 0 {
        Some(
            "`guard.outliers.factor` is 0: every project that ran `min_minutes` this week would be flagged",
        )
    } else if outliers.weeks == 0 || outliers.weeks > MAX_OUTLIER_WEEKS {
        Some(
            "`guard.outliers.weeks` must be from 1 to 52: the weeks whose median a project's week is compared with",
        )
    } else {
        None
    };
    if let Some(what) = outliers_wrong {
        diags.push(
            Diagnostic::error("settings", file, s.org.span, what)
                .with_help("leave `guard.outliers` out for the defaults (4 times the median of 8 weeks, at least 60 minutes)"),
        );
    }
    for bot in &s.bots {
        if bot.value.id().is_none() {
            diags.push(
                Diagnostic::error(
                    "settings",
                    file,
                    bot.span,
                    format!(
                        "bot `{}` is named without its numeric account id",
                        bot.value.login()
                    ),
                )
                .with_help(format!(
                    "write `{{ github: {}, id: N }}`: a bot is known by its account id, which a renamed login keeps",
                    bot.value.login()
                )),
            );
        }
    }
    // Each provider's fields, by kind, are the type's (`model::ProviderSettings`): a field
    // missing or foreign to the kind is refused where it stands when the file is read.
}

/// Shared by `gatehouse.yml` and resources that override the reviewers.
pub(super) fn validate_reviewers(
    file: &str,
    reviewers: &Reviewers,
    fallback: Span,
    diags: &mut Diagnostics,
) {
    let span = if reviewers.min_approvals.span.is_known() {
        reviewers.min_approvals.span
    } else {
        fallback
    };
    if reviewers.teams.is_empty() && reviewers.users.is_empty() {
        diags.push(
            Diagnostic::error(
                "reviewers",
                file,
                span,
                "no one can approve: reviewers name no team and no user",
            )
            .with_help("add `teams: [<team slug>]` or `users: [<login>]`"),
        );
    }
    if reviewers.min_approvals.value == 0 {
        diags.push(
            Diagnostic::error(
                "reviewers",
                file,
                span,
                "`min_approvals: 0` would let requests through with no review",
            )
            .with_help("set `min_approvals` to 1 or more"),
        );
    }
}
