//! `compile`: the access repository into an immutable index built for deciding fast.
//!
//! Names are normalised once here (lower-cased labels without their `--` or `;` suffix,
//! lower-cased project names and logins), so that `decide` only hashes and compares. The maps are keyed by
//! lower-cased bytes: `decide` lower-cases a job's names into a stack buffer and looks the bytes
//! up, with no allocation and no UTF-8 re-validation.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use gatehouse_core::Repo;
use gatehouse_core::model::Validity;
use gatehouse_core::names::{label_key, label_pattern, never_routes};
use jiff::civil::Date;

use crate::job::Permission;
use crate::source::PolicySource;

pub(crate) type Map<K, V> = HashMap<K, V, RandomState>;

/// Index of a resource in [`Policy::resources`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(pub u32);

/// Index of a grant in [`Policy::grants`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrantId(pub u32);

/// The compiled policy. Cheap to share (`Arc<Policy>`), never mutated: a new repository state
/// compiles into a new `Policy` that replaces the old one atomically.
#[derive(Debug)]
pub struct Policy {
    /// Lower-cased organisation.
    pub(crate) org: Box<str>,
    /// Lower-cased repository suffix (`-feedstock`).
    pub(crate) suffix: Box<str>,
    pub(crate) resources: Vec<CompiledResource>,
    pub(crate) grants: Vec<CompiledGrant>,
    /// Label routing key (lower-cased bytes) -> the resources that claim it (more than one
    /// only in a repository that `check` would refuse; routing then reports the ambiguity).
    pub(crate) labels: Map<Box<[u8]>, Route>,
    /// Label patterns (`namespace-profile-*`): the lower-cased text before the `*` -> the
    /// resources that claim it. A handful at most (one per provider's family of labels), tried
    /// only when the exact lookup misses, so exact labels win.
    pub(crate) patterns: Box<[(Box<[u8]>, Route)]>,
    /// Bit `n` is set when some routing key is `n` bytes long, or some pattern's prefix is `n`
    /// bytes or shorter (bit 63: 63 or more). Most of a job's labels (`self-hosted`, `linux`,
    /// `x64`, ...) have a length no key or pattern can match, and are skipped without
    /// lower-casing or hashing them.
    pub(crate) label_lengths: u64,
    /// The runner groups of `runner-group` providers.
    pub(crate) groups: Box<[RunnerGroup]>,
    /// Lower-cased project (bytes) -> its grants (a handful at most).
    pub(crate) projects: Map<Box<[u8]>, Box<[GrantId]>>,
    /// Numeric ids of everyone who accepted the terms of service.
    pub(crate) tos: foldhash::HashSet<i64>,
    /// Numeric ids of the bots of `gatehouse.yml`, sorted: never maintainers.
    pub(crate) bots: Box<[i64]>,
    pub(crate) compiled_on: Date,
}

/// A runner group of the organisation that `runner-group` providers serve.
#[derive(Debug)]
pub(crate) struct RunnerGroup {
    /// Lower-cased.
    pub(crate) name: Box<str>,
    pub(crate) resources: Box<[ResourceId]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    One(ResourceId),
    Many(ResourceId, ResourceId),
}

impl Route {
    /// This route and `other` together: one resource, or the first two different ones.
    pub(crate) fn and(self, other: Route) -> Route {
        match (self, other) {
            (Route::One(a), Route::One(b) | Route::Many(b, _)) if a != b => Route::Many(a, b),
            (Route::One(a), Route::Many(_, b)) if a != b => Route::Many(a, b),
            (Route::One(a), _) => Route::One(a),
            (many, _) => many,
        }
    }
}

#[derive(Debug)]
pub struct CompiledResource {
    pub name: Arc<str>,
    /// Bit mask of [`Permission::bit`]s that may trigger jobs.
    pub(crate) roles: u8,
    pub require_tos: bool,
    pub project_minutes_per_month: Option<u64>,
    pub minutes_per_month: Option<u64>,
    /// `bots: trusted`: bots' pushes to a project's own default branch are not judged by role.
    pub bots_trusted: bool,
}

#[derive(Debug)]
pub struct CompiledGrant {
    pub project: Arc<str>,
    pub resource: ResourceId,
    pub pull_request: bool,
    pub forks: bool,
    pub granted: Date,
    pub expires: Option<Date>,
    /// Account ids, sorted, when the grant narrows who may trigger jobs.
    pub(crate) users: Option<Box<[i64]>>,
    /// The teams its user list also names (slugs): their members are let in as the people
    /// listed by name are ([`crate::Job::in_team`] says who is in one).
    pub(crate) teams: Box<[Box<str>]>,
    /// Where the grant came from, for explanations.
    pub request: Option<Arc<str>>,
}

impl Policy {
    pub fn resource(&self, id: ResourceId) -> &CompiledResource {
        &self.resources[id.0 as usize]
    }

    pub fn grant(&self, id: GrantId) -> &CompiledGrant {
        &self.grants[id.0 as usize]
    }

    pub fn resources(&self) -> impl Iterator<Item = (ResourceId, &CompiledResource)> {
        self.resources
            .iter()
            .enumerate()
            .map(|(i, r)| (ResourceId(i as u32), r))
    }

    pub fn grants(&self) -> impl Iterator<Item = (GrantId, &CompiledGrant)> {
        self.grants
            .iter()
            .enumerate()
            .map(|(i, g)| (GrantId(i as u32), g))
    }

    pub fn org(&self) -> &str {
        &self.org
    }

    pub fn repo_suffix(&self) -> &str {
        &self.suffix
    }

    pub fn compiled_on(&self) -> Date {
        self.compiled_on
    }

    /// Whether the account with this id is one of `gatehouse.yml`'s bots.
    pub fn is_bot(&self, id: i64) -> bool {
        self.bots.binary_search(&id).is_ok()
    }

    /// Whether the person with this id accepted the terms of service.
    pub fn accepted_tos(&self, id: i64) -> bool {
        self.tos.contains(&id)
    }

    /// Where the project sits in a lower-cased repository name (`owner/<project><suffix>`):
    /// the byte range of `<project>`, or `None` when the repository is not one of the
    /// organisation's project repositories. Lower-casing ASCII keeps byte offsets, so the
    /// range also cuts the original name.
    pub(crate) fn project_span(&self, lower_repository: &[u8]) -> Option<(usize, usize)> {
        let slash = lower_repository.iter().position(|&b| b == b'/')?;
        if lower_repository[..slash] != *self.org.as_bytes() {
            return None;
        }
        let name = &lower_repository[slash + 1..];
        let suffix = self.suffix.as_bytes();
        // The suffix is valid UTF-8 matched byte for byte, so the cut before it is a char
        // boundary of the original name.
        if name.len() <= suffix.len() || !name.ends_with(suffix) {
            return None;
        }
        Some((slash + 1, lower_repository.len() - suffix.len()))
    }

    /// The grant of `resource` held by the project whose lower-cased name is `project`.
    pub(crate) fn grant_of(&self, project: &[u8], resource: ResourceId) -> Option<GrantId> {
        self.projects
            .get(project)?
            .iter()
            .copied()
            .find(|id| self.grant(*id).resource == resource)
    }

    /// The teams named by the grant of `resource` that `repository`'s project holds (none when
    /// it holds none, or its grant names no team): whose members a decision on that job may
    /// ask about ([`crate::Job::in_team`]).
    pub fn teams_of(&self, repository: &str, resource: ResourceId) -> &[Box<str>] {
        self.project_of(repository)
            .and_then(|p| with_lowercase(p.as_bytes(), |p| self.grant_of(p, resource)))
            .map_or(&[], |g| self.grant(g).teams())
    }

    /// Every team some grant names, lower-cased, sorted, once each: the teams whose members
    /// the guard keeps.
    pub fn granted_teams(&self) -> Vec<String> {
        let mut teams: Vec<String> = self
            .grants
            .iter()
            .flat_map(|g| g.teams.iter())
            .map(|t| t.to_ascii_lowercase())
            .collect();
        teams.sort();
        teams.dedup();
        teams
    }

    pub(crate) fn may_be_label_key(&self, len: usize) -> bool {
        self.label_lengths & length_bit(len) != 0
    }

    /// Whether some key or pattern could match a key of at most `len` bytes: a label that short
    /// routes nowhere, whatever part of it is its key.
    pub(crate) fn may_route_within(&self, len: usize) -> bool {
        self.label_lengths & (length_bit(len) | (length_bit(len) - 1)) != 0
    }

    pub fn resource_by_name(&self, name: &str) -> Option<ResourceId> {
        self.resources()
            .find(|(_, r)| &*r.name == name)
            .map(|(id, _)| id)
    }
}

impl CompiledResource {
    pub fn allows(&self, permission: Option<Permission>) -> bool {
        permission.is_some_and(|p| self.roles & p.bit() != 0)
    }

    /// The roles that may trigger jobs, strongest first.
    pub fn roles(&self) -> impl Iterator<Item = Permission> + '_ {
        permissions_in(self.roles)
    }
}

/// The roles of a mask of [`Permission::bit`]s, strongest first.
pub(crate) fn permissions_in(roles: u8) -> impl Iterator<Item = Permission> {
    [
        Permission::Admin,
        Permission::Maintain,
        Permission::Write,
        Permission::Triage,
        Permission::Read,
    ]
    .into_iter()
    .filter(move |p| roles & p.bit() != 0)
}

impl CompiledGrant {
    /// When the grant is in force ([`Validity::on`] says whether it is on a given day).
    pub fn validity(&self) -> Validity {
        Validity {
            granted: self.granted,
            expires: self.expires,
        }
    }

    /// The account ids of the grant's user list; `None` when it does not narrow who may
    /// trigger jobs.
    pub fn users(&self) -> Option<&[i64]> {
        self.users.as_deref()
    }

    /// The teams the grant's user list names (Cirun's `teams`, slugs of the organisation's
    /// teams): a member of one passes the user list as someone listed by name does.
    pub fn teams(&self) -> &[Box<str>] {
        &self.teams
    }

    /// Whether the person with this account id may trigger jobs under the grant's user list.
    pub fn allows_user(&self, id: i64) -> bool {
        match &self.users {
            None => true,
            Some(list) => list.binary_search(&id).is_ok(),
        }
    }
}

/// Compiles the repository as it stands. Files that failed to load are absent from `repo` and
/// therefore grant nothing; callers that serve decisions refuse a repository with `check`
/// errors before compiling it.
pub fn compile(repo: &Repo, today: Date) -> Policy {
    compile_source(&PolicySource::from_repo(repo), today)
}

/// Compiles what [`PolicySource::from_repo`] read from a repository (or a signed snapshot
/// carried).
pub fn compile_source(source: &PolicySource, today: Date) -> Policy {
    let mut resources = Vec::with_capacity(source.resources.len());
    let mut labels: Map<Box<[u8]>, Route> = Map::default();
    let mut patterns: Vec<(Box<[u8]>, Route)> = Vec::new();
    let mut label_lengths = 0u64;
    let mut groups: Vec<(Box<str>, Vec<ResourceId>)> = Vec::new();
    for r in &source.resources {
        let id = ResourceId(resources.len() as u32);
        resources.push(CompiledResource {
            name: Arc::from(r.name.as_str()),
            roles: r.roles.iter().fold(0, |m, role| m | role.bit()),
            require_tos: r.require_tos,
            project_minutes_per_month: r.project_minutes_per_month,
            minutes_per_month: r.minutes_per_month,
            bots_trusted: r.bots_trusted,
        });
        if let Some(group) = &r.runner_group {
            let group = group.to_ascii_lowercase();
            match groups.iter_mut().find(|(g, _)| **g == *group) {
                Some((_, served)) => served.push(id),
                None => groups.push((group.into(), vec![id])),
            }
        }
        for label in &r.labels {
            let key = label_key(label);
            if key.is_empty() || never_routes(key.as_bytes()) {
                continue;
            }
            // A misplaced `*` is a `check` error; the key is then compared as written.
            if let Ok(Some(prefix)) = label_pattern(&key) {
                // Every key at least as long as the prefix may match it.
                label_lengths |= u64::MAX << prefix.len().min(63);
                add_route(&mut patterns, prefix.as_bytes().into(), id);
                continue;
            }
            label_lengths |= length_bit(key.len());
            labels
                .entry(key.into_bytes().into_boxed_slice())
                .and_modify(|route| *route = route.and(Route::One(id)))
                .or_insert(Route::One(id));
        }
    }
    let by_name: Map<&str, ResourceId> = source
        .resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), ResourceId(i as u32)))
        .collect();

    let mut grants = Vec::new();
    let mut projects: Map<Box<[u8]>, Vec<GrantId>> = Map::default();
    for g in &source.grants {
        let Some(&resource) = by_name.get(g.resource.as_str()) else {
            continue; // names no resource; `check` reports it
        };
        let key = g.project.as_bytes().to_ascii_lowercase().into_boxed_slice();
        let list = projects.entry(key).or_default();
        if list
            .iter()
            .any(|id: &GrantId| grants_resource(&grants, *id) == resource)
        {
            continue; // a duplicate grant; `check` reports it, the first one counts
        }
        list.push(GrantId(grants.len() as u32));
        grants.push(CompiledGrant {
            project: Arc::from(g.project.as_str()),
            resource,
            pull_request: g.pull_request,
            forks: g.forks,
            granted: g.granted,
            expires: g.expires,
            users: g.users.as_ref().map(|u| {
                let mut v = u.clone();
                v.sort_unstable();
                v.dedup();
                v.into_boxed_slice()
            }),
            teams: g.teams.iter().map(|t| Box::from(t.as_str())).collect(),
            request: g.request.as_deref().map(Arc::from),
        });
    }

    Policy {
        org: source.org.to_ascii_lowercase().into_boxed_str(),
        suffix: source.repo_suffix.to_ascii_lowercase().into_boxed_str(),
        resources,
        grants,
        labels,
        patterns: patterns.into_boxed_slice(),
        label_lengths,
        groups: groups
            .into_iter()
            .map(|(name, served)| RunnerGroup {
                name,
                resources: served.into_boxed_slice(),
            })
            .collect(),
        projects: projects
            .into_iter()
            .map(|(k, v)| (k, v.into_boxed_slice()))
            .collect(),
        tos: source.tos.iter().copied().collect(),
        bots: {
            let mut bots = source.bots.clone();
            bots.sort_unstable();
            bots.dedup();
            bots.into_boxed_slice()
        },
        compiled_on: today,
    }
}

/// Adds resource `id` under `key` to a short list of routes.
fn add_route<K: PartialEq>(routes: &mut Vec<(K, Route)>, key: K, id: ResourceId) {
    match routes.iter_mut().find(|(k, _)| *k == key) {
        Some((_, route)) => *route = route.and(Route::One(id)),
        None => routes.push((key, Route::One(id))),
    }
}

fn grants_resource(grants: &[CompiledGrant], id: GrantId) -> ResourceId {
    grants[id.0 as usize].resource
}

fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// Runs `f` on the ASCII-lower-cased bytes of `s`, without allocating for short names (labels,
/// logins and repository names almost always are).
pub(crate) fn with_lowercase<R>(s: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    const CAP: usize = 64;
    if s.len() <= CAP {
        let mut buf = [0u8; CAP];
        buf[..s.len()].copy_from_slice(s);
        // The whole buffer: a fixed length without an early exit, which the compiler turns
        // into a few vector instructions (a loop over `s.len()` bytes costs more).
        buf.make_ascii_lowercase();
        f(&buf[..s.len()])
    } else {
        f(&s.to_ascii_lowercase())
    }
}
