//! People named in user lists (a grant's `users`, a request's `users`) are identified by
//! numeric account id: an entry must write its id out or be a login that `people/tos.yml`
//! resolves ([`crate::Repo::account_of`]). An entry nothing resolves would match nobody.

use super::CheckContext;
use crate::diag::{Diagnostic, Diagnostics};
use crate::model::GrantUser;
use crate::span::Spanned;

/// Every user-list entry resolves to one account id.
pub(super) fn validate_user_ids(ctx: &CheckContext<'_>, diags: &mut Diagnostics) {
    let grants = ctx.repo.grants.iter().flat_map(|f| {
        f.value
            .grants
            .iter()
            .filter_map(|g| g.users.as_ref())
            .flat_map(|u| u.users.iter())
            .map(move |u| (f.path.as_str(), u))
    });
    let requests = ctx.repo.requests.iter().flat_map(|e| {
        e.value
            .request
            .iter()
            .filter_map(|r| r.users.as_ref())
            .flatten()
            .map(move |u| (e.path.as_str(), u))
    });
    for (file, user) in grants.chain(requests) {
        check_entry(ctx, file, user, diags);
    }
}

fn check_entry(
    ctx: &CheckContext<'_>,
    file: &str,
    user: &Spanned<GrantUser>,
    diags: &mut Diagnostics,
) {
    let login = user.login();
    let listed = ctx
        .repo
        .tos
        .iter()
        .flat_map(|t| t.value.iter())
        .find(|e| e.github.eq_ignore_ascii_case(login));
    match (&user.value, listed) {
        (GrantUser::Login(_), None) => diags.push(
            Diagnostic::error(
                "unresolved-user",
                file,
                user.span,
                format!(
                    "`{login}` has no account id: people are matched by id, and people/tos.yml does not list this login"
                ),
            )
            .with_help(format!(
                "write `{{ github: {login}, id: <numeric id> }}` (https://api.github.com/users/{login} shows the id), or add the person to people/tos.yml"
            )),
        ),
        (GrantUser::Person { id, .. }, Some(entry)) if entry.id.value.0 != id.value.0 => {
            diags.push(
                Diagnostic::warning(
                    "user-id-mismatch",
                    file,
                    id.span,
                    format!(
                        "`{login}` is written with id {}, but people/tos.yml gives the login id {}",
                        id.value, entry.id.value
                    ),
                )
                .with_help(
                    "one of them names someone else (a renamed or reused login): check the id at https://api.github.com/users/LOGIN",
                ),
            )
        }
        _ => {}
    }
}
