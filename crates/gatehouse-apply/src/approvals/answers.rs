//! GitHub's answers that `gatehouse approvals` reads: the fields it uses of each, as GitHub's
//! REST description names them.

use serde::Deserialize;

/// `pulls/get` (a `pull-request`), and the `pull-request-simple` items of
/// `repos/list-pull-requests-associated-with-commit`: the fields the judge reads.
#[derive(Clone, Debug, Deserialize)]
pub struct Pull {
    pub number: u64,
    #[serde(default)]
    pub html_url: Option<String>,
    pub head: Head,
    #[serde(default)]
    pub base: Option<Head>,
    pub user: Option<User>,
    #[serde(default)]
    pub merged_at: Option<String>,
    /// Only in `pulls/get`: how many files and commits the pull request has.
    #[serde(default)]
    pub changed_files: Option<u64>,
    #[serde(default)]
    pub commits: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Head {
    pub sha: String,
}

/// A `simple-user`: login and numeric account id. The id is what identifies a person; a
/// login can be renamed and taken by someone else.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub login: String,
    #[serde(default)]
    pub id: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct ChangedFile {
    pub(super) filename: String,
    #[serde(default)]
    pub(super) previous_filename: Option<String>,
}

/// One item of `pulls/list-commits`: the GitHub accounts of its author and committer (absent
/// when the commit's e-mail matches no account).
#[derive(Deserialize)]
pub(super) struct PullCommit {
    #[serde(default)]
    pub(super) author: Option<User>,
    #[serde(default)]
    pub(super) committer: Option<User>,
}

#[derive(Deserialize)]
pub(super) struct Comment {
    pub(super) id: u64,
    #[serde(default)]
    pub(super) body: Option<String>,
    #[serde(default)]
    pub(super) user: Option<User>,
    #[serde(default)]
    pub(super) html_url: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Permission {
    pub(super) permission: String,
}
