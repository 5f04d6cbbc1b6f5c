use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use jiff::civil::Date;

use super::{AccountId, Resource};
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
    #[serde(default)]
    pub users: Vec<Spanned<GrantUser>>,
    /// GitHub teams of the organisation (slugs) whose members the grant also lets in, as a
    /// Cirun policy's `teams` does (`import cirun` keeps them, `render cirun` writes them
    /// back). A member (matched by account id) passes the user list as someone listed by
    /// name does; roles and the terms of service still apply. The guard reads each team's
    /// members from GitHub ahead of time; when it cannot, someone the grant lets in only
    /// through a team is refused `facts-unavailable`, never let in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<Spanned<String>>,
}

/// One person of a grant's user list. People are matched by numeric account id (a login can be
/// renamed and taken by someone else): written out (`{ github: wolfv, id: 885054 }`), or a
/// login that `people/tos.yml` resolves to an id ([`crate::Repo::account_of`]); a login that
/// nothing resolves matches nobody, and `check` says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantUser {
    Login(String),
    Person {
        github: Spanned<String>,
        id: Spanned<AccountId>,
    },
}

impl GrantUser {
    /// The login, as written.
    pub fn login(&self) -> &str {
        match self {
            GrantUser::Login(l) => l,
            GrantUser::Person { github, .. } => github,
        }
    }

    /// The account id, when the entry writes it out.
    pub fn id(&self) -> Option<i64> {
        match self {
            GrantUser::Login(_) => None,
            GrantUser::Person { id, .. } => Some(id.value.0),
        }
    }
}

impl From<&str> for GrantUser {
    fn from(login: &str) -> Self {
        GrantUser::Login(login.to_string())
    }
}

// By hand, rather than `#[serde(untagged)]`: an untagged enum buffers its input and loses the
// parser's locations, and every entry must keep its line and column.
impl<'de> Deserialize<'de> for GrantUser {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entry;
        impl<'de> serde::de::Visitor<'de> for Entry {
            type Value = GrantUser;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a login, or `{ github: <login>, id: <numeric account id> }`")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<GrantUser, E> {
                Ok(GrantUser::Login(v.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<GrantUser, A::Error> {
                use serde::de::Error;
                const FIELDS: &[&str] = &["github", "id"];
                let (mut github, mut id) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "github" if github.is_none() => github = Some(map.next_value()?),
                        "id" if id.is_none() => id = Some(map.next_value()?),
                        "github" | "id" => return Err(A::Error::duplicate_field("github or id")),
                        other => return Err(A::Error::unknown_field(other, FIELDS)),
                    }
                }
                Ok(GrantUser::Person {
                    github: github.ok_or_else(|| A::Error::missing_field("github"))?,
                    id: id.ok_or_else(|| A::Error::missing_field("id"))?,
                })
            }
        }
        deserializer.deserialize_any(Entry)
    }
}

impl Serialize for GrantUser {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            GrantUser::Login(l) => serializer.serialize_str(l),
            GrantUser::Person { github, id } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("github", &github.value)?;
                map.serialize_entry("id", &id.value.0)?;
                map.end()
            }
        }
    }
}

impl JsonSchema for GrantUser {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GrantUser".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A login that people/tos.yml resolves to an account id, or a person by login and numeric account id",
            "anyOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "properties": {
                        "github": { "type": "string" },
                        "id": { "type": "integer" }
                    },
                    "required": ["github", "id"],
                    "additionalProperties": false
                }
            ]
        })
    }
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
