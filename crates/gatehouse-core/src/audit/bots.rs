//! What `audit` says about bots: every resource that trusts them (`bots: trusted`), since a
//! bot's push to a project's default branch then uses the resource with no person's role
//! judged, and every bot `gatehouse.yml` names.

use crate::diag::Diagnostic;
use crate::repo::Repo;

/// One warning per resource with `bots: trusted`, naming the bots it trusts.
pub fn trusted_bots(repo: &Repo) -> Vec<Diagnostic> {
    let bots: Vec<String> = repo
        .settings
        .iter()
        .flat_map(|s| s.value.bots.iter())
        .map(|b| match b.value.id() {
            Some(id) => format!("`{}` ({id})", b.value.login()),
            None => format!("`{}` (no account id: matches nobody)", b.value.login()),
        })
        .collect();
    let named = if bots.is_empty() {
        "no bot is named in gatehouse.yml yet".to_string()
    } else {
        format!("the bots of gatehouse.yml: {}", bots.join(", "))
    };
    repo.resources
        .iter()
        .filter_map(|r| {
            let trust = r.value.bots.as_ref()?;
            Some(
                Diagnostic::warning(
                    "audit-trusted-bots",
                    r.path.as_str(),
                    trust.span,
                    format!(
                        "`{}` trusts bots: their pushes to a project's own default branch run on it with no role judged ({named})",
                        r.value.name.value
                    ),
                )
                .with_help(
                    "remove `bots: trusted` to have bots' runs approved commit by commit (`/gatehouse run <sha>`)",
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_that_trusts_bots_is_listed_with_the_bots() {
        let repo = Repo::from_sources([
            (
                "gatehouse.yml",
                "org: cf\nreviewers: { teams: [core] }\nbots:\n  - { github: regro-cf-autotick-bot, id: 36490558 }\n",
            ),
            (
                "resources/gpu.yml",
                "name: gpu\nprovider: cirun\nlabels: [gpu]\nbots: trusted\n",
            ),
            (
                "resources/cpu.yml",
                "name: cpu\nprovider: cirun\nlabels: [cpu]\n",
            ),
        ]);
        assert!(repo.load_errors.is_empty(), "{:?}", repo.load_errors);
        let found = trusted_bots(&repo);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            (found[0].code, found[0].file.as_str(), found[0].span.line),
            ("audit-trusted-bots", "resources/gpu.yml", 4)
        );
        assert!(
            found[0]
                .message
                .contains("`regro-cf-autotick-bot` (36490558)"),
            "{}",
            found[0].message
        );
    }
}
