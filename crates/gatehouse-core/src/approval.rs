//! Who must approve a pull request on the access repository, and whether its reviews do:
//! the approval rules, pure. The command line's `gatehouse approvals` (and `apply`'s check of
//! where a request came from) fetch the pull request's files, reviews and team members from
//! GitHub and ask [`requirements`] and [`judge`].
//!
//! A request file needs the reviewers of every resource it names (the resource's own
//! `reviewers`, or gatehouse.yml's); any other file (grants/, resources/, gatehouse.yml,
//! people/, workflows, a request that cannot be read) changes the rules or the ledger directly
//! and needs the organisation-level reviewers (gatehouse.yml's). One approval counts only when
//! it is the reviewer's latest word, is on the head commit, is not by the pull request's author
//! or a committer, and comes from someone in every one of those groups; the pull request needs
//! the largest `min_approvals` among them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;

use crate::Repo;
use crate::model::{GrantUser, Reviewers};
use crate::names::login_key;

/// The rules cannot be read: there is nothing to judge approvals against.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("the access repository has no gatehouse.yml; it names the reviewers")]
    NoSettings,
}

/// One review, as an item of GitHub's `pulls/list-reviews` gives it.
#[derive(Clone, Debug, Deserialize)]
pub struct Review {
    pub user: Option<ReviewUser>,
    pub state: String,
    #[serde(default)]
    pub commit_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ReviewUser {
    pub login: String,
    #[serde(default)]
    pub id: Option<i64>,
}

/// One group that must approve: a resource's reviewers, or the organisation's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// `resource <name>` or `organisation`.
    pub group: String,
    /// Why this group is asked: the files that need it.
    pub because: Vec<String>,
    pub teams: Vec<String>,
    /// The `users:` entries, each with the account id `people/tos.yml` gives it (`None`: it
    /// matches nobody, since a login can be renamed and registered again by anyone).
    pub users: Vec<Ident>,
    pub min_approvals: u32,
}

/// A person as GitHub names them: the login (lower-cased) and the numeric account id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub key: String,
    pub id: Option<i64>,
}

impl Ident {
    pub fn new(login: &str, id: Option<i64>) -> Self {
        Ident {
            key: login_key(login),
            id,
        }
    }

    /// The same account: by id when both ids are known, else by login.
    pub fn same(&self, other: &Ident) -> bool {
        match (self.id, other.id) {
            (Some(a), Some(b)) => a == b,
            _ => self.key == other.key,
        }
    }
}

/// Team slug -> its members.
pub type Members = HashMap<String, Vec<Ident>>;

/// The group of gatehouse.yml's reviewers.
pub const ORG_GROUP: &str = "organisation";

impl Requirement {
    fn new(group: String, reviewers: &Reviewers, rules: &Repo) -> Self {
        Requirement {
            group,
            because: Vec::new(),
            teams: reviewers.teams.iter().map(|t| t.value.clone()).collect(),
            users: reviewers
                .users
                .iter()
                .map(|u| Ident::new(u, rules.account_of(&GrantUser::Login(u.value.clone()))))
                .collect(),
            min_approvals: reviewers.min_approvals.value,
        }
    }

    /// Whether `who` is one of these reviewers: a `users:` entry by account id, or a member
    /// of one of the teams (by id, as GitHub lists them).
    pub fn admits(&self, who: &Ident, members: &Members) -> bool {
        self.users
            .iter()
            .any(|u| u.id.is_some() && who.id.is_some() && u.id == who.id)
            || self.teams.iter().any(|t| {
                members
                    .get(t)
                    .is_some_and(|m| m.iter().any(|p| p.same(who)))
            })
    }

    /// `@org/core or @wolfv`.
    pub fn who(&self, org: &str) -> String {
        let mut who: Vec<String> = self.teams.iter().map(|t| format!("@{org}/{t}")).collect();
        who.extend(self.users.iter().map(|u| match u.id {
            Some(_) => format!("@{}", u.key),
            None => format!(
                "@{} (no account id in people/tos.yml: counts for nobody)",
                u.key
            ),
        }));
        if who.is_empty() {
            "nobody (no reviewers are configured)".into()
        } else {
            who.join(" or ")
        }
    }
}

/// The groups that must approve a pull request that changes `changed` (paths, old names of
/// renamed files included). Requests are read from `head`, reviewers from `rules`.
pub fn requirements(
    head: &Repo,
    rules: &Repo,
    changed: &[String],
) -> Result<Vec<Requirement>, ApprovalError> {
    let settings = &rules
        .settings
        .as_ref()
        .ok_or(ApprovalError::NoSettings)?
        .value;
    let mut needs: BTreeMap<String, Requirement> = BTreeMap::new();
    let mut need = |group: String, reviewers: &Reviewers, because: String| {
        let r = needs
            .entry(group.clone())
            .or_insert_with(|| Requirement::new(group, reviewers, rules));
        if !r.because.contains(&because) {
            r.because.push(because);
        }
    };
    let org = |path: &str, why: &str| (ORG_GROUP.to_string(), format!("`{path}` {why}"));
    let mut seen = BTreeSet::new();
    for path in changed {
        if !seen.insert(path) {
            continue;
        }
        let request = head
            .requests
            .iter()
            .find(|r| r.path == *path)
            .and_then(|r| r.value.request.as_ref());
        let (group, because) = match request {
            Some(req) if !req.resources.is_empty() => {
                let mut unknown = None;
                for res in &req.resources {
                    match rules.resource(res) {
                        Some(r) => need(
                            format!("resource {}", res.value),
                            r.reviewers.as_ref().unwrap_or(&settings.reviewers),
                            format!("`{path}`"),
                        ),
                        None => unknown = Some(res.value.clone()),
                    }
                }
                match unknown {
                    None => continue,
                    Some(u) => org(path, &format!("names `{u}`, which is not a resource")),
                }
            }
            Some(_) => org(path, "names no resource"),
            None if path.starts_with("requests/") => {
                org(path, "is not a request that can be read (or is deleted)")
            }
            None if path.starts_with("grants/") => org(path, "edits the ledger directly"),
            None if path.starts_with("resources/") || path == "gatehouse.yml" => {
                org(path, "changes the rules")
            }
            None => org(path, "is not a request"),
        };
        need(group, &settings.reviewers, because);
    }
    if seen.is_empty() {
        need(
            ORG_GROUP.into(),
            &settings.reviewers,
            "the pull request changes no file".into(),
        );
    }
    Ok(needs.into_values().collect())
}

/// One reviewer's latest word, and whether it counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewLine {
    pub login: String,
    pub state: String,
    pub counts: bool,
    pub why: String,
}

/// An approval that counts: the reviewer's login and account id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approver {
    pub login: String,
    pub id: Option<i64>,
}

impl std::fmt::Display for Approver {
    /// `ada (id 101)`, as the ledger records it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.id {
            Some(id) => write!(f, "{} (id {id})", self.login),
            None => f.write_str(&self.login),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub needed: u32,
    pub approved_by: Vec<Approver>,
    pub reviews: Vec<ReviewLine>,
    /// Who is still needed (empty once approved); or why the pull request cannot be judged.
    pub missing: Vec<String>,
    /// The pull request cannot be judged at all (too many files or commits to list): refused
    /// whatever its reviews say.
    pub refused: Option<String>,
}

impl Verdict {
    pub fn approved(&self) -> bool {
        self.refused.is_none() && self.approved_by.len() as u64 >= u64::from(self.needed)
    }

    /// The logins of the approvals that count, comma-separated.
    pub fn logins(&self) -> String {
        let logins: Vec<&str> = self.approved_by.iter().map(|a| a.login.as_str()).collect();
        logins.join(", ")
    }

    pub fn summary(&self) -> String {
        if let Some(why) = &self.refused {
            return format!("refused: {why}");
        }
        if self.approved() {
            format!(
                "approved: {} of {} approval(s){}",
                self.approved_by.len(),
                self.needed,
                if self.approved_by.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", self.logins())
                }
            )
        } else {
            format!(
                "pending: {} of {} approval(s); {}",
                self.approved_by.len(),
                self.needed,
                self.missing.join("; ")
            )
        }
    }
}

/// Counts the approvals that satisfy every requirement. `reviews` are in GitHub's order (oldest
/// first); comments neither give nor take an approval, any other later review replaces it.
/// Nobody in `excluded` (the pull request's author, and every author and committer of its
/// commits) can approve it.
pub fn judge(
    needs: &[Requirement],
    members: &Members,
    reviews: &[Review],
    excluded: &[Ident],
    head_sha: &str,
) -> Verdict {
    let needed = needs.iter().map(|r| r.min_approvals).max().unwrap_or(1);
    // One line per account: by id when GitHub gives it, else by login.
    let mut latest: Vec<(Ident, &Review)> = Vec::new();
    for review in reviews {
        let Some(user) = &review.user else { continue };
        if matches!(review.state.as_str(), "COMMENTED" | "PENDING") {
            continue;
        }
        let who = Ident::new(&user.login, user.id);
        match latest.iter_mut().find(|(k, _)| k.same(&who)) {
            Some(entry) => *entry = (who, review),
            None => latest.push((who, review)),
        }
    }
    let mut lines = Vec::new();
    let mut approved_by = Vec::new();
    for (who, review) in latest {
        let login = review
            .user
            .as_ref()
            .map_or(who.key.clone(), |u| u.login.clone());
        let outside: Vec<&str> = needs
            .iter()
            .filter(|r| !r.admits(&who, members))
            .map(|r| r.group.as_str())
            .collect();
        let why = if review.state != "APPROVED" {
            format!("latest review is {}", review.state.to_lowercase())
        } else if excluded.iter().any(|e| e.same(&who)) {
            "an author or committer cannot approve their own pull request".into()
        } else if review.commit_id.as_deref() != Some(head_sha) {
            "approved an older commit".into()
        } else if !outside.is_empty() {
            format!("not a reviewer of {}", outside.join(", "))
        } else {
            String::new()
        };
        let counts = why.is_empty();
        if counts {
            approved_by.push(Approver {
                login: login.clone(),
                id: who.id,
            });
        }
        lines.push(ReviewLine {
            login,
            state: review.state.clone(),
            counts,
            why: if counts { "counts".into() } else { why },
        });
    }
    let mut verdict = Verdict {
        needed,
        approved_by,
        reviews: lines,
        missing: Vec::new(),
        refused: None,
    };
    if !verdict.approved() {
        let more = u64::from(needed) - verdict.approved_by.len() as u64;
        verdict.missing.push(format!(
            "needs {more} more approval(s) on the head commit{}",
            if needs.len() > 1 {
                " from someone who is in every group below"
            } else {
                ""
            }
        ));
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: &str = "org: cf\nreviewers: { teams: [core] }\n";

    fn repo(extra: &[(&str, &str)]) -> Repo {
        let mut files = vec![
            ("gatehouse.yml", SETTINGS),
            (
                "resources/gpu.yml",
                "name: gpu\nprovider: p\nreviewers: { teams: [gpu], min_approvals: 2 }\n",
            ),
            ("resources/cpu.yml", "name: cpu\nprovider: p\n"),
        ];
        files.extend_from_slice(extra);
        Repo::from_sources(files)
    }

    fn review(login: &str, state: &str, sha: &str) -> Review {
        Review {
            user: Some(ReviewUser {
                login: login.into(),
                id: None,
            }),
            state: state.into(),
            commit_id: Some(sha.into()),
        }
    }

    fn members() -> Members {
        let team = |logins: &[&str]| logins.iter().map(|l| Ident::new(l, None)).collect();
        HashMap::from([
            ("core".into(), team(&["ada", "bob"])),
            ("gpu".into(), team(&["ada", "cy"])),
        ])
    }

    fn author(login: &str) -> Vec<Ident> {
        vec![Ident::new(login, None)]
    }

    #[test]
    fn a_request_needs_its_resources_reviewers_and_other_files_the_organisation() {
        let r = repo(&[(
            "requests/x.yml",
            "action: grant\nprojects: [x]\nresources: [gpu, cpu]\n",
        )]);
        let needs = requirements(&r, &r, &["requests/x.yml".into()]).unwrap();
        let groups: Vec<_> = needs.iter().map(|n| n.group.as_str()).collect();
        assert_eq!(groups, ["resource cpu", "resource gpu"]);
        assert_eq!(needs[0].teams, ["core"]);
        assert_eq!(needs[1].min_approvals, 2);

        let needs = requirements(&r, &r, &["grants/x.yml".into()]).unwrap();
        assert_eq!(needs.len(), 1);
        assert_eq!(needs[0].group, ORG_GROUP);
        assert!(needs[0].because[0].contains("ledger"), "{needs:?}");
    }

    #[test]
    fn the_latest_decisive_review_wins_and_comments_do_not_count() {
        let r = repo(&[(
            "requests/x.yml",
            "action: grant\nprojects: [x]\nresources: [cpu]\n",
        )]);
        let needs = requirements(&r, &r, &["requests/x.yml".into()]).unwrap();
        let judged = |reviews: &[Review]| judge(&needs, &members(), reviews, &author("req"), "h2");
        assert!(judged(&[review("Ada", "APPROVED", "h2")]).approved());
        assert!(
            judged(&[
                review("ada", "APPROVED", "h2"),
                review("ADA", "COMMENTED", "h2")
            ])
            .approved()
        );
        assert!(
            !judged(&[
                review("ada", "APPROVED", "h2"),
                review("ada", "CHANGES_REQUESTED", "h2")
            ])
            .approved()
        );
        assert!(!judged(&[review("ada", "APPROVED", "h1")]).approved());
        assert!(!judged(&[review("eve", "APPROVED", "h2")]).approved());
        let own = judge(
            &needs,
            &members(),
            &[review("ada", "APPROVED", "h2")],
            &author("ADA"),
            "h2",
        );
        assert!(!own.approved());
        assert!(own.reviews[0].why.contains("own"));
    }

    #[test]
    fn an_approver_must_be_in_every_group_and_the_largest_minimum_applies() {
        let r = repo(&[(
            "requests/x.yml",
            "action: grant\nprojects: [x]\nresources: [gpu, cpu]\n",
        )]);
        let needs = requirements(&r, &r, &["requests/x.yml".into()]).unwrap();
        let v = judge(
            &needs,
            &members(),
            &[
                review("ada", "APPROVED", "h"),
                review("bob", "APPROVED", "h"),
                review("cy", "APPROVED", "h"),
            ],
            &author("req"),
            "h",
        );
        assert_eq!(v.needed, 2);
        assert_eq!(v.approved_by.len(), 1);
        assert_eq!(v.approved_by[0].login, "ada");
        assert!(!v.approved());
    }
}
