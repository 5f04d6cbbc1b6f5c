use std::collections::HashMap;

use super::CheckContext;
use crate::diag::{Diagnostic, Diagnostics};
use crate::names::login_key;

/// Logins unique (case-insensitively), ids unique and positive.
pub(super) fn validate_tos(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let Some(tos) = &ctx.repo.tos else { return };
    let file = tos.path.as_str();
    let mut logins: HashMap<String, u32> = HashMap::with_capacity(tos.value.len());
    let mut ids: HashMap<i64, u32> = HashMap::with_capacity(tos.value.len());
    for e in &tos.value {
        if e.id.value.0 <= 0 {
            diags.push(
                Diagnostic::error(
                    "tos-id",
                    file,
                    e.id.span,
                    format!(
                        "`{}` has id {}; GitHub account ids are positive",
                        e.github.value, e.id.value
                    ),
                )
                .with_help(format!(
                    "look the id up at https://api.github.com/users/{}",
                    e.github.value
                )),
            );
        }
        if let Some(line) = logins.insert(login_key(&e.github), e.github.span.line) {
            diags.push(
                Diagnostic::error(
                    "tos-duplicate-login",
                    file,
                    e.github.span,
                    format!(
                        "login `{}` is already listed on line {line} (logins compare case-insensitively)",
                        e.github.value
                    ),
                )
                .with_help("keep one entry per person"),
            );
        }
        if let Some(line) = ids.insert(e.id.value.0, e.id.span.line) {
            diags.push(
                Diagnostic::error(
                    "tos-duplicate-id",
                    file,
                    e.id.span,
                    format!("id {} is already listed on line {line}", e.id.value),
                )
                .with_help("one GitHub account is one person; keep one entry (its login may have been renamed)"),
            );
        }
    }
}
