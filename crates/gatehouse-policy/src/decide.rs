//! `decide`: may this CI job run on the resource its labels ask for?
//!
//! The rules of DESIGN.md section 5, in their order, each with a stable code:
//!
//! 1. `ambiguous-labels`: the labels route to more than one resource.
//! 2. `no-grant`: the project holds no grant of the resource; `expired`: it held one.
//! 3. `event-not-allowed`: `pull_request_target` always; `pull_request` unless the grant allows
//!    it; code from a fork when the grant (or its resource) says `forks: false`.
//! 4. `user-not-allowed`: `actor`, `triggering_actor` or, for a fork, the fork's owner lacks a
//!    required role, is not in the grant's user list, or has not accepted the terms of service
//!    (matched by numeric id); a fork whose owner is unknown.
//! 5. `quota-exhausted`: the project's or the resource's minutes for the month are used up.
//!    `concurrency-exhausted`: a concurrency cap is reached. `decide` never gives it: the guard
//!    counts the jobs holding machines and denies with [`Decision::concurrency_exhausted`].
//!    `budget-exhausted`: every sponsor credit pool that pays for the job is used up. `decide`
//!    never gives it either: the guard keeps the pools' books ([`Decision::budget_exhausted`]).
//! 6. `facts-unavailable`: a fact the decision needs could not be had in time. `decide` never
//!    gives it: it answers [`Decision::Undecided`], and the guard, once its deadline passes,
//!    turns that into this denial ([`Decision::facts_unavailable`]).
//!
//! One function, [`decide_with`], implements the rules; [`Policy::decide`] runs it with a tracer
//! that compiles to nothing, [`Policy::explain`] with one that records every step, so the
//! explanation can never disagree with the decision.

use std::fmt;
use std::sync::Arc;

use gatehouse_core::model::Standing;
use gatehouse_core::names::{label_key_end, never_routes};
use jiff::civil::Date;
use serde::Serialize;

use crate::compile::{
    CompiledGrant, CompiledResource, GrantId, Policy, ResourceId, Route, permissions_in,
    with_lowercase,
};
use crate::job::{Actor, Job, Missing, Permission, Run};
use smallstr::SmallString;

/// Where a job's labels (and runner group) route ([`Policy::route_job`]): `Ok(None)` to no
/// managed resource, `Err` with two different resources when to more than one. Found once per
/// decision and passed on ([`Job::routed`]), so that `decide` does not route again.
pub type Routed = Result<Option<ResourceId>, (ResourceId, ResourceId)>;

/// The outcome for one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No label routes to a managed resource: gatehouse has no say.
    NotManaged,
    Allow {
        resource: ResourceId,
        grant: GrantId,
    },
    Deny(Denial),
    /// Every rule that could be judged passed, but one needs a fact the job does not have yet
    /// (only a [`Job`] other than a complete [`crate::JobContext`] can lack one). Never an allow: the
    /// guard waits for the fact, and denies `facts-unavailable` when it cannot be had.
    Undecided {
        resource: ResourceId,
        missing: Missing,
    },
}

// A decision is returned by value on the guard's hot path: a denial's message detail is boxed,
// so that it adds one pointer.
const _: () = assert!(std::mem::size_of::<Decision>() <= 56);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub rule: DenyRule,
    /// The resource the labels routed to (absent only for ambiguous labels).
    pub resource: Option<ResourceId>,
    pub reason: DenyReason,
    /// What its message names, taken when the job was denied (boxed: a decision stays small).
    names: Box<Names>,
}

/// A name of at most `N` bytes kept in place ([`SmallString`]), a longer one on the heap.
type InlineStr<const N: usize> = SmallString<[u8; N]>;

/// Replaces `name` with `s`, in place when it fits.
fn set<const N: usize>(name: &mut InlineStr<N>, s: &str) {
    name.clear();
    name.push_str(s);
}

/// The longest resource name kept in place; a longer one is kept on the heap.
const RESOURCE_NAME: usize = 64;
/// GitHub's longest `owner/name`: a 39-byte owner and a 100-byte name.
const REPOSITORY: usize = 140;
/// GitHub's longest login.
const LOGIN: usize = 39;

/// The names (and the few facts) a denial's message uses, taken from the policy and the job
/// when the job is denied, so that [`Decision::message`] needs neither, as Cedar's response
/// carries its reasons. A denial is one allocation: the names every message uses are copied
/// into this box (in place, [`SmallString`]), and what only a few messages name is in a
/// second box that only those denials fill in.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Names {
    /// The resource the labels routed to (empty for ambiguous labels).
    resource: InlineStr<RESOURCE_NAME>,
    repository: InlineStr<REPOSITORY>,
    /// Where the project stands in `repository` (all of it for any other repository).
    project: (usize, usize),
    /// The roles that may start the resource's jobs (a mask of [`Permission::bit`]s).
    roles: u8,
    /// The person the people rule judged (login and account id), when the run names them.
    person: Option<(InlineStr<LOGIN>, i64)>,
    /// What only some messages name.
    rare: Option<Box<RareNames>>,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            resource: InlineStr::new(),
            repository: InlineStr::new(),
            project: (0, 0),
            roles: 0,
            person: None,
            rare: None,
        }
    }
}

/// What only a few denials' messages name: ambiguous labels' two resources, the organisation,
/// the grant's teams, how to approve a pull request's commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RareNames {
    /// The two resources ambiguous labels select.
    both: Option<(Arc<str>, Arc<str>)>,
    /// The organisation (for a repository that is not one of its projects, and the teams).
    org: Box<str>,
    /// The teams the project's grant names (for [`DenyReason::NotListed`]).
    teams: Box<[Box<str>]>,
    /// How a pull request's job the people rule denied can be approved.
    approval: Option<ApprovalHint>,
}

/// What [`how_to_approve`] says.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ApprovalHint {
    phrase: Box<str>,
    head_sha: Option<Box<str>>,
    /// The grant narrows who may start jobs to its list of users.
    users_listed: bool,
    require_tos: bool,
}

impl Names {
    /// What every message names: the resource, the repository and its project (`project`:
    /// where it stands in `repository`, as [`Policy::project_span`] found it).
    fn of(
        policy: &Policy,
        repository: &str,
        project: Option<(usize, usize)>,
        resource: Option<ResourceId>,
        reason: &DenyReason,
    ) -> Box<Names> {
        let name = |id: ResourceId| policy.resource(id).name.clone();
        // Filled in place: the names are copied once, into the box.
        let mut names = Box::<Names>::default();
        if let Some(id) = resource {
            let res = policy.resource(id);
            set(&mut names.resource, &res.name);
            names.roles = res.roles;
        }
        set(&mut names.repository, repository);
        names.project = project.unwrap_or((0, repository.len()));
        match reason {
            DenyReason::AmbiguousLabels(a, b) => {
                names.rare_mut().both = Some((name(*a), name(*b)));
            }
            DenyReason::NotAProject => names.rare_mut().org = policy.org.clone(),
            _ => {}
        }
        names
    }

    /// What the people rule's messages name besides: the person, the grant's teams, and how
    /// to approve the job's commit.
    fn of_people(
        &mut self,
        policy: &Policy,
        job: &impl Job,
        resource: ResourceId,
        grant: Option<GrantId>,
        reason: &DenyReason,
    ) {
        let run = job.run();
        let who = match reason {
            DenyReason::MissingRole { who, .. }
            | DenyReason::NotListed { who }
            | DenyReason::TermsNotAccepted { who }
            | DenyReason::Bot { who } => Some(*who),
            _ => None,
        };
        self.person = who.zip(run.as_ref()).and_then(|(who, run)| {
            match who {
                Who::Actor => Some(run.actor),
                Who::TriggeringActor => run.triggering_actor.or(Some(run.actor)),
                Who::HeadOwner => run.head_owner,
            }
            .map(|p| (InlineStr::from_str(&p.login), p.id))
        });
        if matches!(reason, DenyReason::NotListed { .. }) {
            let teams = grant.map_or(&[][..], |g| policy.grant(g).teams());
            if !teams.is_empty() {
                let rare = self.rare_mut();
                rare.teams = teams.into();
                rare.org = policy.org.clone();
            }
        }
        let (Some(run), Some(phrase)) = (run, job.run_approval_phrase()) else {
            return;
        };
        if !is_pull_request_event(run.event) {
            return;
        }
        self.rare_mut().approval = Some(ApprovalHint {
            phrase: phrase.into(),
            head_sha: run.head_sha.map(Box::from),
            users_listed: grant.is_some_and(|g| policy.grant(g).users().is_some()),
            require_tos: policy.resource(resource).require_tos,
        });
    }

    fn rare_mut(&mut self) -> &mut RareNames {
        self.rare.get_or_insert_with(Box::default)
    }

    fn rare(&self) -> Option<&RareNames> {
        self.rare.as_deref()
    }

    /// The organisation, as the messages that name it were given it.
    fn org(&self) -> &str {
        self.rare().map_or("", |r| &r.org)
    }

    fn project(&self) -> &str {
        &self.repository[self.project.0..self.project.1]
    }
}

/// The rule that denied a job. The codes are stable: dashboards and documentation use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DenyRule {
    AmbiguousLabels,
    NoGrant,
    Expired,
    EventNotAllowed,
    UserNotAllowed,
    QuotaExhausted,
    ConcurrencyExhausted,
    BudgetExhausted,
    FactsUnavailable,
}

impl DenyRule {
    pub const ALL: [DenyRule; 9] = [
        DenyRule::AmbiguousLabels,
        DenyRule::NoGrant,
        DenyRule::Expired,
        DenyRule::EventNotAllowed,
        DenyRule::UserNotAllowed,
        DenyRule::QuotaExhausted,
        DenyRule::ConcurrencyExhausted,
        DenyRule::BudgetExhausted,
        DenyRule::FactsUnavailable,
    ];

    pub fn code(self) -> &'static str {
        match self {
            DenyRule::AmbiguousLabels => "ambiguous-labels",
            DenyRule::NoGrant => "no-grant",
            DenyRule::Expired => "expired",
            DenyRule::EventNotAllowed => "event-not-allowed",
            DenyRule::UserNotAllowed => "user-not-allowed",
            DenyRule::QuotaExhausted => "quota-exhausted",
            DenyRule::ConcurrencyExhausted => "concurrency-exhausted",
            DenyRule::BudgetExhausted => "budget-exhausted",
            DenyRule::FactsUnavailable => "facts-unavailable",
        }
    }

    pub fn from_code(code: &str) -> Option<DenyRule> {
        DenyRule::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for DenyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Which of the job's people a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Actor,
    TriggeringActor,
    /// The owner of the fork a pull request comes from.
    HeadOwner,
}

/// Why, in detail; [`Decision::message`] turns it into words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DenyReason {
    AmbiguousLabels(ResourceId, ResourceId),
    /// The repository is not one of the organisation's project repositories.
    NotAProject,
    NoGrant,
    /// The grant is written but starts on this day.
    NotYetActive(Date),
    Expired(Date),
    PullRequestTarget,
    PullRequestNotAllowed,
    /// The code comes from this fork (`None`: one nobody knows) and the grant refuses forks.
    ForkNotAllowed {
        head: Option<Box<str>>,
    },
    /// A fork's job whose fork has no known owner.
    UnknownForkOwner,
    MissingRole {
        who: Who,
        permission: Option<Permission>,
    },
    NotListed {
        who: Who,
    },
    TermsNotAccepted {
        who: Who,
    },
    /// One of `gatehouse.yml`'s bots: never a maintainer, whatever role GitHub gives it.
    Bot {
        who: Who,
    },
    ProjectQuota {
        used: u64,
        limit: u64,
        /// The first day of the next month.
        resets: Date,
    },
    ResourceQuota {
        used: u64,
        limit: u64,
        resets: Date,
    },
    /// A concurrency cap is reached: `running` jobs hold a machine against a cap of `limit`.
    Concurrency {
        cap: Cap,
        running: u32,
        limit: u32,
        /// The provider (for [`Cap::Provider`]).
        provider: Box<str>,
    },
    /// Every sponsor credit pool that funds the job is used up: `pools` names them (with
    /// their sponsors and what is left), as the guard read its books.
    Budget {
        pools: Box<str>,
    },
    FactsUnavailable(Missing),
}

/// Which concurrency cap a job ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// The resource's `quota.concurrency`.
    Resource,
    /// The resource's `quota.project_concurrency`.
    Project,
    /// The provider's `max_concurrency`.
    Provider,
}

/// What one step of an explanation judged: the routing of the labels, or one deny rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    /// Which resource the job's labels select (never a deny of its own).
    Route,
    Rule(DenyRule),
}

impl Checked {
    /// `route`, or the deny rule's code ([`DenyRule::code`]).
    pub fn code(self) -> &'static str {
        match self {
            Checked::Route => "route",
            Checked::Rule(rule) => rule.code(),
        }
    }
}

impl From<DenyRule> for Checked {
    fn from(rule: DenyRule) -> Self {
        Checked::Rule(rule)
    }
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Checked {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// One step of an explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub rule: Checked,
    pub passed: bool,
    pub detail: String,
}

/// Receives each rule's result. The no-op tracer makes `decide` pay nothing for explanations.
pub trait Tracer {
    fn step(&mut self, rule: impl Into<Checked>, passed: bool, detail: impl FnOnce() -> String);
}

struct NoTrace;

impl Tracer for NoTrace {
    #[inline(always)]
    fn step(&mut self, _: impl Into<Checked>, _: bool, _: impl FnOnce() -> String) {}
}

impl Tracer for Vec<Step> {
    fn step(&mut self, rule: impl Into<Checked>, passed: bool, detail: impl FnOnce() -> String) {
        self.push(Step {
            rule: rule.into(),
            passed,
            detail: detail(),
        });
    }
}

impl Policy {
    /// Decides one job.
    pub fn decide(&self, job: &impl Job) -> Decision {
        decide_with(self, job, &mut NoTrace)
    }

    /// Decides one job and records every rule it passed or failed.
    pub fn explain(&self, job: &impl Job) -> (Decision, Vec<Step>) {
        let mut steps = Vec::new();
        let d = decide_with(self, job, &mut steps);
        (d, steps)
    }

    /// Which managed resources the labels route to: `Ok(None)` when none, `Err` with two
    /// different resources when more than one.
    ///
    /// A label routes by its key (up to its first `--` or `;`, lower-cased): to the resource
    /// that lists that key, or else to the resource whose pattern (`namespace-profile-*`) the
    /// key starts with. Generic labels and those of GitHub's hosted runners route nowhere.
    pub fn route<'a>(&self, labels: impl IntoIterator<Item = &'a str>) -> Routed {
        let mut found: Option<ResourceId> = None;
        let mut buf = [0u8; KEY_BUF];
        for label in labels {
            let route = match lowercase_route_key(self, label.as_bytes(), &mut buf) {
                // Non-empty and of a length some key or pattern can match already.
                Ok(Some(key)) => self.exact_or_pattern(key),
                Ok(None) => None,
                // Long labels and labels with white space around the key: the plain rule.
                Err(()) => {
                    let key = route_key(label);
                    with_lowercase(key.as_bytes(), |k| self.lookup_label(k))
                }
            };
            match route {
                None => {}
                Some(Route::Many(a, b)) => return Err((a, b)),
                Some(Route::One(id)) => match found {
                    None => found = Some(id),
                    Some(prev) if prev != id => return Err((prev, id)),
                    Some(_) => {}
                },
            }
        }
        Ok(found)
    }

    /// Which managed resources a job routes to, from its labels and, once GitHub has given it a
    /// runner, that runner's group (`runner_group_name` of an `in_progress` `workflow_job`).
    /// A job that asks for `runs-on: { group: NAME }` is queued with no labels and no group, so
    /// it can only be routed once the group is known.
    ///
    /// A group that no `runner-group` provider serves changes nothing: the labels decide. A
    /// managed group routes the job to its resource, and the job's labels must then route to
    /// that resource or to none: labels of another resource make the job ambiguous.
    pub fn route_job<'a>(
        &self,
        labels: impl IntoIterator<Item = &'a str>,
        runner_group: Option<&str>,
    ) -> Routed {
        let by_labels = self.route(labels)?;
        let Some(served) = runner_group.and_then(|g| self.group_resources(g)) else {
            return Ok(by_labels);
        };
        match (by_labels, served) {
            (Some(id), _) if served.contains(&id) => Ok(Some(id)),
            (Some(id), [first, ..]) => Err((id, *first)),
            (None, [only]) => Ok(Some(*only)),
            (None, [a, b, ..]) => Err((*a, *b)),
            (_, []) => Ok(by_labels),
        }
    }

    /// The managed resource served through the organisation's runner group `group` (compared
    /// case-insensitively): `Ok(None)` when no `runner-group` provider serves it, `Err` when
    /// several resources do (a job that names only the group is then ambiguous).
    pub fn route_group(&self, group: &str) -> Routed {
        self.route_job(std::iter::empty(), Some(group))
    }

    /// The resources of the `runner-group` providers of `group`, when there are any.
    fn group_resources(&self, group: &str) -> Option<&[ResourceId]> {
        let group = group.trim();
        self.groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(group))
            .map(|g| &*g.resources)
    }

    /// The route of a lower-cased routing key. Generic labels (`self-hosted`, `linux`, ...) are
    /// never in the map: `compile` leaves them out, so they route nowhere without a check here.
    #[inline]
    fn lookup_label(&self, key: &[u8]) -> Option<Route> {
        if key.is_empty() || !self.may_be_label_key(key.len()) {
            return None;
        }
        self.exact_or_pattern(key)
    }

    /// The resource that lists the key, or else the one whose pattern it matches.
    #[inline]
    fn exact_or_pattern(&self, key: &[u8]) -> Option<Route> {
        match self.labels.get(key) {
            Some(route) => Some(*route),
            None if self.patterns.is_empty() => None,
            None => self.match_patterns(key),
        }
    }

    /// The patterns whose prefix starts `key` (one, in a repository `check` accepts). Generic
    /// and hosted-runner labels are refused here, since a pattern may match them (`compile`
    /// leaves such exact labels out of the map).
    #[inline(never)]
    fn match_patterns(&self, key: &[u8]) -> Option<Route> {
        let found = self
            .patterns
            .iter()
            .filter(|(prefix, _)| key.starts_with(prefix))
            .map(|(_, route)| *route)
            .reduce(Route::and)?;
        (!never_routes(key)).then_some(found)
    }

    /// The project a repository holds grants as: `owner/<project><suffix>` within the
    /// organisation, lower-cased. `None` for anything else.
    pub fn project_of<'a>(&self, repository: &'a str) -> Option<&'a str> {
        let (start, end) = with_lowercase(repository.as_bytes(), |r| self.project_span(r))?;
        Some(&repository[start..end])
    }
}

/// Events that build a pull request's code; a grant's `pull_request` covers all of them.
/// (`pull_request_target` is refused outright.)
pub const PULL_REQUEST_EVENTS: &[&str] = &[
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
];

pub fn is_pull_request_event(event: &str) -> bool {
    PULL_REQUEST_EVENTS
        .iter()
        .any(|e| e.eq_ignore_ascii_case(event))
}

/// Routing keys longer than this take the allocating path; conda-forge's are under 40 bytes.
const KEY_BUF: usize = 64;

/// The routing key of `label`, lower-cased into `buf`, or `Ok(None)` when no managed key or
/// pattern can match a key of its length (most labels: `self-hosted`, `linux`, `x64`, ...),
/// decided before any byte is copied: for a label shorter than every key, before it is even
/// scanned for its end. `Err(())` when the fast path does not apply (a key longer than the
/// buffer, or one that starts or ends with something other than a visible ASCII character and
/// so may need trimming); the caller then falls back to [`route_key`].
#[inline]
fn lowercase_route_key<'b>(
    policy: &Policy,
    label: &[u8],
    buf: &'b mut [u8; KEY_BUF],
) -> Result<Option<&'b [u8]>, ()> {
    // A key is never longer than its label, trimmed or not.
    if !policy.may_route_within(label.len()) {
        return Ok(None);
    }
    let key = &label[..label_key_end(label)];
    match key {
        [] => return Ok(None),
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => {}
        [only] if only.is_ascii_graphic() => {}
        _ => return Err(()),
    }
    if key.len() > KEY_BUF {
        return Err(());
    }
    if !policy.may_be_label_key(key.len()) {
        return Ok(None);
    }
    // Lower-case the whole buffer: a fixed length without an early exit, which the compiler
    // turns into a few vector instructions.
    buf[..key.len()].copy_from_slice(key);
    buf.make_ascii_lowercase();
    Ok(Some(&buf[..key.len()]))
}

/// The part of a label that routes: everything before the first `--` or `;`, without
/// surrounding white space (the same rule as `gatehouse_core::names::label_key`, minus the
/// lower-casing, which the caller does without allocating).
fn route_key(label: &str) -> &str {
    // `--` and `;` are ASCII, so the cut is a char boundary.
    let key = &label[..label_key_end(label.as_bytes())];
    // Labels almost never carry surrounding white space; skip the Unicode-aware trim then.
    match key.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => key,
        [only] if only.is_ascii_graphic() => key,
        _ => key.trim(),
    }
}

/// Where a denied job stands in the policy, as `decide` found it: where its project stands in
/// its repository (`None`: not a project repository), and the project's grant of the resource.
#[derive(Clone, Copy, Default)]
struct Located {
    project: Option<(usize, usize)>,
    grant: Option<GrantId>,
}

/// The denial of `job` by `rule`, with the names its message uses.
fn deny(
    policy: &Policy,
    job: &impl Job,
    rule: DenyRule,
    resource: Option<ResourceId>,
    reason: DenyReason,
    at: Located,
) -> Decision {
    let mut names = Names::of(policy, job.repository(), at.project, resource, &reason);
    if let (DenyRule::UserNotAllowed, Some(id)) = (rule, resource) {
        names.of_people(policy, job, id, at.grant, &reason);
    }
    Decision::Deny(Denial {
        rule,
        resource,
        reason,
        names,
    })
}

/// A denial by a rule the guard counts, of a job in `repository`.
fn deny_counted(
    policy: &Policy,
    repository: &str,
    rule: DenyRule,
    resource: ResourceId,
    reason: DenyReason,
) -> Decision {
    let project = with_lowercase(repository.as_bytes(), |r| policy.project_span(r));
    let names = Names::of(policy, repository, project, Some(resource), &reason);
    Decision::Deny(Denial {
        rule,
        resource: Some(resource),
        reason,
        names,
    })
}

/// The rules, in order. Every `return` is a decision; every `t.step` says why.
///
/// A rule whose fact the job does not have yet ([`Job::run`], [`Job::role`]) is skipped and
/// remembered; a later rule may still deny (a deny does not depend on the missing fact), and
/// otherwise the decision is [`Decision::Undecided`].
pub fn decide_with(policy: &Policy, job: &impl Job, t: &mut impl Tracer) -> Decision {
    let deny = |rule, resource, reason, at| deny(policy, job, rule, resource, reason, at);
    let labels = job.labels();
    // 1. Routing, unless the caller routed the job already.
    let routed = match (job.routed(), job.resource()) {
        (Some(routed), _) => routed,
        (None, Some(name)) => Ok(policy.resource_by_name(name)),
        (None, None) => policy.route_job(labels.iter().map(String::as_str), job.runner_group()),
    };
    let resource = match routed {
        Ok(None) => {
            t.step(Checked::Route, true, || {
                format!("no label of {labels:?} selects a managed resource")
            });
            return Decision::NotManaged;
        }
        Ok(Some(id)) => {
            t.step(Checked::Route, true, || {
                format!("labels select `{}`", policy.resource(id).name)
            });
            id
        }
        Err((a, b)) => {
            t.step(DenyRule::AmbiguousLabels, false, || {
                format!(
                    "labels select both `{}` and `{}`",
                    policy.resource(a).name,
                    policy.resource(b).name
                )
            });
            let repository = job.repository().as_bytes();
            let at = Located {
                project: with_lowercase(repository, |r| policy.project_span(r)),
                grant: None,
            };
            return deny(
                DenyRule::AmbiguousLabels,
                None,
                DenyReason::AmbiguousLabels(a, b),
                at,
            );
        }
    };
    let res = policy.resource(resource);

    // 2. The grant. The repository is lower-cased once: its owner, suffix and project are
    // compared and looked up as bytes of that one copy.
    let repository = job.repository();
    let located = with_lowercase(repository.as_bytes(), |repo| {
        let (start, end) = policy.project_span(repo)?;
        Some((start, end, policy.grant_of(&repo[start..end], resource)))
    });
    let Some((start, end, grant_id)) = located else {
        t.step(DenyRule::NoGrant, false, || {
            format!(
                "`{repository}` is not a project repository of {}",
                policy.org
            )
        });
        return deny(
            DenyRule::NoGrant,
            Some(resource),
            DenyReason::NotAProject,
            Located::default(),
        );
    };
    let project = &repository[start..end];
    let mut at = Located {
        project: Some((start, end)),
        grant: None,
    };
    let Some(grant_id) = grant_id else {
        t.step(DenyRule::NoGrant, false, || {
            format!("`{project}` holds no grant of `{}`", res.name)
        });
        return deny(DenyRule::NoGrant, Some(resource), DenyReason::NoGrant, at);
    };
    at.grant = Some(grant_id);
    let grant = policy.grant(grant_id);
    let today = job.today().unwrap_or(policy.compiled_on);
    match grant.validity().on(today) {
        Standing::Active => {}
        Standing::Expired(expires) => {
            t.step(DenyRule::Expired, false, || {
                format!(
                    "the grant of `{}` to `{project}` expired on {expires}",
                    res.name
                )
            });
            return deny(
                DenyRule::Expired,
                Some(resource),
                DenyReason::Expired(expires),
                at,
            );
        }
        Standing::NotYet(starts) => {
            t.step(DenyRule::NoGrant, false, || {
                format!(
                    "the grant of `{}` to `{project}` starts on {starts}",
                    res.name
                )
            });
            return deny(
                DenyRule::NoGrant,
                Some(resource),
                DenyReason::NotYetActive(starts),
                at,
            );
        }
    }
    t.step(DenyRule::NoGrant, true, || match grant.expires {
        Some(e) => format!("`{}` holds `{}` until {e}", grant.project, res.name),
        None => format!("`{}` holds `{}` with no expiry", grant.project, res.name),
    });

    let mut missing: Option<Missing> = None;
    match job.run() {
        Some(run) => {
            // 3. The event.
            let fork = match check_event(repository, grant, &run) {
                Ok(fork) => fork,
                Err(reason) => {
                    t.step(DenyRule::EventNotAllowed, false, || {
                        event_problem(&run, &reason)
                    });
                    return deny(DenyRule::EventNotAllowed, Some(resource), reason, at);
                }
            };
            t.step(DenyRule::EventNotAllowed, true, || {
                format!(
                    "`{}` is allowed{}",
                    run.event,
                    match fork {
                        Fork::No => "",
                        Fork::Yes | Fork::Unnamed => " (a fork: its owner is judged too)",
                    }
                )
            });

            // 4. The people: whoever caused the run, whoever triggered this attempt, and for
            // a fork, its owner, whose code runs.
            let owner = match (fork, run.head_owner) {
                (Fork::No, _) => None,
                (Fork::Yes, Some(owner)) => Some(owner),
                (Fork::Yes, None) | (Fork::Unnamed, _) => {
                    t.step(DenyRule::UserNotAllowed, false, || {
                        "the pull request's fork has no known owner (its repository is gone or was not reported), so nobody can vouch for its code".into()
                    });
                    return deny(
                        DenyRule::UserNotAllowed,
                        Some(resource),
                        DenyReason::UnknownForkOwner,
                        at,
                    );
                }
            };
            // A push to the project's own default branch: what `bots: trusted` covers.
            let trusted_push = fork == Fork::No
                && run.event.eq_ignore_ascii_case("push")
                && run
                    .git_ref
                    .zip(run.default_branch)
                    .is_some_and(|(r, d)| r.strip_prefix("refs/heads/") == Some(d));
            let people = [
                (Who::Actor, Some(run.actor)),
                (Who::TriggeringActor, run.triggering_actor),
                (Who::HeadOwner, owner),
            ];
            for (who, person) in people {
                let Some(person) = person else { continue };
                let role = job.role(person);
                match check_person(policy, res, grant, job, who, person, role, trusted_push) {
                    Err(reason) => {
                        t.step(DenyRule::UserNotAllowed, false, || {
                            format!(
                                "{} `{}`: {}",
                                who_name(who),
                                person.login,
                                person_problem(&reason)
                            )
                        });
                        // A run approval of this commit stands in for the whole rule.
                        match approval_stands_in(policy, res, grant, job, &run, t) {
                            StandIn::Approved => missing = None,
                            StandIn::RoleUnknown => missing = Some(Missing::Roles),
                            StandIn::No => {
                                return deny(DenyRule::UserNotAllowed, Some(resource), reason, at);
                            }
                        }
                        break;
                    }
                    Ok(Passed::Role(role)) => t.step(DenyRule::UserNotAllowed, true, || {
                        format!(
                            "{} `{}` ({}) may trigger jobs on `{}`",
                            who_name(who),
                            person.login,
                            role.map_or("no role", Permission::as_str),
                            res.name
                        )
                    }),
                    Ok(Passed::Unknown(m)) => {
                        t.step(DenyRule::UserNotAllowed, true, || {
                            format!(
                                "{} `{}`: {} not known yet",
                                who_name(who),
                                person.login,
                                match m {
                                    Missing::Teams => "membership of the grant's teams",
                                    _ => "role",
                                }
                            )
                        });
                        missing = Some(m);
                    }
                }
            }
        }
        None => {
            t.step(DenyRule::EventNotAllowed, true, || {
                "the run is not known yet: its event and people are judged once it is".into()
            });
            missing = Some(Missing::Run);
        }
    }

    // 5. Quotas.
    let usage = job.usage();
    if let Some(limit) = res.project_minutes_per_month
        && usage.project_minutes >= limit
    {
        t.step(DenyRule::QuotaExhausted, false, || {
            format!(
                "`{project}` used {} of its {limit} minutes this month",
                usage.project_minutes
            )
        });
        return deny(
            DenyRule::QuotaExhausted,
            Some(resource),
            DenyReason::ProjectQuota {
                used: usage.project_minutes,
                limit,
                resets: next_month(today),
            },
            at,
        );
    }
    if let Some(limit) = res.minutes_per_month
        && usage.resource_minutes >= limit
    {
        t.step(DenyRule::QuotaExhausted, false, || {
            format!(
                "`{}` used {} of its {limit} minutes this month",
                res.name, usage.resource_minutes
            )
        });
        return deny(
            DenyRule::QuotaExhausted,
            Some(resource),
            DenyReason::ResourceQuota {
                used: usage.resource_minutes,
                limit,
                resets: next_month(today),
            },
            at,
        );
    }
    t.step(DenyRule::QuotaExhausted, true, || {
        "within the month's quotas".into()
    });

    match missing {
        Some(m) => Decision::Undecided {
            resource,
            missing: m,
        },
        None => Decision::Allow {
            resource,
            grant: grant_id,
        },
    }
}

/// What a run approval does for a job its people alone do not let run.
enum StandIn {
    /// None covers the job, or its approver may not approve: the people rule's denial stands.
    No,
    /// It stands in for the people rule.
    Approved,
    /// It would, if its approver's role (not known yet) allows.
    RoleUnknown,
}

/// Rule 4's alternative: the run approval of the job's commit ([`crate::RunApproval`]), when
/// it covers this run on this resource and its approver may start the resource's jobs.
fn approval_stands_in(
    policy: &Policy,
    res: &CompiledResource,
    grant: &CompiledGrant,
    job: &impl Job,
    run: &Run<'_>,
    t: &mut impl Tracer,
) -> StandIn {
    let Some(approval) = job.run_approval() else {
        return StandIn::No;
    };
    if !approval.covers(run, run.head_sha, &res.name) {
        t.step(DenyRule::UserNotAllowed, false, || {
            format!(
                "the run approval of `{}` from `{}` by `{}` is not about this run's commit or resource",
                approval.head_sha, approval.head_repository, approval.approver.login
            )
        });
        return StandIn::No;
    }
    let Some(role) = job.role(&approval.approver) else {
        t.step(DenyRule::UserNotAllowed, true, || {
            format!(
                "run approval by `{}`: role not known yet",
                approval.approver.login
            )
        });
        return StandIn::RoleUnknown;
    };
    match crate::run_approval::may_approve(policy, res, grant, &approval.approver, role) {
        Ok(()) => {
            t.step(DenyRule::UserNotAllowed, true, || {
                format!(
                    "`{}` approved commit `{}` of `{}` for managed runners: the approval stands in for the people rule",
                    approval.approver.login, approval.head_sha, approval.head_repository
                )
            });
            StandIn::Approved
        }
        Err(why) => {
            t.step(DenyRule::UserNotAllowed, false, || {
                format!(
                    "the run approval by `{}` does not count: the approver {}",
                    approval.approver.login,
                    why.describe()
                )
            });
            StandIn::No
        }
    }
}

/// Whether a job's code comes from a fork.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fork {
    No,
    Yes,
    /// A pull request without a head repository: a fork nobody can name, whose owner is
    /// unknown whatever the job says.
    Unnamed,
}

/// Rule 3: the event may use the grant. `Ok` says whether the code comes from a fork (whose
/// owner rule 4 then judges too).
fn check_event(repository: &str, grant: &CompiledGrant, run: &Run<'_>) -> Result<Fork, DenyReason> {
    let event = run.event;
    if event.eq_ignore_ascii_case("pull_request_target") {
        return Err(DenyReason::PullRequestTarget);
    }
    let pull_request = is_pull_request_event(event);
    if pull_request && !grant.pull_request {
        return Err(DenyReason::PullRequestNotAllowed);
    }
    // A pull request whose head repository is gone (or was not reported) is a fork whose
    // owner nobody knows; any event naming another head repository runs someone else's code.
    let fork = match run.head_repository {
        Some(head) if head.eq_ignore_ascii_case(repository) => Fork::No,
        Some(_) => Fork::Yes,
        None if pull_request => Fork::Unnamed,
        None => Fork::No,
    };
    if fork != Fork::No && !grant.forks {
        return Err(DenyReason::ForkNotAllowed {
            head: run.head_repository.map(Box::from),
        });
    }
    Ok(fork)
}

fn event_problem(run: &Run<'_>, reason: &DenyReason) -> String {
    match reason {
        DenyReason::PullRequestTarget => "`pull_request_target` runs with the base repository's secrets on behalf of any pull request; it never gets a managed resource".into(),
        DenyReason::PullRequestNotAllowed => format!(
            "the grant does not allow pull request builds (`{}`)",
            run.event
        ),
        DenyReason::ForkNotAllowed { head } => format!(
            "the code comes from the fork `{}` and the grant does not allow forks",
            head.as_deref().unwrap_or("(unknown)")
        ),
        _ => String::new(),
    }
}

/// What rule 4 says of a person it does not deny.
enum Passed {
    /// Passes, holding this role.
    Role(Option<Permission>),
    /// Passes every check that can be made, but this fact is not known yet: their role, or
    /// (for someone the grant does not list by name) whether they are in one of its teams.
    Unknown(Missing),
}

/// Rule 4 for one person: a role the resource allows, in the grant's user list by account id
/// or a member of one of the teams it names (as Cirun's `teams` let in), and the terms of
/// service accepted when the resource requires them.
#[allow(clippy::too_many_arguments)]
fn check_person(
    policy: &Policy,
    res: &CompiledResource,
    grant: &CompiledGrant,
    job: &impl Job,
    who: Who,
    person: &Actor,
    role: Option<Option<Permission>>,
    trusted_push: bool,
) -> Result<Passed, DenyReason> {
    let role = if policy.is_bot(person.id) {
        // A bot is never a maintainer; on a resource that trusts bots, its push to the
        // project's default branch is not judged by role (its list and terms still are).
        if !(res.bots_trusted && trusted_push) {
            return Err(DenyReason::Bot { who });
        }
        Some(role.flatten())
    } else {
        if let Some(permission) = role
            && !res.allows(permission)
        {
            return Err(DenyReason::MissingRole { who, permission });
        }
        role
    };
    // `None`: not listed by name, and a team's members are not known (the terms of service
    // may still deny).
    let listed = if grant.allows_user(person.id) {
        Some(true)
    } else {
        in_a_team(grant, job, person)
    };
    if listed == Some(false) {
        return Err(DenyReason::NotListed { who });
    }
    if res.require_tos && !policy.accepted_tos(person.id) {
        return Err(DenyReason::TermsNotAccepted { who });
    }
    Ok(match (role, listed) {
        (None, _) => Passed::Unknown(Missing::Roles),
        (Some(_), None) => Passed::Unknown(Missing::Teams),
        (Some(role), Some(_)) => Passed::Role(role),
    })
}

/// Whether `person` is a member of one of the teams the grant names: `None` when they are in
/// none of those known and some team's members are not known.
fn in_a_team(grant: &CompiledGrant, job: &impl Job, person: &Actor) -> Option<bool> {
    let mut unknown = false;
    for team in grant.teams() {
        match job.in_team(team, person) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => unknown = true,
        }
    }
    (!unknown).then_some(false)
}

fn who_name(who: Who) -> &'static str {
    match who {
        Who::Actor => "actor",
        Who::TriggeringActor => "triggering actor",
        Who::HeadOwner => "fork owner",
    }
}

fn person_problem(reason: &DenyReason) -> String {
    match reason {
        DenyReason::MissingRole { permission, .. } => format!(
            "has {} on the repository, not a role that may use the resource",
            permission.map_or("no role".to_string(), |p| format!(
                "the `{}` role",
                p.as_str()
            ))
        ),
        DenyReason::NotListed { .. } => {
            "is neither in the grant's list of users nor a member of a team it names".into()
        }
        DenyReason::Bot { .. } => {
            "is a bot (gatehouse.yml `bots`), never a maintainer whatever its role".into()
        }
        DenyReason::TermsNotAccepted { .. } => {
            "has not accepted the provider's terms of service (matched by account id)".into()
        }
        _ => String::new(),
    }
}

impl Decision {
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::NotManaged => "not-managed",
            Decision::Allow { .. } => "allow",
            Decision::Deny(_) => "deny",
            Decision::Undecided { .. } => "undecided",
        }
    }

    /// A job over a concurrency cap (the guard counts the jobs; the policy does not).
    pub fn concurrency_exhausted(
        policy: &Policy,
        repository: &str,
        resource: ResourceId,
        cap: Cap,
        running: u32,
        limit: u32,
        provider: &str,
    ) -> Decision {
        deny_counted(
            policy,
            repository,
            DenyRule::ConcurrencyExhausted,
            resource,
            DenyReason::Concurrency {
                cap,
                running,
                limit,
                provider: provider.into(),
            },
        )
    }

    /// A job that only used-up sponsor credit pools fund (the guard keeps the pools' books;
    /// the policy does not). `pools` names them, with their sponsors.
    pub fn budget_exhausted(
        policy: &Policy,
        repository: &str,
        resource: ResourceId,
        pools: &str,
    ) -> Decision {
        deny_counted(
            policy,
            repository,
            DenyRule::BudgetExhausted,
            resource,
            DenyReason::Budget {
                pools: pools.into(),
            },
        )
    }

    /// The denial of a job whose missing fact could not be had in time: the guard's answer
    /// to an [`Decision::Undecided`] that outlived its deadline.
    pub fn facts_unavailable(
        policy: &Policy,
        repository: &str,
        resource: ResourceId,
        missing: Missing,
    ) -> Decision {
        deny_counted(
            policy,
            repository,
            DenyRule::FactsUnavailable,
            resource,
            DenyReason::FactsUnavailable(missing),
        )
    }

    pub fn rule(&self) -> Option<DenyRule> {
        match self {
            Decision::Deny(d) => Some(d.rule),
            _ => None,
        }
    }

    pub fn resource(&self) -> Option<ResourceId> {
        match self {
            Decision::NotManaged => None,
            Decision::Allow { resource, .. } | Decision::Undecided { resource, .. } => {
                Some(*resource)
            }
            Decision::Deny(d) => d.resource,
        }
    }

    /// What the person whose job was denied should read: what happened and what to do.
    pub fn message(&self) -> Option<String> {
        let Decision::Deny(d) = self else {
            return None;
        };
        let names = &*d.names;
        let resource = &*names.resource;
        let repository = &*names.repository;
        let project = names.project();
        let request = |action: &str| {
            format!(
                "file a request in the access repository: `action: {action}`, `projects: [{project}]`, `resources: [{resource}]`"
            )
        };
        // The person the reason is about (its `who`).
        let login = names.person.as_ref().map_or("(unknown)", |p| &*p.0);
        let text = match &d.reason {
            DenyReason::AmbiguousLabels(..) => {
                let both = names.rare().and_then(|r| r.both.as_ref());
                let (a, b) = both.map_or(("", ""), |(a, b)| (&**a, &**b));
                format!(
                    "the job's labels select two managed resources, `{a}` and `{b}`; a job may ask for one. Keep one resource's label in `runs-on`"
                )
            }
            DenyReason::NotAProject => format!(
                "`{repository}` is not a project repository of {}, so it cannot use `{resource}`; only the organisation's project repositories can hold grants",
                names.org()
            ),
            DenyReason::NoGrant => format!(
                "`{project}` has no grant for `{resource}`. To ask for one, {}",
                request("grant")
            ),
            DenyReason::NotYetActive(on) => format!(
                "`{project}`'s grant of `{resource}` starts on {on}; jobs on it run from that day"
            ),
            DenyReason::Expired(on) => format!(
                "`{project}`'s grant of `{resource}` expired on {on}. To renew it, {}",
                request("renew")
            ),
            DenyReason::PullRequestTarget => format!(
                "`pull_request_target` workflows never run on `{resource}`: they run with the repository's secrets on code anyone can propose. Use `pull_request` (if the grant allows it) or `push`"
            ),
            DenyReason::PullRequestNotAllowed => format!(
                "`{project}`'s grant of `{resource}` does not cover pull request builds. To add them, {} with `pull_request: true`",
                request("grant")
            ),
            DenyReason::ForkNotAllowed { head } => format!(
                "this pull request comes from the fork `{}`; `{project}`'s grant of `{resource}` does not let forks use it (`forks: false`). Push the branch to `{repository}` to run it there",
                head.as_deref().unwrap_or("(unknown)"),
            ),
            DenyReason::UnknownForkOwner => format!(
                "this pull request's fork has no known owner (its repository was deleted, or GitHub did not say), so nobody with a role on `{repository}` vouches for the code it runs on `{resource}`. Push the branch to `{repository}` to run it there"
            ),
            DenyReason::MissingRole { who, .. } => {
                let roles = role_names(names.roles);
                let (whose, what) = if *who == Who::HeadOwner {
                    (
                        " (the code of this pull request is theirs)",
                        format!(
                            "a maintainer can push the pull request's branch to `{repository}` and run it there"
                        ),
                    )
                } else {
                    ("", "ask a maintainer to run the job".to_string())
                };
                format!(
                    "{} `{}`{whose} {}. Jobs on `{resource}` can be started by people with the {roles} role on `{repository}`; {what}",
                    who_name(*who),
                    login,
                    person_problem(&d.reason),
                )
            }
            DenyReason::Bot { who } => format!(
                "{} `{}` is a bot (`bots` in gatehouse.yml): a bot is never a maintainer, so its runs on `{resource}` need a maintainer's approval of the commit",
                who_name(*who),
                login,
            ),
            DenyReason::NotListed { who } => {
                let teams = names.rare().map_or(&[][..], |r| &r.teams[..]);
                let (teams, or_team) = if teams.is_empty() {
                    (String::new(), "")
                } else {
                    (
                        format!(
                            ", and is in none of the teams it names ({})",
                            teams
                                .iter()
                                .map(|t| format!("`{}/{t}`", names.org()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        ", or join one of those teams",
                    )
                };
                format!(
                    "{} `{}` is not in the list of users of `{project}`'s grant of `{resource}`{teams}. To be added, {} listing the user under `users`{or_team}",
                    who_name(*who),
                    login,
                    request("grant")
                )
            }
            DenyReason::TermsNotAccepted { who } => format!(
                "{} `{}` (account {}) has not accepted the terms of service of `{resource}`. Accept them by adding yourself to people/tos.yml with your login and numeric account id",
                who_name(*who),
                login,
                names.person.as_ref().map_or(0, |p| p.1)
            ),
            DenyReason::ProjectQuota {
                used,
                limit,
                resets,
            } => format!(
                "`{project}` has used {used} of its {limit} minutes on `{resource}` this month; the quota resets on {resets}"
            ),
            DenyReason::ResourceQuota {
                used,
                limit,
                resets,
            } => format!(
                "all projects together have used {used} of the {limit} minutes of `{resource}` this month; the quota resets on {resets}"
            ),
            DenyReason::Concurrency {
                cap,
                running,
                limit,
                provider,
            } => {
                let jobs = |n: u32| {
                    if n == 1 {
                        "1 job".to_string()
                    } else {
                        format!("{n} jobs")
                    }
                };
                let what = match cap {
                    Cap::Resource => format!("`{resource}` runs {} at once at most", jobs(*limit)),
                    Cap::Project => format!(
                        "`{project}` may run {} at once on `{resource}` at most",
                        jobs(*limit)
                    ),
                    Cap::Provider => format!(
                        "the organisation runs {} at once on `{provider}`'s resources at most",
                        jobs(*limit)
                    ),
                };
                let running = match running {
                    1 => "1 is running".to_string(),
                    n => format!("{n} are running"),
                };
                format!(
                    "{what}, and {running}. Nothing is wrong with this job: re-run it and it will pass once one of them finishes"
                )
            }
            DenyReason::Budget { pools } => format!(
                "`{resource}` is paid for here by {pools}, and what is left does not cover this job. Jobs that no used-up pool funds are not affected; a re-run passes once the sponsor tops the pool up or another pool funds `{resource}` (see the pools page of the organisation's gatehouse guard)"
            ),
            DenyReason::FactsUnavailable(missing) => format!(
                "gatehouse could not ask GitHub for {} in time, so it cannot tell whether this job may use `{resource}`, and refuses it rather than let it through. Re-run the job in a few minutes; if this persists, the organisation's gatehouse guard cannot reach GitHub (its /healthz says why)",
                match missing {
                    Missing::Run => "the run's event and the people who started it",
                    Missing::Roles => "the roles of the people who started it",
                    Missing::Teams =>
                        "the members of the teams its grant names (team membership could not be checked)",
                }
            ),
        };
        let approval = names.rare().and_then(|r| r.approval.as_ref());
        let hint = approval.map(|a| how_to_approve(names, a));
        Some(match hint {
            Some(hint) => format!("{text}. {hint}"),
            None => text,
        })
    }
}

/// What a pull request's job denied by the people rule is told about run approvals: who can
/// approve its commit, and what to write.
fn how_to_approve(names: &Names, hint: &ApprovalHint) -> String {
    let roles = role_names(names.roles);
    let repository = &*names.repository;
    let project = names.project();
    let phrase = &hint.phrase;
    let mut who = format!("the {roles} role on `{repository}`");
    if hint.users_listed {
        who.push_str(", listed in the grant's users");
    }
    if hint.require_tos {
        who.push_str(", terms of service accepted");
    }
    let sha = hint
        .head_sha
        .as_deref()
        .map_or("<commit>", |s| s.get(..12).unwrap_or(s));
    format!(
        "Someone who may start jobs on `{}` for `{project}` ({who}) can approve this pull request's commit for managed runners: a new comment on the pull request saying `{phrase} {sha}`, or an approving review whose text says `{phrase}`. An approval holds for this commit only; a push needs a new one",
        names.resource
    )
}

/// The roles of a role mask, strongest first, as a message lists them.
fn role_names(roles: u8) -> String {
    permissions_in(roles)
        .map(Permission::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first day of the month after `day`.
fn next_month(day: Date) -> Date {
    let first = day.first_of_month();
    first
        .checked_add(jiff::Span::new().months(1))
        .unwrap_or(first)
}
