//! `providers:` in `gatehouse.yml`: how gatehouse reaches each provider, one type per kind.
//!
//! `kind` picks the fields a provider takes, so a Cirun provider without `access_repo` or a
//! runner group with Cirun's `via` is refused when the file is read, where the field stands.
//! The `Deserialize` is written by hand: serde's internally tagged enums buffer the map through
//! its `Content` type, which drops the parser's locations, and every value here keeps its line
//! and column. The fields are read as they come into typed slots (with their locations); the
//! kind then takes its own, and what it leaves is not one of its fields.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::span::{Span, Spanned};

/// How gatehouse reaches one provider: the fields of its kind.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ProviderSettings {
    Cirun(CirunProvider),
    GithubApp(GithubAppProvider),
    RunnerGroup(RunnerGroupProvider),
}

/// `kind: cirun`: Cirun, which reads its access policy from a repository of the organisation.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CirunProvider {
    /// Where `kind: cirun` is written.
    #[serde(skip)]
    pub kind_at: Span,
    /// The organisation's repository that holds `.access.yml`.
    pub access_repo: Spanned<String>,
    /// The URL of the terms-of-service list that Cirun reads (`users_from_json`) for resources
    /// with `require_tos`; without it, the logins of people/tos.yml are listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_from_json: Option<Spanned<String>>,
    /// How the policy reaches Cirun. `access-repo` (the default) commits the rendered
    /// `.access.yml` straight to `access_repo`, which Cirun reads: live at once. `api`, for a
    /// token that cannot write `access_repo`, sends the changes to Cirun's REST API, which
    /// opens a pull request on `access_repo`; `apply` checks and merges it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Spanned<CirunVia>>,
    /// Cirun's own GitHub App installation (optional), which `audit --online` reads for
    /// repositories where Cirun is installed without a grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<Spanned<u64>>,
    /// See [`ProviderSettings::max_concurrency`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<Spanned<u32>>,
}

impl CirunProvider {
    /// How the policy reaches Cirun (`access-repo` when `via` is not written).
    pub fn via(&self) -> CirunVia {
        self.via.as_ref().map(|v| v.value).unwrap_or_default()
    }
}

/// `kind: github-app`: a GitHub App whose installation's selected repositories are managed.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubAppProvider {
    /// Where `kind: github-app` is written.
    #[serde(skip)]
    pub kind_at: Span,
    /// The installation whose selected repositories are managed.
    pub installation_id: Spanned<u64>,
    /// See [`ProviderSettings::max_concurrency`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<Spanned<u32>>,
}

/// `kind: runner-group`: a runner group of the organisation whose selected repositories are
/// managed.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerGroupProvider {
    /// Where `kind: runner-group` is written.
    #[serde(skip)]
    pub kind_at: Span,
    /// The organisation's runner group whose selected repositories are managed.
    pub group: Spanned<String>,
    /// See [`ProviderSettings::max_concurrency`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<Spanned<u32>>,
}

impl ProviderSettings {
    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderSettings::Cirun(_) => ProviderKind::Cirun,
            ProviderSettings::GithubApp(_) => ProviderKind::GithubApp,
            ProviderSettings::RunnerGroup(_) => ProviderKind::RunnerGroup,
        }
    }

    /// Where `kind:` is written: the place that names the provider's kind.
    pub fn kind_at(&self) -> Span {
        match self {
            ProviderSettings::Cirun(p) => p.kind_at,
            ProviderSettings::GithubApp(p) => p.kind_at,
            ProviderSettings::RunnerGroup(p) => p.kind_at,
        }
    }

    /// The organisation-wide cap: jobs that may hold a machine of any of this provider's
    /// resources at once (running, or admitted by a gate).
    pub fn max_concurrency(&self) -> Option<&Spanned<u32>> {
        match self {
            ProviderSettings::Cirun(p) => p.max_concurrency.as_ref(),
            ProviderSettings::GithubApp(p) => p.max_concurrency.as_ref(),
            ProviderSettings::RunnerGroup(p) => p.max_concurrency.as_ref(),
        }
    }

    /// The GitHub App installation the provider names: a `github-app` provider's own, or a
    /// Cirun provider's Cirun app.
    pub fn installation_id(&self) -> Option<&Spanned<u64>> {
        match self {
            ProviderSettings::Cirun(p) => p.installation_id.as_ref(),
            ProviderSettings::GithubApp(p) => Some(&p.installation_id),
            ProviderSettings::RunnerGroup(_) => None,
        }
    }
}

/// How `apply` writes Cirun's access policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CirunVia {
    /// `PUT {base}/access-control` on Cirun's API (cirun-py's `update_access_control`), then
    /// the pull request Cirun opens on `access_repo` merged through GitHub.
    Api,
    /// A commit of `.access.yml` to the organisation's `access_repo` through GitHub.
    #[default]
    AccessRepo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Cirun,
    GithubApp,
    RunnerGroup,
}

impl ProviderKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::Cirun => "cirun",
            ProviderKind::GithubApp => "github-app",
            ProviderKind::RunnerGroup => "runner-group",
        }
    }

    /// The fields a provider of this kind takes, as gatehouse.yml spells them.
    pub fn fields(&self) -> &'static [&'static str] {
        match self {
            ProviderKind::Cirun => &[
                "kind",
                "access_repo",
                "users_from_json",
                "via",
                "installation_id",
                "max_concurrency",
            ],
            ProviderKind::GithubApp => &["kind", "installation_id", "max_concurrency"],
            ProviderKind::RunnerGroup => &["kind", "group", "max_concurrency"],
        }
    }
}

/// Every field a provider of any kind may have, in the order `gatehouse schema` lists them.
const ANY_KIND: &[&str] = &[
    "kind",
    "access_repo",
    "users_from_json",
    "via",
    "installation_id",
    "group",
    "max_concurrency",
];

/// The fields read so far, of any kind, each with its place.
#[derive(Default)]
struct Written {
    access_repo: Option<Spanned<String>>,
    users_from_json: Option<Spanned<String>>,
    via: Option<Spanned<CirunVia>>,
    installation_id: Option<Spanned<u64>>,
    group: Option<Spanned<String>>,
    max_concurrency: Option<Spanned<u32>>,
}

impl Written {
    /// The provider of `kind` made of the fields it takes; the fields it does not take stay.
    fn take<E: de::Error>(&mut self, kind: Spanned<ProviderKind>) -> Result<ProviderSettings, E> {
        let kind_at = kind.span;
        let max_concurrency = self.max_concurrency.take();
        Ok(match kind.value {
            ProviderKind::Cirun => ProviderSettings::Cirun(CirunProvider {
                kind_at,
                access_repo: self
                    .access_repo
                    .take()
                    .ok_or_else(|| E::missing_field("access_repo"))?,
                users_from_json: self.users_from_json.take(),
                via: self.via.take(),
                installation_id: self.installation_id.take(),
                max_concurrency,
            }),
            ProviderKind::GithubApp => ProviderSettings::GithubApp(GithubAppProvider {
                kind_at,
                installation_id: self
                    .installation_id
                    .take()
                    .ok_or_else(|| E::missing_field("installation_id"))?,
                max_concurrency,
            }),
            ProviderKind::RunnerGroup => ProviderSettings::RunnerGroup(RunnerGroupProvider {
                kind_at,
                group: self.group.take().ok_or_else(|| E::missing_field("group"))?,
                max_concurrency,
            }),
        })
    }

    /// The fields read so far, in the order of [`ANY_KIND`].
    fn names(&self) -> impl Iterator<Item = &'static str> {
        [
            ("access_repo", self.access_repo.is_some()),
            ("users_from_json", self.users_from_json.is_some()),
            ("via", self.via.is_some()),
            ("installation_id", self.installation_id.is_some()),
            ("group", self.group.is_some()),
            ("max_concurrency", self.max_concurrency.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, there)| there.then_some(name))
    }
}

/// Reads the value of field `name` into its slot (a field written twice is refused); `name`.
fn read<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    slot: &mut Option<Spanned<T>>,
    name: &'static str,
    map: &mut A,
) -> Result<&'static str, A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(name)
}

impl<'de> Deserialize<'de> for ProviderSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Provider;
        impl<'de> Visitor<'de> for Provider {
            type Value = ProviderSettings;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a provider: `{ kind: cirun|github-app|runner-group, ... }`")
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ProviderSettings, A::Error> {
                let mut written = Written::default();
                let mut kind: Option<Spanned<ProviderKind>> = None;
                // serde's own errors take the place of the key read last (serde-saphyr's
                // fallback), so a field the kind does not take is refused as soon as that is
                // known: at the field when `kind` came first, at `kind` when the field did.
                while let Some(key) = map.next_key::<String>()? {
                    let field = match key.as_str() {
                        "kind" => {
                            if kind.is_some() {
                                return Err(de::Error::duplicate_field("kind"));
                            }
                            let named: Spanned<ProviderKind> = map.next_value()?;
                            let fields = named.value.fields();
                            if let Some(other) = written.names().find(|f| !fields.contains(f)) {
                                return Err(de::Error::unknown_field(other, fields));
                            }
                            kind = Some(named);
                            continue;
                        }
                        "access_repo" => read(&mut written.access_repo, "access_repo", &mut map)?,
                        "users_from_json" => {
                            read(&mut written.users_from_json, "users_from_json", &mut map)?
                        }
                        "via" => read(&mut written.via, "via", &mut map)?,
                        "installation_id" => {
                            read(&mut written.installation_id, "installation_id", &mut map)?
                        }
                        "group" => read(&mut written.group, "group", &mut map)?,
                        "max_concurrency" => {
                            read(&mut written.max_concurrency, "max_concurrency", &mut map)?
                        }
                        other => return Err(de::Error::unknown_field(other, ANY_KIND)),
                    };
                    if let Some(kind) = &kind
                        && !kind.value.fields().contains(&field)
                    {
                        return Err(de::Error::unknown_field(field, kind.value.fields()));
                    }
                }
                let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
                let fields = kind.value.fields();
                let provider = written.take(kind)?;
                // Every field read is one of the kind's (checked above), and `take` takes them
                // all; should the two ever disagree, the file is refused rather than a field
                // dropped unread.
                match written.names().next() {
                    Some(field) => Err(de::Error::unknown_field(field, fields)),
                    None => Ok(provider),
                }
            }
        }
        deserializer.deserialize_map(Provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gatehouse schema settings` describes one shape a kind, each with the fields the reader
    /// takes for that kind, `kind` and the kind's own field required.
    #[test]
    fn the_schema_has_one_shape_a_kind() {
        let schema = serde_json::to_value(schemars::schema_for!(ProviderSettings)).unwrap();
        let shapes = schema["oneOf"].as_array().expect("one shape a kind");
        assert_eq!(shapes.len(), 3, "{schema:#}");
        for (kind, own) in [
            (ProviderKind::Cirun, "access_repo"),
            (ProviderKind::GithubApp, "installation_id"),
            (ProviderKind::RunnerGroup, "group"),
        ] {
            let shape = shapes
                .iter()
                .find(|s| s["properties"]["kind"]["const"] == kind.as_str())
                .unwrap_or_else(|| panic!("no shape for {kind:?}: {schema:#}"));
            let mut fields: Vec<&str> = shape["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut taken = kind.fields().to_vec();
            fields.sort_unstable();
            taken.sort_unstable();
            assert_eq!(fields, taken, "{kind:?}: {shape:#}");
            let mut required: Vec<&str> = shape["required"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|r| r.as_str())
                .collect();
            required.sort_unstable();
            let mut expected = vec!["kind", own];
            expected.sort_unstable();
            assert_eq!(required, expected, "{kind:?}: {shape:#}");
        }
    }
}
