use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AccountId;
use crate::duration::Day;
use crate::span::Spanned;

/// `people/tos.yml`: who accepted the providers' terms of service.
pub type TosList = Vec<TosEntry>;

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TosEntry {
    /// The GitHub login (compared case-insensitively; may be renamed).
    pub github: Spanned<String>,
    /// The numeric GitHub account id, in plain decimal: what identifies the person.
    pub id: Spanned<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Spanned<Day>>,
}
