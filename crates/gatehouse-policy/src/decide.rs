//! `decide`: may this CI job run on the resource its labels ask for?
//!
//! The rules of DESIGN.md section 5, in their order, each with a stable code:
//!
//! 1. `ambiguous-labels`: the labels route to more than one resource.
//! 2. `no-grant`: the project holds no grant of the resource; `expired`: it held one.
//! 3. `event-not-allowed`: `pull_request_target` always; `pull_request` unless the grant allows
//!    it; code from a fork unless the grant explicitly allows forks.
//! 4. `user-not-allowed`: `actor` or `triggering_actor` lacks a required role, is not in the
//!    grant's user list, or has not accepted the terms of service (matched by numeric id).
//! 5. `quota-exhausted`: the project's or the resource's minutes for the month are used up.
//!
//! One function, [`decide_with`], implements the rules; [`Policy::decide`] runs it with a tracer
//! that compiles to nothing, [`Policy::explain`] with one that records every step, so the
//! explanation can never disagree with the decision.

use std::fmt;

use gatehouse_core::model::Standing;
use gatehouse_core::names::{label_key_end, never_routes};
use jiff::civil::Date;
use serde::Serialize;

use crate::compile::{GrantId, Policy, ResourceId, Route, with_lowercase};
use crate::job::{Actor, JobContext, Permission};

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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub rule: DenyRule,
    /// The resource the labels routed to (absent only for ambiguous labels).
    pub resource: Option<ResourceId>,
    pub reason: DenyReason,
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
}

impl DenyRule {
    pub const ALL: [DenyRule; 6] = [
        DenyRule::AmbiguousLabels,
        DenyRule::NoGrant,
        DenyRule::Expired,
        DenyRule::EventNotAllowed,
        DenyRule::UserNotAllowed,
        DenyRule::QuotaExhausted,
    ];

    pub fn code(self) -> &'static str {
        match self {
            DenyRule::AmbiguousLabels => "ambiguous-labels",
            DenyRule::NoGrant => "no-grant",
            DenyRule::Expired => "expired",
            DenyRule::EventNotAllowed => "event-not-allowed",
            DenyRule::UserNotAllowed => "user-not-allowed",
            DenyRule::QuotaExhausted => "quota-exhausted",
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

/// Which of the job's two people a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Actor,
    TriggeringActor,
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
    ForkNotAllowed,
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
    ProjectQuota {
        used: u64,
        limit: u64,
    },
    ResourceQuota {
        used: u64,
        limit: u64,
    },
}

/// One step of an explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub rule: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// Receives each rule's result. The no-op tracer makes `decide` pay nothing for explanations.
pub trait Tracer {
    fn step(&mut self, rule: &'static str, passed: bool, detail: impl FnOnce() -> String);
}

struct NoTrace;

impl Tracer for NoTrace {
    #[inline(always)]
    fn step(&mut self, _: &'static str, _: bool, _: impl FnOnce() -> String) {}
}

impl Tracer for Vec<Step> {
    fn step(&mut self, rule: &'static str, passed: bool, detail: impl FnOnce() -> String) {
        self.push(Step {
            rule,
            passed,
            detail: detail(),
        });
    }
}

impl Policy {
    /// Decides one job.
    pub fn decide(&self, job: &JobContext) -> Decision {
        decide_with(self, job, &mut NoTrace)
    }

    /// Decides one job and records every rule it passed or failed.
    pub fn explain(&self, job: &JobContext) -> (Decision, Vec<Step>) {
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
    pub fn route<'a>(
        &self,
        labels: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<ResourceId>, (ResourceId, ResourceId)> {
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
    ) -> Result<Option<ResourceId>, (ResourceId, ResourceId)> {
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
    pub fn route_group(&self, group: &str) -> Result<Option<ResourceId>, (ResourceId, ResourceId)> {
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

fn is_pull_request_event(event: &str) -> bool {
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

fn deny(rule: DenyRule, resource: Option<ResourceId>, reason: DenyReason) -> Decision {
    Decision::Deny(Denial {
        rule,
        resource,
        reason,
    })
}

/// The rules, in order. Every `return` is a decision; every `t.step` says why.
pub fn decide_with(policy: &Policy, job: &JobContext, t: &mut impl Tracer) -> Decision {
    // 1. Routing.
    let resource = match policy.route(job.labels.iter().map(String::as_str)) {
        Ok(None) => {
            t.step("route", true, || {
                format!("no label of {:?} selects a managed resource", job.labels)
            });
            return Decision::NotManaged;
        }
        Ok(Some(id)) => {
            t.step("route", true, || {
                format!("labels select `{}`", policy.resource(id).name)
            });
            id
        }
        Err((a, b)) => {
            t.step("ambiguous-labels", false, || {
                format!(
                    "labels select both `{}` and `{}`",
                    policy.resource(a).name,
                    policy.resource(b).name
                )
            });
            return deny(
                DenyRule::AmbiguousLabels,
                None,
                DenyReason::AmbiguousLabels(a, b),
            );
        }
    };
    let res = policy.resource(resource);

    // 2. The grant. The repository is lower-cased once: its owner, suffix and project are
    // compared and looked up as bytes of that one copy.
    let located = with_lowercase(job.repository.as_bytes(), |repo| {
        let (start, end) = policy.project_span(repo)?;
        Some((start, end, policy.grant_of(&repo[start..end], resource)))
    });
    let Some((start, end, grant_id)) = located else {
        t.step("no-grant", false, || {
            format!(
                "`{}` is not a project repository of {}",
                job.repository, policy.org
            )
        });
        return deny(DenyRule::NoGrant, Some(resource), DenyReason::NotAProject);
    };
    let project = &job.repository[start..end];
    let Some(grant_id) = grant_id else {
        t.step("no-grant", false, || {
            format!("`{project}` holds no grant of `{}`", res.name)
        });
        return deny(DenyRule::NoGrant, Some(resource), DenyReason::NoGrant);
    };
    let grant = policy.grant(grant_id);
    let today = job.today.map_or(policy.compiled_on, |d| d.0);
    match grant.validity().on(today) {
        Standing::Active => {}
        Standing::Expired(expires) => {
            t.step("expired", false, || {
                format!(
                    "the grant of `{}` to `{project}` expired on {expires}",
                    res.name
                )
            });
            return deny(
                DenyRule::Expired,
                Some(resource),
                DenyReason::Expired(expires),
            );
        }
        Standing::NotYet(starts) => {
            t.step("no-grant", false, || {
                format!(
                    "the grant of `{}` to `{project}` starts on {starts}",
                    res.name
                )
            });
            return deny(
                DenyRule::NoGrant,
                Some(resource),
                DenyReason::NotYetActive(starts),
            );
        }
    }
    t.step("no-grant", true, || match grant.expires {
        Some(e) => format!("`{}` holds `{}` until {e}", grant.project, res.name),
        None => format!("`{}` holds `{}` with no expiry", grant.project, res.name),
    });

    // 3. The event.
    let event = job.event.as_str();
    if event.eq_ignore_ascii_case("pull_request_target") {
        t.step("event-not-allowed", false, || {
            "`pull_request_target` runs with the base repository's secrets on behalf of any pull request; it never gets a managed resource".into()
        });
        return deny(
            DenyRule::EventNotAllowed,
            Some(resource),
            DenyReason::PullRequestTarget,
        );
    }
    if is_pull_request_event(event) && !grant.pull_request {
        t.step("event-not-allowed", false, || {
            format!("the grant does not allow pull request builds (`{event}`)")
        });
        return deny(
            DenyRule::EventNotAllowed,
            Some(resource),
            DenyReason::PullRequestNotAllowed,
        );
    }
    let from_fork = job
        .head_repository
        .as_deref()
        .is_some_and(|h| !h.eq_ignore_ascii_case(&job.repository));
    if from_fork && !grant.forks {
        t.step("event-not-allowed", false, || {
            format!(
                "the code comes from the fork `{}` and the grant does not allow forks",
                job.head_repository.as_deref().unwrap_or_default()
            )
        });
        return deny(
            DenyRule::EventNotAllowed,
            Some(resource),
            DenyReason::ForkNotAllowed,
        );
    }
    t.step("event-not-allowed", true, || {
        format!(
            "`{event}` is allowed{}",
            if from_fork { " (forks allowed)" } else { "" }
        )
    });

    // 4. The people.
    let people = [
        (Who::Actor, &job.actor),
        (Who::TriggeringActor, job.triggering()),
    ];
    for (who, actor) in people {
        if who == Who::TriggeringActor && std::ptr::eq(actor, &job.actor) {
            break; // no separate triggering actor
        }
        if let Some(reason) = check_person(policy, res, grant, who, actor) {
            t.step("user-not-allowed", false, || {
                format!(
                    "{} `{}`: {}",
                    who_name(who),
                    actor.login,
                    person_problem(&reason)
                )
            });
            return deny(DenyRule::UserNotAllowed, Some(resource), reason);
        }
        t.step("user-not-allowed", true, || {
            format!(
                "{} `{}` ({}) may trigger jobs on `{}`",
                who_name(who),
                actor.login,
                actor.permission.map_or("no role", Permission::as_str),
                res.name
            )
        });
    }

    // 5. Quotas.
    if let Some(limit) = res.project_minutes_per_month
        && job.usage.project_minutes >= limit
    {
        t.step("quota-exhausted", false, || {
            format!(
                "`{project}` used {} of its {limit} minutes this month",
                job.usage.project_minutes
            )
        });
        return deny(
            DenyRule::QuotaExhausted,
            Some(resource),
            DenyReason::ProjectQuota {
                used: job.usage.project_minutes,
                limit,
            },
        );
    }
    if let Some(limit) = res.minutes_per_month
        && job.usage.resource_minutes >= limit
    {
        t.step("quota-exhausted", false, || {
            format!(
                "`{}` used {} of its {limit} minutes this month",
                res.name, job.usage.resource_minutes
            )
        });
        return deny(
            DenyRule::QuotaExhausted,
            Some(resource),
            DenyReason::ResourceQuota {
                used: job.usage.resource_minutes,
                limit,
            },
        );
    }
    t.step("quota-exhausted", true, || {
        "within the month's quotas".into()
    });

    Decision::Allow {
        resource,
        grant: grant_id,
    }
}

fn check_person(
    policy: &Policy,
    res: &crate::compile::CompiledResource,
    grant: &crate::compile::CompiledGrant,
    who: Who,
    actor: &Actor,
) -> Option<DenyReason> {
    if !res.allows(actor.permission) {
        return Some(DenyReason::MissingRole {
            who,
            permission: actor.permission,
        });
    }
    if !grant.allows_user(&actor.login) {
        return Some(DenyReason::NotListed { who });
    }
    if res.require_tos && !policy.accepted_tos(actor.id) {
        return Some(DenyReason::TermsNotAccepted { who });
    }
    None
}

fn who_name(who: Who) -> &'static str {
    match who {
        Who::Actor => "actor",
        Who::TriggeringActor => "triggering actor",
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
        DenyReason::NotListed { .. } => "is not in the grant's list of users".into(),
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
        }
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
            Decision::Allow { resource, .. } => Some(*resource),
            Decision::Deny(d) => d.resource,
        }
    }

    /// What the person whose job was denied should read: what happened and what to do.
    pub fn message(&self, policy: &Policy, job: &JobContext) -> Option<String> {
        let Decision::Deny(d) = self else {
            return None;
        };
        let name = |id: Option<ResourceId>| {
            id.map_or_else(String::new, |id| policy.resource(id).name.to_string())
        };
        let resource = name(d.resource);
        let project = policy
            .project_of(&job.repository)
            .unwrap_or(&job.repository);
        let request = |action: &str| {
            format!(
                "file a request in the access repository: `action: {action}`, `projects: [{project}]`, `resources: [{resource}]`"
            )
        };
        Some(match &d.reason {
            DenyReason::AmbiguousLabels(a, b) => format!(
                "the job's labels select two managed resources, `{}` and `{}`; a job may ask for one. Keep one resource's label in `runs-on`",
                name(Some(*a)),
                name(Some(*b))
            ),
            DenyReason::NotAProject => format!(
                "`{}` is not a project repository of {}, so it cannot use `{resource}`; only the organisation's project repositories can hold grants",
                job.repository, policy.org
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
            DenyReason::ForkNotAllowed => format!(
                "this pull request comes from the fork `{}`; `{project}`'s grant of `{resource}` does not let forks use it. Push the branch to `{}` to run it there",
                job.head_repository.as_deref().unwrap_or_default(),
                job.repository
            ),
            DenyReason::MissingRole { who, .. } => {
                let actor = person(job, *who);
                format!(
                    "{} `{}` {}. Jobs on `{resource}` can be started by people with the {} role on `{}`; ask a maintainer to run the job",
                    who_name(*who),
                    actor.login,
                    person_problem(&d.reason),
                    policy
                        .resource(d.resource.unwrap_or(ResourceId(0)))
                        .roles()
                        .map(Permission::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    job.repository
                )
            }
            DenyReason::NotListed { who } => {
                let actor = person(job, *who);
                format!(
                    "{} `{}` is not in the list of users of `{project}`'s grant of `{resource}`. To be added, {} listing the user under `users`",
                    who_name(*who),
                    actor.login,
                    request("grant")
                )
            }
            DenyReason::TermsNotAccepted { who } => {
                let actor = person(job, *who);
                format!(
                    "{} `{}` (account {}) has not accepted the terms of service of `{resource}`. Accept them by adding yourself to people/tos.yml with your login and numeric account id",
                    who_name(*who),
                    actor.login,
                    actor.id
                )
            }
            DenyReason::ProjectQuota { used, limit } => format!(
                "`{project}` has used {used} of its {limit} minutes on `{resource}` this month; the quota resets on {}",
                next_month(job.today.map_or(policy.compiled_on, |d| d.0))
            ),
            DenyReason::ResourceQuota { used, limit } => format!(
                "all projects together have used {used} of the {limit} minutes of `{resource}` this month; the quota resets on {}",
                next_month(job.today.map_or(policy.compiled_on, |d| d.0))
            ),
        })
    }
}

fn person(job: &JobContext, who: Who) -> &Actor {
    match who {
        Who::Actor => &job.actor,
        Who::TriggeringActor => job.triggering(),
    }
}

/// The first day of the month after `day`.
fn next_month(day: Date) -> Date {
    let first = day.first_of_month();
    first
        .checked_add(jiff::Span::new().months(1))
        .unwrap_or(first)
}
