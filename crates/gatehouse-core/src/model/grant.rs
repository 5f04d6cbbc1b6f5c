use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use jiff::civil::Date;

use super::Resource;
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
    /// With `pull_request: true`, whether pull requests from forks may run too, judged by
    /// the fork's owner as well as by who triggered them (a maintainer's own fork passes, an
    /// outsider's does not). Absent: the resource's `defaults.forks`, else `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forks: Option<bool>,
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

/// When a grant is in force: from `granted` to `expires`, both days included. The one place
/// that says so: the decision engine, the providers' desired state, the renderers and the
/// public ledger all ask [`Validity::on`] (through [`Grant::is_active`] or a compiled copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub granted: Date,
    pub expires: Option<Date>,
}

/// Where a grant stands on a given day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Written ahead of its start: in force from this day.
    NotYet(Date),
    Active,
    /// Ended: this was its last day.
    Expired(Date),
}

impl Validity {
    pub fn on(self, today: Date) -> Standing {
        match self.expires {
            _ if today < self.granted => Standing::NotYet(self.granted),
            Some(last) if last < today => Standing::Expired(last),
            _ => Standing::Active,
        }
    }
}

impl Grant {
    pub fn validity(&self) -> Validity {
        Validity {
            granted: self.granted.value.0,
            expires: self.expires.as_ref().map(|e| e.value.0),
        }
    }

    /// Whether pull requests from forks may use the grant (judged by the fork's owner too):
    /// the grant's `forks`, else its resource's `defaults.forks`, else yes.
    pub fn allows_forks(&self, resource: &Resource) -> bool {
        self.forks.or(resource.defaults.forks).unwrap_or(true)
    }

    /// Whether the grant is in force on `today` ([`Validity::on`]).
    pub fn is_active(&self, today: Date) -> bool {
        self.validity().on(today) == Standing::Active
    }

    /// Whether the grant ended before `today` (the day after `expires` is the first day
    /// without it).
    pub fn is_expired(&self, today: Date) -> bool {
        matches!(self.validity().on(today), Standing::Expired(_))
    }

    /// Whether the grant starts after `today` (written ahead of its start).
    pub fn is_pending(&self, today: Date) -> bool {
        matches!(self.validity().on(today), Standing::NotYet(_))
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantUsers {
    pub users: Vec<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn a_grant_is_in_force_from_its_first_to_its_last_day_both_included() {
        let v = Validity {
            granted: date(2026, 3, 1),
            expires: Some(date(2026, 3, 31)),
        };
        assert_eq!(v.on(date(2026, 2, 28)), Standing::NotYet(date(2026, 3, 1)));
        assert_eq!(v.on(date(2026, 3, 1)), Standing::Active);
        assert_eq!(v.on(date(2026, 3, 31)), Standing::Active);
        assert_eq!(v.on(date(2026, 4, 1)), Standing::Expired(date(2026, 3, 31)));
        let forever = Validity { expires: None, ..v };
        assert_eq!(forever.on(date(2099, 1, 1)), Standing::Active);
    }
}
