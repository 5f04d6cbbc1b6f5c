use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Day;
use crate::span::Spanned;

/// `grants/<project>.yml`: the ledger entry of one project.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantFile {
    pub project: Spanned<String>,
    #[serde(default)]
    pub grants: Vec<Grant>,
}

/// One resource held by one project.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub resource: Spanned<String>,
    /// Jobs triggered by pull requests from the project's own repository may run.
    #[serde(default)]
    pub pull_request: bool,
    /// Jobs triggered by pull requests from forks may run too (rarely wise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forks: bool,
    pub granted: Spanned<Day>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Spanned<Day>>,
    /// The pull request that asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<Spanned<String>>,
    /// Narrows who may trigger jobs, beyond the resource's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<GrantUsers>,
    /// A configuration pull request was sent to the project; revocation sends the reverse.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub send_pr: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantUsers {
    pub users: Vec<Spanned<String>>,
}
