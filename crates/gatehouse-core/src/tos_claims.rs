//! Terms of service accepted with a request (`accept_tos` in a request file): onboarding in one
//! pull request. The claim counts only when it names the request's pull request's author, by
//! the numeric account id GitHub gives for that author (logins can be renamed, and anyone can
//! type anyone's login); then `apply` adds the author to `people/tos.yml` in the ledger commit
//! that consumes the request. Pure: the caller reads the author from GitHub.

use jiff::civil::Date;
use serde::Serialize;

use crate::duration::Day;
use crate::model::{AccountId, TosClaim, TosEntry, TosList};
use crate::repo::Repo;
use crate::span::Spanned;

/// Someone who accepts the terms of service through a request, as `apply` records them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TosAcceptance {
    /// The login GitHub gives for the pull request's author now.
    pub github: String,
    pub id: i64,
    pub accepted: String,
    /// The request's pull request (or file).
    pub request: String,
}

/// Whether `claim` may be granted: `author` is the pull request's author as GitHub gives it
/// (login, account id); `None` when the request has none (a direct commit). `Err` says why
/// the request is held back.
pub fn judge_claim(claim: &TosClaim, author: Option<&(String, i64)>) -> Result<(), String> {
    let named = format!("`{}` (id {})", claim.github.value, claim.id.value);
    match author {
        None => Err(format!(
            "it accepts the terms of service for {named}, but it came without a pull request whose author GitHub can name; only the person themself, opening the request's pull request, can accept them"
        )),
        Some((login, id)) if *id != claim.id.value.0 => Err(format!(
            "it accepts the terms of service for {named}, but its pull request was opened by `{login}` (id {id}); only the person themself can accept the terms: remove `accept_tos`, or have {} open the request",
            claim.github.value
        )),
        Some(_) => Ok(()),
    }
}

/// The acceptance the request's pull request's `author` makes (their login as GitHub gives it
/// now; the id is the claim's, which [`judge_claim`] matched).
pub fn acceptance(author: &(String, i64), today: Date, request: &str) -> TosAcceptance {
    TosAcceptance {
        github: author.0.clone(),
        id: author.1,
        accepted: today.to_string(),
        request: request.to_string(),
    }
}

/// `people/tos.yml` after `accepted`: the entries there now, then each new id once (an id
/// listed already changes nothing). `None` when nothing is new.
pub fn tos_after(repo: &Repo, accepted: &[TosAcceptance]) -> Option<TosList> {
    let mut list: TosList = repo
        .tos
        .as_ref()
        .map(|t| t.value.clone())
        .unwrap_or_default();
    let before = list.len();
    for a in accepted {
        if list.iter().any(|e| e.id.value.0 == a.id) {
            continue;
        }
        list.push(TosEntry {
            github: Spanned::unplaced(a.github.clone()),
            id: Spanned::unplaced(AccountId(a.id)),
            accepted: a.accepted.parse::<Day>().ok().map(Spanned::unplaced),
        });
    }
    (list.len() > before).then_some(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(login: &str, id: i64) -> TosClaim {
        TosClaim {
            github: Spanned::unplaced(login.into()),
            id: Spanned::unplaced(AccountId(id)),
        }
    }

    #[test]
    fn a_claim_counts_only_for_the_pull_requests_author_by_id() {
        let author = ("wolfv".to_string(), 885054);
        assert_eq!(judge_claim(&claim("wolfv", 885054), Some(&author)), Ok(()));
        // The login in another case, or renamed since: the id is what counts.
        assert_eq!(
            judge_claim(&claim("WolfV-old", 885054), Some(&author)),
            Ok(())
        );
        let why = judge_claim(&claim("isuruf", 5234427), Some(&author)).unwrap_err();
        assert!(
            why.contains(
                "for `isuruf` (id 5234427), but its pull request was opened by `wolfv` (id 885054)"
            ),
            "{why}"
        );
        // Someone's login with another id is someone else.
        assert!(judge_claim(&claim("wolfv", 1), Some(&author)).is_err());
        let why = judge_claim(&claim("wolfv", 885054), None).unwrap_err();
        assert!(why.contains("without a pull request"), "{why}");
    }

    #[test]
    fn an_acceptance_adds_each_new_id_once() {
        let repo = Repo::from_sources([("people/tos.yml", "- { github: isuruf, id: 5234427 }\n")]);
        let day = jiff::civil::date(2026, 11, 28);
        let new = acceptance(&("wolfv".into(), 885054), day, "https://x/pull/1");
        let again = acceptance(&("wolfv".into(), 885054), day, "https://x/pull/2");
        let known = acceptance(&("isuruf".into(), 5234427), day, "https://x/pull/3");
        let list = tos_after(&repo, &[new, again, known.clone()]).unwrap();
        let seen: Vec<(&str, i64, Option<String>)> = list
            .iter()
            .map(|e| {
                (
                    e.github.as_str(),
                    e.id.value.0,
                    e.accepted.as_ref().map(|d| d.value.0.to_string()),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("isuruf", 5234427, None),
                ("wolfv", 885054, Some("2026-11-28".to_string()))
            ]
        );
        assert!(tos_after(&repo, &[known]).is_none());
    }
}
