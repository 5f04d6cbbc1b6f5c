//! `render cedar`: the same policy as Cedar policies over entities, an independent oracle.
//!
//! The ledger becomes entities; the rules become a few fixed policies that never change with
//! the ledger (one policy per grant makes Cedar about 500 times slower). Nothing here depends
//! on the Cedar crate: the policies are text, the entities and the request are JSON in Cedar's
//! formats, and the tests load them with `cedar-policy` and compare its answers with
//! [`Policy::decide`](crate::Policy::decide).
//!
//! The model:
//! - `Grant::"<project>/<resource>"` (project lower-cased): `runner` (the `Runner`),
//!   `pull_request`, `forks` (whether forks' pull requests may use it: the grant's, else its
//!   resource's default, else true), `granted` and, when they apply, `expires` (days since
//!   1970-01-01) and `users` (the `User`s of its user list, by account id), and `teams` (the
//!   lower-cased slugs of the teams its user list names, whose members pass it too). Expired
//!   grants are included: `expired` is not `no-grant`.
//! - `Runner::"<resource>"`: `name` (lower-cased, as run approvals name it), `roles`,
//!   `require_tos`, `bots_trusted` (`bots: trusted`), and when set `project_quota` and
//!   `total_quota` (minutes per month).
//! - `User::"<numeric id>"` in `Group::"tos"` for everyone who accepted the terms of service,
//!   and in `Group::"bots"` for `gatehouse.yml`'s bots (never maintainers).
//! - Who is in a team is a fact of the request, like a person's role: each person of the
//!   context carries `teams`, the lower-cased slugs of the teams the job's facts say they are
//!   in ([`JobContext::teams`]).
//! - A run approval of the job's commit (`/gatehouse run <sha>`), when the guard holds one, is a
//!   fact of the request's context (`approval`), like the commit, the head repository, the ref
//!   and the default branch: the policies themselves say whether it covers the job and whether
//!   its approver may approve, and it lifts every people `forbid` but the unknown fork owner's.
//! - The request: principal `User::"<actor id>"`, action `Action::"run"`, resource the grant
//!   the job asks for, computed from names alone ([`request`]); when the project holds no such
//!   grant, the entity is absent and no policy permits. The context carries the facts of the
//!   job ([`SCHEMA`] spells them out).
//!
//! Routing labels to a resource and repositories to projects is naming, not policy: it stays
//! outside Cedar, done by [`Policy::route`](crate::Policy::route) and
//! [`Policy::project_of`](crate::Policy::project_of).
//!
//! Every policy carries `@id("<rule>[.<detail>]")`, naming the gatehouse rule it implements;
//! [`decision_of`] turns Cedar's answer back into gatehouse's. Cedar skips a policy whose
//! evaluation fails, so a failing `forbid` would let a job through: the policies validate
//! strictly against [`SCHEMA`], the entities and the request are built to match it, and the
//! tests treat any evaluation error as a failure.

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use gatehouse_core::Repo;
use jiff::civil::Date;
use serde_json::{Value, json};

use crate::compile::{Policy, ResourceId};
use crate::decide::DenyRule;
use crate::job::{Actor, JobContext};

/// The policy as Cedar reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct CedarPolicy {
    /// Cedar policies; the same text for every ledger, apart from the header.
    pub policies: String,
    /// The entities, in Cedar's JSON format.
    pub entities: Value,
}

/// The Cedar schema that the policies, the entities and the requests follow.
pub const SCHEMA: &str = r#"// gatehouse's Cedar model (render cedar).

entity Group;

// A person, by numeric GitHub account id; in Group::"tos" after accepting the terms of service.
entity User in [Group];

// A resource.
entity Runner {
  name: String,           // lower-cased, as run approvals name resources
  roles: Set<String>,     // repository roles that may trigger jobs
  require_tos: Bool,
  bots_trusted: Bool,     // bots' pushes to a project's own default branch are not judged by role
  project_quota?: Long,   // minutes per project per month
  total_quota?: Long,     // minutes for all projects per month
};

// One project's grant of one resource: Grant::"<project>/<resource>".
entity Grant {
  runner: Runner,
  pull_request: Bool,
  forks: Bool,
  granted: Long,          // first day, in days since 1970-01-01
  expires?: Long,         // last day, in days since 1970-01-01
  users?: Set<User>,      // by account id, when the grant narrows who may trigger jobs
  teams: Set<String>,     // lower-cased team slugs whose members pass `users` too
};

type Person = {
  login: String,          // lower-cased
  permission: String,     // the role on the repository, "none" when there is none
  user: User,
  teams: Set<String>,     // the lower-cased slugs of the teams the person is in, as the job's facts say
};

// A run approval of a pull request's head commit, as the guard recorded it.
type Approval = {
  approver: Person,
  head_sha: String,        // lower-cased
  head_repository: String, // lower-cased
  resources: Set<String>,  // lower-cased; empty: every resource the project holds
};

action run appliesTo {
  principal: User,
  resource: Grant,
  context: {
    today: Long,          // days since 1970-01-01
    event: String,
    from_fork: Bool,      // the code comes from a fork (a pull request without a head repository too)
    actor: Person,
    triggering: Person,
    head_owner?: Person,  // the fork's owner, when the code comes from a fork that names one
    head_repository?: String, // lower-cased
    head_sha?: String,    // lower-cased
    git_ref?: String,
    default_ref?: String, // "refs/heads/<the repository's default branch>", when known
    approval?: Approval,  // the run approval of the job's commit the guard holds, if any
    usage: { project_minutes: Long, resource_minutes: Long },
  },
};
"#;

/// The policies. Every `forbid` starts with `resource has runner`, true exactly when the grant
/// exists, so that a job without a grant is denied by no policy at all (`no-grant`) rather than
/// by a rule gatehouse never reaches for it.
const POLICIES: &str = r#"// A job may run on a resource its project holds a grant of (the Runner must exist too),
@id("no-grant")
permit (principal, action == Action::"run", resource is Grant)
when { resource has runner && resource.runner has roles };

// unless the grant has not started yet,
@id("no-grant.not-yet")
forbid (principal, action == Action::"run", resource is Grant)
when { resource has runner && context.today < resource.granted };

// or it expired,
@id("expired")
forbid (principal, action == Action::"run", resource is Grant)
when { resource has runner && resource has expires && resource.expires < context.today };

// or the event is not allowed,
@id("event-not-allowed.pull_request_target")
forbid (principal, action == Action::"run", resource is Grant)
when { resource has runner && context.event == "pull_request_target" };

@id("event-not-allowed.pull_request")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner &&
  ["pull_request", "pull_request_review", "pull_request_review_comment"].contains(context.event) &&
  !resource.pull_request
};

@id("event-not-allowed.fork")
forbid (principal, action == Action::"run", resource is Grant)
when { resource has runner && context.from_fork && !resource.forks };

// or a person may not trigger jobs: a bot is never a maintainer (only a trusted bot's push to
// the default branch is not judged by role), and a run approval of the job's commit by someone
// who may run it stands in for every person (each `unless` is the same condition),
@id("user-not-allowed.actor.role")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && !(context.actor.user in Group::"bots") &&
  !resource.runner.roles.contains(context.actor.permission)
}
unless { {approved} };

@id("user-not-allowed.actor.bot")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && context.actor.user in Group::"bots" &&
  !(resource.runner.bots_trusted && {trusted_push})
}
unless { {approved} };

@id("user-not-allowed.actor.users")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && resource has users && !resource.users.contains(context.actor.user) &&
  !resource.teams.containsAny(context.actor.teams)
}
unless { {approved} };

@id("user-not-allowed.actor.tos")
forbid (principal, action == Action::"run", resource is Grant)
when { resource has runner && resource.runner.require_tos && !(context.actor.user in Group::"tos") }
unless { {approved} };

@id("user-not-allowed.triggering.role")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && !(context.triggering.user in Group::"bots") &&
  !resource.runner.roles.contains(context.triggering.permission)
}
unless { {approved} };

@id("user-not-allowed.triggering.bot")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && context.triggering.user in Group::"bots" &&
  !(resource.runner.bots_trusted && {trusted_push})
}
unless { {approved} };

@id("user-not-allowed.triggering.users")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && resource has users && !resource.users.contains(context.triggering.user) &&
  !resource.teams.containsAny(context.triggering.teams)
}
unless { {approved} };

@id("user-not-allowed.triggering.tos")
forbid (principal, action == Action::"run", resource is Grant)
when { resource has runner && resource.runner.require_tos && !(context.triggering.user in Group::"tos") }
unless { {approved} };

// (No approval lifts this one: nobody can vouch for the code of a fork nobody can name.)
@id("user-not-allowed.head_owner.unknown")
forbid (principal, action == Action::"run", resource is Grant)
when { resource has runner && context.from_fork && !(context has head_owner) };

@id("user-not-allowed.head_owner.role")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && context.from_fork && context has head_owner &&
  !(context.head_owner.user in Group::"bots") &&
  !resource.runner.roles.contains(context.head_owner.permission)
}
unless { {approved} };

@id("user-not-allowed.head_owner.bot")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && context.from_fork && context has head_owner &&
  context.head_owner.user in Group::"bots" &&
  !(resource.runner.bots_trusted && {trusted_push})
}
unless { {approved} };

@id("user-not-allowed.head_owner.users")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && context.from_fork && context has head_owner && resource has users &&
  !resource.users.contains(context.head_owner.user) &&
  !resource.teams.containsAny(context.head_owner.teams)
}
unless { {approved} };

@id("user-not-allowed.head_owner.tos")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && context.from_fork && context has head_owner &&
  resource.runner.require_tos && !(context.head_owner.user in Group::"tos")
}
unless { {approved} };

// or the month's minutes are used up.
@id("quota-exhausted.project")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && resource.runner has project_quota &&
  context.usage.project_minutes >= resource.runner.project_quota
};

@id("quota-exhausted.resource")
forbid (principal, action == Action::"run", resource is Grant)
when {
  resource has runner && resource.runner has total_quota &&
  context.usage.resource_minutes >= resource.runner.total_quota
};
"#;

/// A run approval stands in for the people rule: it is about a pull request of exactly the job's
/// commit from exactly its head repository, names this resource (or none), and its approver
/// may run the job themselves (no bot; role, user list, terms).
const APPROVED: &str = r#"context has approval && context has head_sha && context has head_repository &&
    ["pull_request", "pull_request_review", "pull_request_review_comment"].contains(context.event) &&
    context.approval.head_sha == context.head_sha &&
    context.approval.head_repository == context.head_repository &&
    (context.approval.resources.isEmpty() || context.approval.resources.contains(resource.runner.name)) &&
    !(context.approval.approver.user in Group::"bots") &&
    resource.runner.roles.contains(context.approval.approver.permission) &&
    (if resource has users then resource.users.contains(context.approval.approver.user) else true) &&
    (!resource.runner.require_tos || context.approval.approver.user in Group::"tos")"#;

/// A push to the project's own default branch: what `bots: trusted` covers.
const TRUSTED_PUSH: &str = r#"context.event == "push" && !context.from_fork && context has git_ref &&
    context has default_ref && context.git_ref == context.default_ref"#;

/// The policies, with their shared conditions written out.
fn policies_text() -> String {
    POLICIES
        .replace("{approved}", APPROVED)
        .replace("{trusted_push}", TRUSTED_PUSH)
}

/// Renders the repository as it stands, with the same reading as [`crate::compile`]: the first
/// definition of a resource counts, the first grant of a resource to a project counts, grants
/// of unknown resources grant nothing. `today` only dates the header: the day a job is judged
/// on is part of its request.
pub fn render(repo: &Repo, today: Date) -> CedarPolicy {
    let policies = format!(
        "// gatehouse's access policy as Cedar policies (render cedar), as of {today}.\n\
         // The ledger is in the entities; these policies are the same for every ledger.\n\n{}",
        policies_text()
    );
    let mut entities = Vec::new();

    // Runners, in catalogue order.
    let mut runners: HashSet<&str> = HashSet::new();
    for loaded in &repo.resources {
        let r = &loaded.value;
        if !runners.insert(r.name.as_str()) {
            continue;
        }
        let roles: BTreeSet<&str> = r
            .users
            .roles
            .iter()
            .map(|role| role.value.as_str())
            .collect();
        let mut attrs = serde_json::Map::new();
        attrs.insert("name".into(), json!(r.name.as_str().to_ascii_lowercase()));
        attrs.insert("roles".into(), json!(roles));
        attrs.insert("require_tos".into(), json!(r.users.require_tos));
        attrs.insert("bots_trusted".into(), json!(r.bots.is_some()));
        if let Some(q) = &r.quota {
            if let Some(m) = q.project_minutes_per_month {
                attrs.insert("project_quota".into(), json!(long(m)));
            }
            if let Some(m) = q.minutes_per_month {
                attrs.insert("total_quota".into(), json!(long(m)));
            }
        }
        entities.push(entity(&runner_uid(r.name.as_str()), attrs, &[]));
    }

    // Grants, in ledger order.
    let mut seen: BTreeSet<(String, &str)> = BTreeSet::new();
    let first = |name: &str| {
        repo.resources
            .iter()
            .find(|r| r.value.name.as_str() == name)
    };
    for file in &repo.grants {
        let project = file.value.project.to_ascii_lowercase();
        for g in &file.value.grants {
            let resource = g.resource.as_str();
            if !runners.contains(resource) || !seen.insert((project.clone(), resource)) {
                continue;
            }
            let mut attrs = serde_json::Map::new();
            attrs.insert("runner".into(), entity_ref(&runner_uid(resource)));
            attrs.insert("pull_request".into(), json!(g.pull_request));
            let forks = first(resource).is_none_or(|r| g.allows_forks(&r.value));
            attrs.insert("forks".into(), json!(forks));
            attrs.insert("granted".into(), json!(days(g.granted.value.0)));
            if let Some(expires) = &g.expires {
                attrs.insert("expires".into(), json!(days(expires.value.0)));
            }
            if let Some(list) = &g.users {
                let users: BTreeSet<i64> = list
                    .users
                    .iter()
                    .filter_map(|u| repo.account_of(u))
                    .collect();
                let users: Vec<Value> = users
                    .into_iter()
                    .map(|id| entity_ref(&user_uid(id)))
                    .collect();
                attrs.insert("users".into(), Value::Array(users));
            }
            let teams: BTreeSet<String> = g
                .users
                .iter()
                .flat_map(|u| u.teams.iter())
                .map(|t| t.value.to_ascii_lowercase())
                .collect();
            attrs.insert("teams".into(), json!(teams));
            entities.push(entity(&grant_uid(&project, resource), attrs, &[]));
        }
    }

    // The terms of service and the bots, by id: each user once, in the groups they are in.
    let tos = tos_group();
    let bots = bots_group();
    entities.push(entity(&tos, serde_json::Map::new(), &[]));
    entities.push(entity(&bots, serde_json::Map::new(), &[]));
    let mut groups: std::collections::BTreeMap<i64, Vec<&EntityUid>> = Default::default();
    for e in repo.tos.iter().flat_map(|t| t.value.iter()) {
        let g = groups.entry(e.id.value.0).or_default();
        if !g.contains(&&tos) {
            g.push(&tos);
        }
    }
    for id in repo
        .settings
        .iter()
        .flat_map(|s| s.value.bots.iter())
        .filter_map(|b| b.value.id())
    {
        let g = groups.entry(id).or_default();
        if !g.contains(&&bots) {
            g.push(&bots);
        }
    }
    for (id, parents) in groups {
        entities.push(entity(&user_uid(id), serde_json::Map::new(), &parents));
    }

    CedarPolicy {
        policies,
        entities: Value::Array(entities),
    }
}

/// A Cedar entity uid: its type and id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntityUid {
    pub kind: &'static str,
    pub id: String,
}

impl EntityUid {
    /// `{"type": ..., "id": ...}`, the form Cedar's `EntityUid::from_json` reads.
    pub fn to_json(&self) -> Value {
        json!({ "type": self.kind, "id": self.id })
    }
}

/// `Type::"id"`, as in Cedar policy text.
impl fmt::Display for EntityUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Rust's escapes (`\"`, `\\`, `\n`, `\u{..}`) are Cedar's.
        write!(f, "{}::\"{}\"", self.kind, self.id.escape_debug())
    }
}

/// The Cedar request for one job on the resource its labels routed to.
#[derive(Clone, Debug, PartialEq)]
pub struct CedarRequest {
    pub principal: EntityUid,
    pub action: EntityUid,
    pub resource: EntityUid,
    /// The context, in Cedar's JSON format (entity references as `__entity`).
    pub context: Value,
}

/// Builds the request for `job` on `resource` from names alone, looking nothing up: the grant
/// is the one its project would hold, whether or not it does. A repository that is no project
/// repository asks for a grant id without `/`, which no grant has.
pub fn request(policy: &Policy, job: &JobContext, resource: ResourceId) -> CedarRequest {
    let name = &policy.resource(resource).name;
    let grant = match policy.project_of(&job.repository) {
        Some(project) => grant_uid(&project.to_ascii_lowercase(), name),
        None => EntityUid {
            kind: "Grant",
            id: escape(&job.repository.to_ascii_lowercase()),
        },
    };
    // GitHub names events in lower case; gatehouse compares them ignoring case.
    let event = job.event.to_ascii_lowercase();
    let pull_request = matches!(
        event.as_str(),
        "pull_request" | "pull_request_review" | "pull_request_review_comment"
    );
    // A pull request without a head repository comes from a fork nobody can name: its owner
    // is unknown whatever the job says.
    let (from_fork, head_owner) = match job.head_repository.as_deref() {
        Some(h) if h.eq_ignore_ascii_case(&job.repository) => (false, None),
        Some(_) => (true, job.head_owner.as_ref()),
        None => (pull_request, None),
    };
    let today = job.today.map_or(policy.compiled_on(), |d| d.0);
    let mut context = json!({
        "today": days(today),
        "event": event,
        "from_fork": from_fork,
        "actor": person(&job.actor, job),
        "triggering": person(job.triggering(), job),
        "usage": {
            "project_minutes": long(job.usage.project_minutes),
            "resource_minutes": long(job.usage.resource_minutes),
        },
    });
    if let Some(owner) = head_owner {
        context["head_owner"] = person(owner, job);
    }
    if let Some(h) = &job.head_repository {
        context["head_repository"] = json!(h.to_ascii_lowercase());
    }
    if let Some(sha) = &job.head_sha {
        context["head_sha"] = json!(sha.to_ascii_lowercase());
    }
    if let Some(r) = &job.git_ref {
        context["git_ref"] = json!(r);
    }
    if let Some(d) = &job.default_branch {
        context["default_ref"] = json!(format!("refs/heads/{d}"));
    }
    if let Some(a) = &job.run_approval {
        let resources: BTreeSet<String> =
            a.resources.iter().map(|r| r.to_ascii_lowercase()).collect();
        context["approval"] = json!({
            "approver": person(&a.approver, job),
            "head_sha": a.head_sha.to_ascii_lowercase(),
            "head_repository": a.head_repository.to_ascii_lowercase(),
            "resources": resources,
        });
    }
    CedarRequest {
        principal: user_uid(job.actor.id),
        action: run_action(),
        resource: grant,
        context,
    }
}

/// The grant entity of `resource` held by `project` (lower-cased by the caller). `%` and `/`
/// are escaped in both names, so that every pair has its own id.
pub fn grant_uid(project: &str, resource: &str) -> EntityUid {
    EntityUid {
        kind: "Grant",
        id: format!("{}/{}", escape(project), escape(resource)),
    }
}

/// The one action: running a job.
pub fn run_action() -> EntityUid {
    EntityUid {
        kind: "Action",
        id: "run".into(),
    }
}

pub fn runner_uid(resource: &str) -> EntityUid {
    EntityUid {
        kind: "Runner",
        id: resource.to_string(),
    }
}

pub fn user_uid(id: i64) -> EntityUid {
    EntityUid {
        kind: "User",
        id: id.to_string(),
    }
}

/// The group of everyone who accepted the terms of service.
pub fn tos_group() -> EntityUid {
    EntityUid {
        kind: "Group",
        id: "tos".into(),
    }
}

/// The group of `gatehouse.yml`'s bots.
pub fn bots_group() -> EntityUid {
    EntityUid {
        kind: "Group",
        id: "bots".into(),
    }
}

/// The gatehouse rule a policy implements, from its `@id` annotation.
pub fn rule_of(policy_id: &str) -> Option<DenyRule> {
    DenyRule::from_code(policy_id.split('.').next().unwrap_or(policy_id))
}

/// Cedar's answer as gatehouse's: `Ok(None)` to allow, `Ok(Some(rule))` to deny. A deny that
/// no `forbid` explains is `no-grant` (no grant permitted the job); otherwise the first
/// gatehouse rule, in decision order, among the satisfied forbids. `reasons` are the `@id`s of
/// the satisfied policies. A reason that names no rule is an error: a policy is missing here.
/// The caller must refuse answers that came with evaluation errors before asking.
pub fn decision_of<'a>(
    allowed: bool,
    reasons: impl IntoIterator<Item = &'a str>,
) -> Result<Option<DenyRule>, String> {
    if allowed {
        return Ok(None);
    }
    let mut first: Option<DenyRule> = None;
    for id in reasons {
        let rule = rule_of(id).ok_or_else(|| format!("policy `{id}` names no gatehouse rule"))?;
        if first.is_none_or(|f| rule < f) {
            first = Some(rule);
        }
    }
    Ok(Some(first.unwrap_or(DenyRule::NoGrant)))
}

/// A person of the request: their login, role, account and the teams the job's facts say
/// they are in.
fn person(actor: &Actor, job: &JobContext) -> Value {
    let teams: BTreeSet<String> = job
        .teams
        .iter()
        .filter(|(_, members)| members.contains(&actor.id))
        .map(|(slug, _)| slug.to_ascii_lowercase())
        .collect();
    json!({
        "login": actor.login.to_ascii_lowercase(),
        "permission": actor.permission.map_or("none", |p| p.as_str()),
        "user": entity_ref(&user_uid(actor.id)),
        "teams": teams,
    })
}

fn entity(uid: &EntityUid, attrs: serde_json::Map<String, Value>, parents: &[&EntityUid]) -> Value {
    json!({
        "uid": uid.to_json(),
        "attrs": attrs,
        "parents": parents.iter().map(|p| p.to_json()).collect::<Vec<_>>(),
    })
}

fn entity_ref(uid: &EntityUid) -> Value {
    json!({ "__entity": uid.to_json() })
}

fn escape(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

/// Minutes as a Cedar `Long`. Counts beyond `i64::MAX` minutes (seventeen trillion years) are
/// saturated: a usage and a quota that both exceed it compare as equal.
fn long(minutes: u64) -> i64 {
    i64::try_from(minutes).unwrap_or(i64::MAX)
}

/// Days since 1970-01-01.
fn days(d: Date) -> i64 {
    let epoch = jiff::civil::date(1970, 1, 1);
    // Civil dates lie within years -9999..=9999, a span of days that never overflows.
    i64::from(
        d.since(epoch)
            .expect("a span between two civil dates")
            .get_days(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_count_from_the_epoch() {
        assert_eq!(days(jiff::civil::date(1970, 1, 1)), 0);
        assert_eq!(days(jiff::civil::date(1970, 1, 2)), 1);
        assert_eq!(days(jiff::civil::date(1969, 12, 31)), -1);
        assert_eq!(days(jiff::civil::date(2000, 3, 1)), 11017);
        assert!(days(Date::MIN) < days(Date::MAX));
    }

    #[test]
    fn grant_ids_are_unambiguous() {
        assert_eq!(grant_uid("pytorch-cpu", "gpu").id, "pytorch-cpu/gpu");
        assert_ne!(grant_uid("a/b", "c"), grant_uid("a", "b/c"));
        assert_ne!(grant_uid("a%2Fb", "c"), grant_uid("a/b", "c"));
    }

    #[test]
    fn uids_print_as_cedar_literals() {
        let uid = EntityUid {
            kind: "Runner",
            id: "a\"b\\c\n".into(),
        };
        assert_eq!(uid.to_string(), r#"Runner::"a\"b\\c\n""#);
    }

    #[test]
    fn the_first_rule_in_decision_order_explains_a_deny() {
        assert_eq!(decision_of(true, []), Ok(None));
        assert_eq!(decision_of(false, []), Ok(Some(DenyRule::NoGrant)));
        assert_eq!(
            decision_of(
                false,
                [
                    "quota-exhausted.project",
                    "user-not-allowed.actor.tos",
                    "expired"
                ]
            ),
            Ok(Some(DenyRule::Expired))
        );
        assert!(decision_of(false, ["policy0"]).is_err());
    }

    #[test]
    fn every_policy_names_a_rule() {
        let ids: Vec<&str> = POLICIES
            .lines()
            .filter_map(|l| l.strip_prefix("@id(\"")?.strip_suffix("\")"))
            .collect();
        assert_eq!(
            ids.len(),
            POLICIES.matches("\npermit").count() + POLICIES.matches("\nforbid").count()
        );
        assert!(ids.iter().all(|id| rule_of(id).is_some()), "{ids:?}");
    }
}
