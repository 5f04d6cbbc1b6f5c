//! The signed policy snapshot a runner decides from when it cannot reach the guard.
//!
//! It holds what the guard decides with, less what only the guard can count: the compiled
//! policy's source ([`PolicySource`]), the role facts of every granted project's repository,
//! and the runner pools' settings. It is signed with the guard's Ed25519 key; a runner trusts
//! one or two public keys (two while the key is changed), and refuses a snapshot that is
//! unsigned, tampered with, signed by another key, made for another organisation, older than
//! its `max_age`, or older than the newest it has seen (its serial number only grows).
//!
//! The file: `MAGIC`, the version byte, the signer's public key (32 bytes: which trusted key to
//! check against), the signature (64 bytes) over the version byte and the body's SHA-256, and the body
//! (postcard, a compact binary form: nothing to parse but bytes). The signature covers
//! everything after the key, so no byte of the body can change unnoticed.
//!
//! A runner reads the snapshot once per job, so the body is laid out to be read fast: the
//! grants come grouped by resource, each group one blob that only a pool of that resource
//! decodes; each person is written once (login and account id) and each repository's list is
//! a blob of places in that table, decoded for the job's repository alone; logins and
//! repository names are read in place, not copied.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine;
use gatehouse_policy::{GrantSource, Permission, PolicySource};
use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// The first bytes of every snapshot file.
pub const MAGIC: &[u8; 19] = b"gatehouse-snapshot\n";
/// The body's format.
pub const VERSION: u8 = 4;
const KEY_LEN: usize = 32;
const SIG_LEN: usize = 64;
const HEADER: usize = MAGIC.len() + 1 + KEY_LEN + SIG_LEN;

/// What a snapshot says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The organisation it was made for (lower-cased).
    pub org: String,
    /// Grows with every snapshot the guard makes; a runner never goes back.
    pub serial: u64,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// A snapshot older than this is refused.
    pub max_age_secs: u64,
    pub policy: PolicySource,
    /// The role facts of the granted projects' repositories.
    pub roles: Vec<RepoRoles>,
    /// The runner pools of `gatehouse.yml` (`gate.pools`).
    pub pools: Vec<Pool>,
}

/// One repository's collaborator list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRoles {
    /// Lower-cased `owner/name`.
    pub repository: String,
    /// When the guard fetched it (seconds since the epoch).
    pub fetched_at: i64,
    /// (account id, login, role); anyone absent has no role.
    pub people: Vec<(i64, String, Permission)>,
}

/// A pool of runners that serve one resource and share one admission token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub name: String,
    pub resource: String,
    /// Let jobs through when neither the guard nor a usable snapshot can decide.
    pub allow_when_unreachable: bool,
}

/// Why a snapshot is refused. Each says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error(
        "not a gatehouse snapshot (it does not start with the snapshot header): fetch it again from the guard (GET /api/v1/snapshot) or make one with `gatehouse snapshot`"
    )]
    NotASnapshot,
    #[error(
        "the snapshot's format {0} is not one this gatehouse reads: update gatehouse on the runner"
    )]
    Version(u8),
    #[error(
        "the snapshot is signed by a key this runner does not trust: install the guard's public key (or, while the key is being changed, both keys)"
    )]
    UnknownKey,
    #[error(
        "the snapshot's signature does not match its contents: it was changed after it was signed; fetch it again from the guard"
    )]
    BadSignature,
    #[error("the snapshot's contents do not read ({0}): fetch it again from the guard")]
    Body(String),
    #[error("the snapshot was made for the organisation `{found}`, not `{wanted}`")]
    OtherOrg { found: String, wanted: String },
    #[error(
        "the snapshot is {age_secs} s old, older than its limit of {max_secs} s: the guard has not refreshed it; check that the runner can reach the guard"
    )]
    TooOld { age_secs: i64, max_secs: u64 },
    #[error("the snapshot is dated {ahead_secs} s in the future: check the runner's clock")]
    FromTheFuture { ahead_secs: i64 },
    #[error(
        "the snapshot's serial number {found} is older than {seen}, the newest this runner has seen: an old snapshot was put back"
    )]
    Replayed { found: u64, seen: u64 },
}

/// A signing key, read from its file (PKCS#8, as `gatehouse gate keygen` writes it, base64).
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

/// A public key a runner trusts: the 32 bytes, written in its file as base64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl SigningKey {
    /// A new key: its PKCS#8 document (base64, to write to the signing key's file) and its
    /// public key.
    pub fn generate() -> Result<(String, PublicKey), String> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| e.to_string())?;
        let key = SigningKey::from_pkcs8(doc.as_ref())?;
        Ok((b64().encode(doc.as_ref()), key.public_key()))
    }

    fn from_pkcs8(der: &[u8]) -> Result<SigningKey, String> {
        Ed25519KeyPair::from_pkcs8(der)
            .map(|pair| SigningKey { pair })
            .map_err(|e| format!("not an Ed25519 key in PKCS#8 form ({e})"))
    }

    /// The key from its file's text (base64 of the PKCS#8 document, surrounding white space
    /// ignored). The error never contains the key.
    pub fn from_text(text: &str) -> Result<SigningKey, String> {
        let der = b64()
            .decode(text.trim())
            .map_err(|_| "the signing key is not base64".to_string())?;
        SigningKey::from_pkcs8(&der)
    }

    pub fn public_key(&self) -> PublicKey {
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(key)
    }

    /// The snapshot as a signed file.
    pub fn sign(&self, snapshot: &Snapshot) -> Result<Vec<u8>, String> {
        let encoded = Encoded::of(snapshot);
        let body = postcard::to_stdvec(&encoded.wire(snapshot)).map_err(|e| e.to_string())?;
        let signature = self.pair.sign(&signed_message(VERSION, &body));
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.public_key().0);
        out.extend_from_slice(signature.as_ref());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

impl PublicKey {
    /// From its file's text (base64 of the 32 bytes).
    pub fn from_text(text: &str) -> Result<PublicKey, String> {
        let bytes = b64()
            .decode(text.trim())
            .map_err(|_| "the public key is not base64".to_string())?;
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| format!("a public key is {KEY_LEN} bytes"))?;
        Ok(PublicKey(key))
    }

    pub fn to_text(&self) -> String {
        b64().encode(self.0)
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// What the signature covers: a label, the version byte and the body's SHA-256 (hash, then
/// sign: the runner hashes the body once, with the processor's SHA instructions where it has
/// them, instead of Ed25519 hashing all of it with SHA-512).
fn signed_message(version: u8, body: &[u8]) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let mut message = Vec::with_capacity(SIGNED_LABEL.len() + 1 + digest.as_ref().len());
    message.extend_from_slice(SIGNED_LABEL);
    message.push(version);
    message.extend_from_slice(digest.as_ref());
    message
}

const SIGNED_LABEL: &[u8] = b"gatehouse snapshot body sha256\n";

/// Reads a signed snapshot: checks its header and its signature against one of `trusted`,
/// then reads its body. Dates, organisation and serial are [`Snapshot::check`]'s.
pub fn open<'a>(file: &'a [u8], trusted: &[PublicKey]) -> Result<Opened<'a>, SnapshotError> {
    if file.len() < HEADER || !file.starts_with(MAGIC) {
        return Err(SnapshotError::NotASnapshot);
    }
    let version = file[MAGIC.len()];
    if version != VERSION {
        return Err(SnapshotError::Version(version));
    }
    let key_at = MAGIC.len() + 1;
    let key = &file[key_at..key_at + KEY_LEN];
    let signature = &file[key_at + KEY_LEN..HEADER];
    let trusted = trusted
        .iter()
        .find(|k| k.0 == key)
        .ok_or(SnapshotError::UnknownKey)?;
    // The version byte and the body, contiguous in the file.
    let body = &file[HEADER..];
    UnparsedPublicKey::new(&signature::ED25519, trusted.0)
        .verify(&signed_message(version, body), signature)
        .map_err(|_| SnapshotError::BadSignature)?;
    let wire: Wire<'a> =
        postcard::from_bytes(body).map_err(|e| SnapshotError::Body(e.to_string()))?;
    Ok(Opened {
        org: wire.org.into_owned(),
        serial: wire.serial,
        created_at: wire.created_at,
        max_age_secs: wire.max_age_secs,
        policy_head: wire.policy_head.into_owned(),
        grants: wire.grants,
        pools: wire.pools.into_owned(),
        people: wire.people,
        roles: wire.roles,
    })
}

/// Bytes written as one length-prefixed run (postcard's byte string) and read in place.
#[derive(Clone, Copy)]
struct Blob<'a>(&'a [u8]);

impl Serialize for Blob<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Blob<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a [u8]>::deserialize(d).map(Blob)
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Encoding plain data into a growing vector cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

fn decode<'a, T: Deserialize<'a>>(blob: Blob<'a>) -> Result<T, SnapshotError> {
    postcard::from_bytes(blob.0).map_err(|e| SnapshotError::Body(e.to_string()))
}

/// The body as written: the policy without its grants, then the grants of each resource as
/// one blob (a runner decodes only its pool's), people once, and each repository's list as a
/// blob of places in that table (decoded only for the job's repository).
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    org: Cow<'a, str>,
    serial: u64,
    created_at: i64,
    max_age_secs: u64,
    policy_head: Cow<'a, PolicySource>,
    /// (resource as the grants name it, its grants in ledger order), sorted by resource.
    #[serde(borrow)]
    grants: Vec<(&'a str, Blob<'a>)>,
    pools: Cow<'a, [Pool]>,
    /// (login, account id).
    #[serde(borrow)]
    people: Vec<(&'a str, i64)>,
    /// Sorted by repository.
    #[serde(borrow)]
    roles: Vec<WireRoles<'a>>,
}

#[derive(Serialize, Deserialize)]
struct WireRoles<'a> {
    repository: &'a str,
    fetched_at: i64,
    /// `Vec<(place in people, role)>`.
    #[serde(borrow)]
    people: Blob<'a>,
}

/// What [`Wire::of`] borrows from: the encoded blobs.
struct Encoded<'a> {
    head: PolicySource,
    grants: Vec<(&'a str, Vec<u8>)>,
    people: Vec<(&'a str, i64)>,
    roles: Vec<(&'a str, i64, Vec<u8>)>,
}

impl<'a> Encoded<'a> {
    fn of(s: &'a Snapshot) -> Encoded<'a> {
        let mut by_resource: std::collections::BTreeMap<&'a str, Vec<&'a GrantSource>> =
            Default::default();
        for g in &s.policy.grants {
            by_resource.entry(&g.resource).or_default().push(g);
        }
        let grants = by_resource
            .into_iter()
            .map(|(resource, list)| (resource, encode(&list)))
            .collect();
        let mut places: HashMap<i64, u32> = HashMap::new();
        let mut people: Vec<(&'a str, i64)> = Vec::new();
        let mut roles: Vec<(&'a str, i64, Vec<u8>)> = s
            .roles
            .iter()
            .map(|r| {
                let list: Vec<(u32, Permission)> = r
                    .people
                    .iter()
                    .map(|(id, login, role)| {
                        let place = *places.entry(*id).or_insert_with(|| {
                            people.push((login, *id));
                            (people.len() - 1) as u32
                        });
                        (place, *role)
                    })
                    .collect();
                (r.repository.as_str(), r.fetched_at, encode(&list))
            })
            .collect();
        roles.sort_by(|a, b| a.0.cmp(b.0));
        Encoded {
            head: PolicySource {
                grants: Vec::new(),
                ..s.policy.clone()
            },
            grants,
            people,
            roles,
        }
    }

    fn wire(&'a self, s: &'a Snapshot) -> Wire<'a> {
        Wire {
            org: Cow::Borrowed(&s.org),
            serial: s.serial,
            created_at: s.created_at,
            max_age_secs: s.max_age_secs,
            policy_head: Cow::Borrowed(&self.head),
            grants: self.grants.iter().map(|(r, b)| (*r, Blob(b))).collect(),
            pools: Cow::Borrowed(&s.pools),
            people: self.people.clone(),
            roles: self
                .roles
                .iter()
                .map(|(repository, fetched_at, b)| WireRoles {
                    repository,
                    fetched_at: *fetched_at,
                    people: Blob(b),
                })
                .collect(),
        }
    }
}

/// A snapshot as a runner reads it: verified, its grants and role lists read in place from
/// the file and decoded only when asked for.
pub struct Opened<'a> {
    pub org: String,
    pub serial: u64,
    pub created_at: i64,
    pub max_age_secs: u64,
    pub pools: Vec<Pool>,
    policy_head: PolicySource,
    grants: Vec<(&'a str, Blob<'a>)>,
    people: Vec<(&'a str, i64)>,
    roles: Vec<WireRoles<'a>>,
}

impl std::fmt::Debug for Opened<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("org", &self.org)
            .field("serial", &self.serial)
            .field("resources", &self.policy_head.resources.len())
            .field("repositories", &self.roles.len())
            .finish()
    }
}

impl Opened<'_> {
    /// Whether the snapshot may be decided from now (`now`: seconds since the epoch), for
    /// `org`, on a runner that has seen serial `seen` at most.
    pub fn check(&self, org: &str, now: i64, seen: u64) -> Result<(), SnapshotError> {
        if !self.org.eq_ignore_ascii_case(org) {
            return Err(SnapshotError::OtherOrg {
                found: self.org.clone(),
                wanted: org.to_string(),
            });
        }
        // A few minutes of clock difference between the guard and a runner are normal.
        const SKEW: i64 = 300;
        let age = now - self.created_at;
        if age < -SKEW {
            return Err(SnapshotError::FromTheFuture { ahead_secs: -age });
        }
        if age > i64::try_from(self.max_age_secs).unwrap_or(i64::MAX) {
            return Err(SnapshotError::TooOld {
                age_secs: age,
                max_secs: self.max_age_secs,
            });
        }
        if self.serial < seen {
            return Err(SnapshotError::Replayed {
                found: self.serial,
                seen,
            });
        }
        Ok(())
    }

    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// The repository's collaborator list, if the snapshot holds it.
    pub fn roles_of(&self, repository: &str) -> Option<RepoRoles> {
        let key = repository.to_ascii_lowercase();
        let at = self
            .roles
            .binary_search_by(|r| r.repository.cmp(key.as_str()))
            .ok()?;
        let r = &self.roles[at];
        let places: Vec<(u32, Permission)> = decode(r.people).ok()?;
        let people = places
            .iter()
            .map(|(place, role)| {
                let (login, id) = self.people.get(*place as usize)?;
                Some((*id, (*login).to_string(), *role))
            })
            // A place outside the table (a signer's bug): no list rather than a wrong one.
            .collect::<Option<Vec<_>>>()?;
        Some(RepoRoles {
            repository: r.repository.to_string(),
            fetched_at: r.fetched_at,
            people,
        })
    }

    /// The policy with the grants of `resource` alone: all an offline decision on a pool of
    /// that resource reads (grants of one resource never decide a job on another).
    pub fn policy_for(&self, resource: &str) -> Result<PolicySource, SnapshotError> {
        let grants = match self.grants.binary_search_by(|(r, _)| (*r).cmp(resource)) {
            Ok(at) => decode(self.grants[at].1)?,
            Err(_) => Vec::new(),
        };
        Ok(PolicySource {
            grants,
            ..self.policy_head.clone()
        })
    }

    /// The policy's resources without any grant: enough to route labels to a resource.
    pub fn policy_for_routing(&self) -> PolicySource {
        PolicySource {
            grants: Vec::new(),
            ..self.policy_head.clone()
        }
    }

    /// The whole policy, every resource's grants.
    pub fn policy(&self) -> Result<PolicySource, SnapshotError> {
        let mut grants = Vec::new();
        for (_, blob) in &self.grants {
            grants.extend(decode::<Vec<GrantSource>>(*blob)?);
        }
        Ok(PolicySource {
            grants,
            ..self.policy_head.clone()
        })
    }

    /// How many repositories' lists it holds.
    pub fn repositories(&self) -> usize {
        self.roles.len()
    }

    /// Everything, as it was made, grants grouped by resource (for tests and tools).
    pub fn to_snapshot(&self) -> Result<Snapshot, SnapshotError> {
        Ok(Snapshot {
            org: self.org.clone(),
            serial: self.serial,
            created_at: self.created_at,
            max_age_secs: self.max_age_secs,
            policy: self.policy()?,
            roles: self
                .roles
                .iter()
                .filter_map(|r| self.roles_of(r.repository))
                .collect(),
            pools: self.pools.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(serial: u64) -> Snapshot {
        Snapshot {
            org: "conda-forge".into(),
            serial,
            created_at: 1_000_000,
            max_age_secs: 86_400,
            policy: PolicySource::default(),
            roles: vec![RepoRoles {
                repository: "conda-forge/numpy-feedstock".into(),
                fetched_at: 999_000,
                people: vec![(1, "a".into(), Permission::Write)],
            }],
            pools: vec![Pool {
                name: "gpu".into(),
                resource: "gpu-large".into(),
                allow_when_unreachable: false,
            }],
        }
    }

    #[test]
    fn a_signed_snapshot_opens_with_its_key_and_no_other() {
        let (text, public) = SigningKey::generate().unwrap();
        let key = SigningKey::from_text(&text).unwrap();
        let file = key.sign(&snapshot(7)).unwrap();
        assert_eq!(
            open(&file, std::slice::from_ref(&public))
                .unwrap()
                .to_snapshot()
                .unwrap(),
            snapshot(7)
        );
        let (_, other) = SigningKey::generate().unwrap();
        assert_eq!(
            open(&file, std::slice::from_ref(&other)).err(),
            Some(SnapshotError::UnknownKey)
        );
        // During a key change, either of two trusted keys will do.
        assert!(open(&file, &[other, public]).is_ok());
    }

    #[test]
    fn role_lists_share_their_people_and_are_found_by_repository() {
        let mut s = snapshot(1);
        let core = |n: i64| (n, format!("core-{n}"), Permission::Admin);
        s.roles = (0..50)
            .map(|r| RepoRoles {
                repository: format!("conda-forge/p{r}-feedstock"),
                fetched_at: r,
                people: vec![
                    core(1),
                    core(2),
                    (100 + r, format!("m{r}"), Permission::Write),
                ],
            })
            .collect();
        let (text, public) = SigningKey::generate().unwrap();
        let file = SigningKey::from_text(&text).unwrap().sign(&s).unwrap();
        let opened = open(&file, &[public]).unwrap();
        assert_eq!(opened.repositories(), 50);
        let found = opened.roles_of("Conda-Forge/P7-Feedstock").unwrap();
        assert_eq!(found, s.roles[7]);
        assert!(opened.roles_of("conda-forge/p50-feedstock").is_none());
        // Each of the 52 people is written once.
        assert_eq!(opened.people.len(), 52);
        let mut sorted = s.clone();
        sorted.roles.sort_by(|a, b| a.repository.cmp(&b.repository));
        assert_eq!(opened.to_snapshot().unwrap(), sorted);
    }

    #[test]
    fn a_pool_reads_its_resources_grants_alone_and_in_ledger_order() {
        let grant = |project: &str, resource: &str| GrantSource {
            project: project.into(),
            resource: resource.into(),
            pull_request: false,
            forks: true,
            granted: jiff::civil::date(2026, 1, 2),
            expires: Some(jiff::civil::date(2027, 1, 2)),
            users: Some(vec![3, 1]),
            teams: Vec::new(),
            request: None,
        };
        let mut s = snapshot(1);
        s.policy.org = "conda-forge".into();
        s.policy.tos = vec![1, 2, 3];
        s.policy.grants = vec![
            grant("zlib", "gpu-large"),
            grant("numpy", "cpu-large"),
            grant("arrow", "gpu-large"),
            grant("arrow", "no-such-resource"),
        ];
        let (text, public) = SigningKey::generate().unwrap();
        let file = SigningKey::from_text(&text).unwrap().sign(&s).unwrap();
        let opened = open(&file, &[public]).unwrap();
        let gpu = opened.policy_for("gpu-large").unwrap();
        assert_eq!(
            gpu.grants,
            vec![grant("zlib", "gpu-large"), grant("arrow", "gpu-large")]
        );
        assert_eq!(
            (gpu.org.as_str(), gpu.tos.as_slice()),
            ("conda-forge", &[1, 2, 3][..])
        );
        assert!(opened.policy_for("GPU-large").unwrap().grants.is_empty());
        // Every grant comes back, grouped by the resource it names.
        let mut all = opened.policy().unwrap().grants;
        let mut written = s.policy.grants.clone();
        let key = |g: &GrantSource| (g.resource.clone(), g.project.clone());
        all.sort_by_key(key);
        written.sort_by_key(key);
        assert_eq!(all, written);
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let (text, public) = SigningKey::generate().unwrap();
        let file = SigningKey::from_text(&text)
            .unwrap()
            .sign(&snapshot(7))
            .unwrap();
        for at in [MAGIC.len(), HEADER - 1, HEADER, file.len() - 1] {
            let mut bad = file.clone();
            bad[at] ^= 1;
            assert!(
                open(&bad, std::slice::from_ref(&public)).is_err(),
                "byte {at}"
            );
        }
        // The signer's key swapped for another trusted one: the signature is not theirs.
        let (_, second) = SigningKey::generate().unwrap();
        let mut swapped = file.clone();
        swapped[MAGIC.len() + 1..MAGIC.len() + 1 + KEY_LEN].copy_from_slice(&second.0);
        assert_eq!(
            open(&swapped, &[public.clone(), second]).err(),
            Some(SnapshotError::BadSignature)
        );
        assert_eq!(
            open(b"{}", std::slice::from_ref(&public)).err(),
            Some(SnapshotError::NotASnapshot)
        );
        assert_eq!(
            open(&file[..file.len() - 1], &[public]).map(|_| ()),
            Err(SnapshotError::BadSignature)
        );
    }

    #[test]
    fn old_foreign_replayed_and_future_snapshots_are_refused() {
        let (text, public) = SigningKey::generate().unwrap();
        let file = SigningKey::from_text(&text)
            .unwrap()
            .sign(&snapshot(7))
            .unwrap();
        let s = open(&file, &[public]).unwrap();
        assert!(s.check("Conda-Forge", 1_000_100, 7).is_ok());
        assert!(matches!(
            s.check("other", 1_000_100, 0),
            Err(SnapshotError::OtherOrg { .. })
        ));
        assert!(matches!(
            s.check("conda-forge", 1_000_000 + 86_401, 0),
            Err(SnapshotError::TooOld { .. })
        ));
        assert!(matches!(
            s.check("conda-forge", 1_000_000 - 301, 0),
            Err(SnapshotError::FromTheFuture { .. })
        ));
        assert_eq!(
            s.check("conda-forge", 1_000_100, 8),
            Err(SnapshotError::Replayed { found: 7, seen: 8 })
        );
    }

    #[test]
    fn keys_travel_as_base64_text() {
        let (text, public) = SigningKey::generate().unwrap();
        assert_eq!(PublicKey::from_text(&public.to_text()).unwrap(), public);
        assert_eq!(
            SigningKey::from_text(&format!("{text}\n"))
                .unwrap()
                .public_key(),
            public
        );
        let err = SigningKey::from_text("not a key").err().unwrap();
        assert!(!err.contains("not a key"), "{err}");
        assert!(PublicKey::from_text("AAAA").is_err());
    }
}
