//! The decision engine against general policy engines, side by side (issue 3's performance
//! targets): gatehouse's [`Policy::decide`], Cedar's `Authorizer::is_authorized` on `render
//! cedar`, and regorus evaluating the same rules in Rego (`benches/gatehouse.rego`), both with
//! its interpreter and with its bytecode VM (RVM). Also `compile` of the whole repository.
//!
//! The repository is the conda-forge-scale one of `gatehouse gen-fixture` (scale 1: 25,000
//! project names, 30 resources, 2,000 grants, 5,000 ToS entries). The jobs are a fixed mix,
//! drawn with a fixed seed: 40% allowed, the rest spread over every deny rule that follows
//! routing. Every engine gets everything prepared in advance (Cedar: policies, schema-checked
//! entities and requests; regorus: the compiled policy, the ledger as `data` and every
//! `input`); gatehouse decides from the job context itself, routing labels and parsing the
//! repository name included. Before measuring, the bench asserts that the engines agree on
//! every job (allow or deny, and the rule) and that each job got the outcome it was built for.
//! The `decide-parts` group times the naming steps `decide` starts with (label routing, the
//! repository's project) alone, to show where gatehouse's time goes, and `decide` with each
//! job repeated, hot in the cache as in the guard.
//!
//! `cargo bench -p gatehouse-policy --bench engines`; results are in docs/BENCHMARKS.md.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use cedar_policy::{
    Authorizer, Context, Entities, EntityUid, PolicySet, Request, Schema, ValidationMode, Validator,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gatehouse_core::Repo;
use gatehouse_core::duration::Day;
use gatehouse_core::fixture::{FixtureSpec, generate};
use gatehouse_core::names::{is_generic_label, label_key};
use gatehouse_policy::render::cedar;
use gatehouse_policy::{
    Actor, Decision, DenyRule, GrantId, JobContext, Permission, Policy, ResourceId, Usage, compile,
    is_pull_request_event,
};
use jiff::ToSpan;
use jiff::civil::{Date, date};
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::RegoVM;

/// The day the repository is generated around and judged on.
const TODAY: Date = date(2026, 11, 28);
const FIXTURE_SEED: u64 = 42;
const MIX_SEED: u64 = 7;
const MIX_SIZE: usize = 1_000;
const REGO: &str = include_str!("gatehouse.rego");
const REGO_JOB: &str = include_str!("gatehouse_job.rego");
const REGO_RULE: &str = "data.gatehouse.decision";

/// A decision as all engines can state it: `None` to allow, the rule on deny.
type Outcome = Option<DenyRule>;

fn fixture() -> Repo {
    let spec = FixtureSpec {
        seed: FIXTURE_SEED,
        scale: 1,
        today: TODAY,
    };
    let repo = Repo::from_sources(generate(spec));
    assert!(
        repo.load_errors.is_empty(),
        "the generated repository does not load"
    );
    repo
}

// ---------------------------------------------------------------------------------------------
// The job mix.

/// Builds jobs against the compiled policy's own names, each meant for one outcome.
struct MixBuilder<'a> {
    policy: &'a Policy,
    rng: fastrand::Rng,
    grants: Vec<GrantId>,
    /// Lower-cased project -> the resources it holds.
    held: HashMap<String, HashSet<ResourceId>>,
    /// The first label of each resource, by `ResourceId`.
    labels: Vec<String>,
    /// Everyone who accepted the terms of service: (login, id).
    people: Vec<(String, i64)>,
    /// Account id -> login: grants' user lists hold account ids.
    login_of: HashMap<i64, String>,
    run: u64,
}

impl<'a> MixBuilder<'a> {
    fn new(repo: &Repo, policy: &'a Policy) -> Self {
        let labels = policy
            .resources()
            .map(|(_, r)| {
                let resource = repo
                    .resource(&r.name)
                    .expect("a compiled resource is defined");
                resource.labels[0].value.clone()
            })
            .collect();
        let mut held: HashMap<String, HashSet<ResourceId>> = HashMap::new();
        for (_, g) in policy.grants() {
            held.entry(g.project.to_ascii_lowercase())
                .or_default()
                .insert(g.resource);
        }
        let people: Vec<(String, i64)> = repo
            .tos
            .iter()
            .flat_map(|t| t.value.iter())
            .map(|e| (e.github.value.clone(), e.id.value.0))
            .collect();
        let login_of = people
            .iter()
            .map(|(login, id)| (*id, login.clone()))
            .collect();
        MixBuilder {
            policy,
            rng: fastrand::Rng::with_seed(MIX_SEED),
            grants: policy.grants().map(|(id, _)| id).collect(),
            held,
            labels,
            people,
            login_of,
            run: 8_075_232_475,
        }
    }

    fn mix(&mut self, size: usize) -> Vec<(JobContext, Outcome)> {
        (0..size).map(|_| self.job()).collect()
    }

    /// One job and the outcome it was built for.
    fn job(&mut self) -> (JobContext, Outcome) {
        let roll = self.rng.u8(..100);
        let rule = match roll {
            0..40 => None,
            40..52 => Some(DenyRule::NoGrant),
            52..60 => Some(DenyRule::Expired),
            60..74 => Some(DenyRule::EventNotAllowed),
            74..90 => Some(DenyRule::UserNotAllowed),
            _ => Some(DenyRule::QuotaExhausted),
        };
        let job = match rule {
            None => {
                let g = self.any_grant(|_| true);
                self.allowed(g)
            }
            Some(DenyRule::NoGrant) => self.no_grant(),
            Some(DenyRule::Expired) => {
                let g = self.any_grant(|g| g.expires.is_some());
                let expires = self.policy.grant(g).expires.expect("an expiring grant");
                let mut job = self.allowed(g);
                let after = expires
                    .checked_add(self.rng.i64(1..60).days())
                    .expect("a near date");
                job.today = Some(Day(after));
                job
            }
            Some(DenyRule::EventNotAllowed) => self.event_not_allowed(),
            Some(DenyRule::UserNotAllowed) => self.user_not_allowed(),
            Some(DenyRule::QuotaExhausted) => self.quota_exhausted(),
            Some(DenyRule::AmbiguousLabels) => unreachable!("routing is not part of the mix"),
            Some(DenyRule::FactsUnavailable) => unreachable!("a whole job lacks no fact"),
            Some(DenyRule::ConcurrencyExhausted | DenyRule::BudgetExhausted) => {
                unreachable!("the guard counts jobs and keeps the pools' books")
            }
        };
        (job, rule)
    }

    fn any_grant(&mut self, filter: impl Fn(&gatehouse_policy::CompiledGrant) -> bool) -> GrantId {
        loop {
            let id = self.grants[self.rng.usize(..self.grants.len())];
            if filter(self.policy.grant(id)) {
                return id;
            }
        }
    }

    /// `s` as is (mostly), capitalised, or upper-cased: GitHub names compare ignoring case.
    fn spell(&mut self, s: &str) -> String {
        match self.rng.u8(..10) {
            0 => s.to_ascii_uppercase(),
            1 => {
                let mut c = s.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            }
            _ => s.to_string(),
        }
    }

    /// The `runs-on` labels of a conda-forge job on `resource`.
    fn labels(&mut self, resource: ResourceId) -> Vec<String> {
        self.run += 1 + self.rng.u64(..1000);
        let label = self.spell(&self.labels[resource.0 as usize].clone());
        let platform = ["linux_64", "linux_aarch64", "win_64", "osx_arm64"][self.rng.usize(..4)];
        let mut labels = vec![format!("{label}--{}-{platform}", self.run)];
        if self.rng.bool() {
            labels.extend(["linux", "x64", "self-hosted"].map(String::from));
        }
        labels
    }

    fn repository(&mut self, project: &str) -> String {
        let name = self.spell(project);
        format!("conda-forge/{name}-feedstock")
    }

    /// Someone the grant lets trigger jobs: from its user list when it has one, else anyone who
    /// accepted the terms of service; with a role the resource accepts.
    fn member(&mut self, grant: GrantId) -> Actor {
        let g = self.policy.grant(grant);
        let (login, id) = match g.users() {
            Some(users) => {
                let id = users[self.rng.usize(..users.len())];
                let login = self
                    .login_of
                    .get(&id)
                    .expect("a grant's users accepted the terms of service")
                    .clone();
                (login, id)
            }
            None => self.people[self.rng.usize(..self.people.len())].clone(),
        };
        let roles: Vec<Permission> = self.policy.resource(g.resource).roles().collect();
        Actor {
            login: self.spell(&login),
            id,
            permission: Some(roles[self.rng.usize(..roles.len())]),
        }
    }

    /// A job that `grant` allows.
    fn allowed(&mut self, grant: GrantId) -> JobContext {
        let g = self.policy.grant(grant);
        let res = self.policy.resource(g.resource);
        let repository = self.repository(&g.project);
        let labels = self.labels(g.resource);
        let mut events = vec!["push", "push", "push", "workflow_dispatch", "schedule"];
        if g.pull_request {
            events.extend(["pull_request", "pull_request", "pull_request_review"]);
        }
        let event = events[self.rng.usize(..events.len())].to_string();
        // A pull request without a head repository comes from a fork nobody can name, which
        // DESIGN.md section 5 denies (rule 3, or rule 4's unknown fork owner): an allowed pull
        // request names its head: the repository itself, or a member's own fork where the
        // grant lets forks in (its owner is judged too, and passes).
        let pull_request = is_pull_request_event(&event);
        let (head_repository, head_owner) = match self.rng.u8(..4) {
            0 if !pull_request => (None, None),
            3 if pull_request && g.forks => {
                let owner = self.member(grant);
                let fork = format!("{}/{}-feedstock", owner.login, g.project);
                (Some(fork), Some(owner))
            }
            0 | 1 | 3 => (Some(repository.clone()), None),
            _ => (Some(repository.to_ascii_lowercase()), None),
        };
        let actor = self.member(grant);
        let triggering_actor = match self.rng.u8(..4) {
            0 | 1 => None,
            2 => Some(actor.clone()),
            _ => Some(self.member(grant)),
        };
        let mut under =
            |limit: Option<u64>| limit.map_or(self.rng.u64(..100_000), |l| self.rng.u64(..l));
        let usage = Usage {
            project_minutes: under(res.project_minutes_per_month),
            resource_minutes: under(res.minutes_per_month),
        };
        JobContext {
            repository,
            labels,
            event,
            head_repository,
            head_owner,
            actor,
            triggering_actor,
            workflow: Some(".github/workflows/conda-build.yml".into()),
            git_ref: Some("refs/heads/main".into()),
            usage,
            today: Some(Day(TODAY)),
            head_sha: None,
            run_approval: None,
            default_branch: None,
            teams: Default::default(),
        }
    }

    fn no_grant(&mut self) -> JobContext {
        let g = self.any_grant(|_| true);
        let project = self.policy.grant(g).project.to_ascii_lowercase();
        let mut job = self.allowed(g);
        match self.rng.u8(..4) {
            // The project asks for a resource it does not hold.
            0 | 1 => {
                let held = &self.held[&project];
                let count = self.labels.len() as u32;
                let other = loop {
                    let r = ResourceId(self.rng.u32(..count));
                    if !held.contains(&r) {
                        break r;
                    }
                };
                job.labels = self.labels(other);
            }
            // A project whose name extends or shortens a granted one (`pytorch` vs
            // `pytorch-cpu`).
            2 => {
                let name = if self.rng.bool() {
                    format!("{project}-cpu")
                } else {
                    project[..project.len() - 1].to_string()
                };
                let resource = self.policy.grant(g).resource;
                if self.held.get(&name).is_some_and(|h| h.contains(&resource)) {
                    return self.no_grant();
                }
                job.repository = self.repository(&name);
                job.head_repository = None;
                job.head_owner = None;
            }
            // No project repository at all.
            _ => {
                job.repository = match self.rng.u8(..3) {
                    0 => "conda-forge/staged-recipes".into(),
                    1 => format!("someone/{project}-feedstock"),
                    _ => format!("conda-forge/{project}"),
                };
                job.head_repository = None;
                job.head_owner = None;
            }
        }
        job
    }

    fn event_not_allowed(&mut self) -> JobContext {
        match self.rng.u8(..3) {
            0 => {
                let g = self.any_grant(|_| true);
                let mut job = self.allowed(g);
                job.event = self.spell("pull_request_target");
                job
            }
            1 => {
                let g = self.any_grant(|g| !g.pull_request);
                let mut job = self.allowed(g);
                let events = [
                    "pull_request",
                    "pull_request_review",
                    "pull_request_review_comment",
                ];
                job.event = events[self.rng.usize(..3)].into();
                job
            }
            _ => {
                let g = self.any_grant(|g| g.pull_request && !g.forks);
                let mut job = self.allowed(g);
                let project = self.policy.grant(g).project.clone();
                job.event = "pull_request".into();
                job.head_repository = Some(format!("someone/{project}-feedstock"));
                job.head_owner = None;
                job
            }
        }
    }

    fn user_not_allowed(&mut self) -> JobContext {
        let variant = self.rng.u8(..7);
        // Variants 2-4 need a grant with a user list or a resource that requires the terms,
        // 5-6 one that lets forks' pull requests in.
        let g = match variant {
            2 => self.any_grant(|g| g.users().is_some()),
            3 | 4 => {
                let policy = self.policy;
                self.any_grant(|g| policy.resource(g.resource).require_tos)
            }
            5 | 6 => self.any_grant(|g| g.pull_request && g.forks),
            _ => self.any_grant(|_| true),
        };
        let mut job = self.allowed(g);
        let weak = [
            Some(Permission::Triage),
            Some(Permission::Read),
            Some(Permission::None),
            None,
        ];
        match variant {
            // The actor lacks a role.
            0 => job.actor.permission = weak[self.rng.usize(..4)],
            // A re-run by a non-maintainer of a maintainer's run.
            1 => {
                let mut other = self.member(g);
                other.permission = weak[self.rng.usize(..4)];
                job.triggering_actor = Some(other);
            }
            // Someone who is not in the grant's list of users.
            2 => {
                let users = self.policy.grant(g).users().expect("a user list");
                let stranger = loop {
                    let p = self.people[self.rng.usize(..self.people.len())].clone();
                    if users.binary_search(&p.1).is_err() {
                        break p;
                    }
                };
                job.actor.login = stranger.0;
                job.actor.id = stranger.1;
            }
            // An outsider's fork, its pull request started by a member: the fork's owner
            // has no role that may use the resource.
            5 => {
                let project = self.policy.grant(g).project.clone();
                let outsider = self.people[self.rng.usize(..self.people.len())].clone();
                job.event = "pull_request".into();
                job.head_repository = Some(format!("{}/{project}-feedstock", outsider.0));
                job.head_owner = Some(Actor {
                    login: outsider.0,
                    id: outsider.1,
                    permission: weak[self.rng.usize(..4)],
                });
            }
            // A pull request whose fork is gone: nobody can vouch for its code.
            6 => {
                job.event = "pull_request".into();
                job.head_repository = None;
            }
            // A renamed or new account: the login is known, the id never accepted the terms.
            _ => {
                let person = if variant == 3 {
                    &mut job.actor
                } else {
                    job.triggering_actor
                        .get_or_insert_with(|| job.actor.clone())
                };
                person.id = 90_000_000 + self.rng.i64(..1_000_000);
            }
        }
        job
    }

    fn quota_exhausted(&mut self) -> JobContext {
        let policy = self.policy;
        let g = self.any_grant(|g| {
            let r = policy.resource(g.resource);
            r.project_minutes_per_month.is_some() && r.minutes_per_month.is_some()
        });
        let res = policy.resource(policy.grant(g).resource);
        let mut job = self.allowed(g);
        let over = self.rng.u64(..500);
        if self.rng.bool() {
            job.usage.project_minutes = res.project_minutes_per_month.expect("a quota") + over;
        } else {
            job.usage.resource_minutes = res.minutes_per_month.expect("a quota") + over;
        }
        job
    }
}

fn route(policy: &Policy, job: &JobContext) -> ResourceId {
    policy
        .route(job.labels.iter().map(String::as_str))
        .expect("the mix has no ambiguous labels")
        .expect("every job of the mix routes to a resource")
}

// ---------------------------------------------------------------------------------------------
// Cedar.

struct CedarEngine {
    policies: PolicySet,
    entities: Entities,
    authorizer: Authorizer,
    requests: Vec<Request>,
}

impl CedarEngine {
    /// Loads `render cedar` as tests/it/differential.rs does (strict validation, entities
    /// checked against the schema) and prepares the request of every job.
    fn new(repo: &Repo, policy: &Policy, jobs: &[JobContext]) -> CedarEngine {
        let rendered = cedar::render(repo, TODAY);
        let (schema, _warnings) =
            Schema::from_cedarschema_str(cedar::SCHEMA).expect("the schema parses");
        let policies: PolicySet = rendered.policies.parse().expect("the policies parse");
        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        assert!(
            validation.validation_passed(),
            "the policies do not validate"
        );
        let entities =
            Entities::from_json_value(rendered.entities, Some(&schema)).expect("the entities load");
        let action = uid(&cedar::run_action());
        let requests = jobs
            .iter()
            .map(|job| {
                let r = cedar::request(policy, job, route(policy, job));
                let context = Context::from_json_value(r.context, Some((&schema, &action)))
                    .expect("the context follows the schema");
                Request::new(
                    uid(&r.principal),
                    uid(&r.action),
                    uid(&r.resource),
                    context,
                    Some(&schema),
                )
                .expect("the request follows the schema")
            })
            .collect();
        CedarEngine {
            policies,
            entities,
            authorizer: Authorizer::new(),
            requests,
        }
    }

    // Never inlined, here and in the three `eval`/`decide` wrappers below, so that
    // `valgrind --tool=callgrind --toggle-collect='*bench_<engine>*'` can count each engine's
    // instructions per decision (see docs/BENCHMARKS.md).
    #[inline(never)]
    fn is_authorized(&self, request: &Request) -> cedar_policy::Response {
        self.authorizer
            .is_authorized(request, &self.policies, &self.entities)
    }

    /// Cedar's answer as gatehouse's, refusing answers that came with evaluation errors.
    fn outcome(&self, request: &Request) -> Outcome {
        let response = self.is_authorized(request);
        assert_eq!(
            response.diagnostics().errors().count(),
            0,
            "Cedar evaluation errors"
        );
        let reasons = response.diagnostics().reason().map(|id| {
            self.policies
                .annotation(id, "id")
                .expect("every policy has an @id")
        });
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        cedar::decision_of(allowed, reasons).expect("every policy names a rule")
    }
}

fn uid(u: &cedar::EntityUid) -> EntityUid {
    EntityUid::from_json(u.to_json()).expect("a valid uid")
}

// ---------------------------------------------------------------------------------------------
// regorus.

/// The ledger as regorus `data`, read the way `compile` reads the repository: the first
/// definition of a resource counts, the first grant of a resource to a project counts, grants
/// of unknown resources grant nothing. Sets are Rego sets, so membership is a lookup.
fn rego_data(repo: &Repo) -> regorus::Value {
    let mut runners = BTreeMap::new();
    let mut labels: BTreeMap<regorus::Value, BTreeSet<regorus::Value>> = BTreeMap::new();
    for loaded in &repo.resources {
        let r = &loaded.value;
        let key = regorus::Value::from(r.name.as_str());
        if runners.contains_key(&key) {
            continue;
        }
        for label in r.labels.iter().filter(|l| !is_generic_label(l)) {
            let routing = label_key(label);
            if !routing.is_empty() {
                labels
                    .entry(routing.into())
                    .or_default()
                    .insert(key.clone());
            }
        }
        let roles: BTreeSet<regorus::Value> = r
            .users
            .roles
            .iter()
            .map(|role| regorus::Value::from(role.value.as_str()))
            .collect();
        let mut fields = vec![
            ("roles", regorus::Value::from(roles)),
            ("require_tos", regorus::Value::from(r.users.require_tos)),
        ];
        if let Some(q) = &r.quota {
            if let Some(m) = q.project_minutes_per_month {
                fields.push(("project_quota", regorus::Value::from(m)));
            }
            if let Some(m) = q.minutes_per_month {
                fields.push(("total_quota", regorus::Value::from(m)));
            }
        }
        runners.insert(key, object(fields));
    }

    let mut grants = BTreeMap::new();
    let mut projects: BTreeMap<regorus::Value, BTreeMap<regorus::Value, regorus::Value>> =
        BTreeMap::new();
    for file in &repo.grants {
        let project = file.value.project.to_ascii_lowercase();
        for g in &file.value.grants {
            let resource = g.resource.as_str();
            let key = regorus::Value::from(cedar::grant_uid(&project, resource).id);
            if !runners.contains_key(&regorus::Value::from(resource)) || grants.contains_key(&key) {
                continue;
            }
            let mut fields = vec![
                ("runner", regorus::Value::from(resource)),
                ("pull_request", regorus::Value::from(g.pull_request)),
                (
                    "forks",
                    regorus::Value::from(repo.resource(resource).is_none_or(|r| g.allows_forks(r))),
                ),
            ];
            if let Some(expires) = &g.expires {
                fields.push(("expires", regorus::Value::from(days(expires.value.0))));
            }
            if let Some(list) = &g.users {
                let users: BTreeSet<regorus::Value> = list
                    .users
                    .iter()
                    .filter_map(|u| repo.account_of(u))
                    .map(regorus::Value::from)
                    .collect();
                fields.push(("users", regorus::Value::from(users)));
            }
            let grant = object(fields);
            projects
                .entry(project.as_str().into())
                .or_default()
                .insert(resource.into(), grant.clone());
            grants.insert(key, grant);
        }
    }

    let tos: BTreeSet<regorus::Value> = repo
        .tos
        .iter()
        .flat_map(|t| t.value.iter())
        .map(|e| regorus::Value::from(e.id.value.0))
        .collect();

    let settings = &repo
        .settings
        .as_ref()
        .expect("the fixture has settings")
        .value;
    object(vec![
        ("org", settings.org.value.to_ascii_lowercase().into()),
        ("suffix", settings.repo_suffix.to_ascii_lowercase().into()),
        (
            "labels",
            labels
                .into_iter()
                .map(|(k, v)| (k, regorus::Value::from(v)))
                .collect::<BTreeMap<_, _>>()
                .into(),
        ),
        (
            "projects",
            projects
                .into_iter()
                .map(|(k, v)| (k, regorus::Value::from(v)))
                .collect::<BTreeMap<_, _>>()
                .into(),
        ),
        ("grants", regorus::Value::from(grants)),
        ("runners", regorus::Value::from(runners)),
        ("tos", regorus::Value::from(tos)),
    ])
}

/// The job as regorus `input`: the facts of the Cedar request's context (the same function
/// builds both), with account ids in place of Cedar's `User` entities and the grant asked for.
fn rego_input(policy: &Policy, job: &JobContext) -> regorus::Value {
    let r = cedar::request(policy, job, route(policy, job));
    let mut context = r.context;
    let people = [
        ("actor", Some(&job.actor)),
        ("triggering", Some(job.triggering())),
        ("head_owner", job.head_owner.as_ref()),
    ];
    for (who, actor) in people {
        // `head_owner` is in the context only for a fork that names one.
        let (Some(person), Some(actor)) = (
            context
                .get_mut(who)
                .and_then(serde_json::Value::as_object_mut),
            actor,
        ) else {
            continue;
        };
        person.remove("user");
        person.insert("id".into(), actor.id.into());
    }
    context["grant"] = r.resource.id.into();
    regorus::Value::from(context)
}

/// The job as `gatehouse decide` reads it (its JSON), with `today` in days since 1970-01-01:
/// the input of `gatehouse_job.rego`, which does the naming itself.
fn rego_job_input(policy: &Policy, job: &JobContext) -> regorus::Value {
    let mut value = serde_json::to_value(job).expect("a job serialises");
    value["today"] = days(job.today.map_or(policy.compiled_on(), |d| d.0)).into();
    regorus::Value::from(value)
}

fn object(fields: Vec<(&str, regorus::Value)>) -> regorus::Value {
    regorus::Value::from(
        fields
            .into_iter()
            .map(|(k, v)| (regorus::Value::from(k), v))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn rego_outcome(value: &regorus::Value) -> Outcome {
    let outcome = value["outcome"].as_string().expect("an outcome");
    match &**outcome {
        "allow" => None,
        "deny" => {
            let rule = value["rule"].as_string().expect("a rule");
            Some(DenyRule::from_code(rule).unwrap_or_else(|| panic!("unknown rule `{rule}`")))
        }
        other => panic!("unknown outcome `{other}`"),
    }
}

/// The regorus interpreter, policy and data prepared once.
fn rego_engine(source: &str, data: &regorus::Value) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine
        .add_policy("gatehouse.rego".into(), source.into())
        .expect("the Rego policy parses");
    engine
        .add_data(data.clone())
        .expect("the ledger is an object");
    engine
}

/// The regorus bytecode VM, the policy compiled once and the data loaded once.
fn rego_vm(engine: &mut regorus::Engine, data: &regorus::Value) -> RegoVM {
    let compiled = engine
        .compile_with_entrypoint(&REGO_RULE.into())
        .expect("the Rego policy compiles");
    let program =
        Compiler::compile_from_policy(&compiled, &[REGO_RULE]).expect("the RVM program compiles");
    let mut vm = RegoVM::new();
    vm.load_program(program);
    vm.set_data(data.clone()).expect("the ledger loads");
    vm
}

#[inline(never)]
fn bench_gatehouse(policy: &Policy, job: &JobContext) -> Decision {
    policy.decide(job)
}

#[inline(never)]
fn bench_cedar(cedar: &CedarEngine, request: &Request) -> cedar_policy::Response {
    cedar.is_authorized(request)
}

#[inline(never)]
fn bench_regorus_interpreter(
    engine: &mut regorus::Engine,
    input: &regorus::Value,
) -> regorus::Value {
    engine.set_input(input.clone());
    engine
        .eval_rule(REGO_RULE.to_string())
        .expect("the policy evaluates")
}

#[inline(never)]
fn bench_regorus_rvm(vm: &mut RegoVM, input: &regorus::Value) -> regorus::Value {
    vm.set_input(input.clone());
    vm.execute().expect("the program runs")
}

/// Days since 1970-01-01, as in `render cedar`.
fn days(d: Date) -> i64 {
    i64::from(
        d.since(date(1970, 1, 1))
            .expect("a span between civil dates")
            .get_days(),
    )
}

// ---------------------------------------------------------------------------------------------
// The benchmark.

fn bench_engines(c: &mut Criterion) {
    let repo = fixture();
    let policy = compile(&repo, TODAY);
    let mix = MixBuilder::new(&repo, &policy).mix(MIX_SIZE);
    let jobs: Vec<JobContext> = mix.iter().map(|(job, _)| job.clone()).collect();

    let cedar = CedarEngine::new(&repo, &policy, &jobs);
    let data = rego_data(&repo);
    let mut engine = rego_engine(REGO, &data);
    let mut vm = rego_vm(&mut engine.clone(), &data);
    let inputs: Vec<regorus::Value> = jobs.iter().map(|j| rego_input(&policy, j)).collect();
    let mut job_engine = rego_engine(REGO_JOB, &data);
    let mut job_vm = rego_vm(&mut job_engine.clone(), &data);
    let job_inputs: Vec<regorus::Value> = jobs.iter().map(|j| rego_job_input(&policy, j)).collect();

    // Every engine gives every job the outcome it was built for.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, (job, meant)) in mix.iter().enumerate() {
        let ours = policy.decide(job);
        let theirs = cedar.outcome(&cedar.requests[i]);
        let interpreted = rego_outcome(&bench_regorus_interpreter(&mut engine, &inputs[i]));
        let executed = rego_outcome(&bench_regorus_rvm(&mut vm, &inputs[i]));
        let job_interpreted =
            rego_outcome(&bench_regorus_interpreter(&mut job_engine, &job_inputs[i]));
        let job_executed = rego_outcome(&bench_regorus_rvm(&mut job_vm, &job_inputs[i]));
        assert_eq!(
            ours.outcome() == "allow",
            ours.rule().is_none(),
            "job {i}: {ours:?}"
        );
        assert_eq!(
            [
                ours.rule(),
                theirs,
                interpreted,
                executed,
                job_interpreted,
                job_executed
            ],
            [*meant; 6],
            "job {i} (gatehouse, Cedar, regorus, RVM, regorus and RVM on the job; built for {meant:?}): {job:#?}"
        );
        *counts
            .entry(meant.map_or("allow", DenyRule::code))
            .or_default() += 1;
    }
    let allowed = counts["allow"];
    assert!(
        allowed * 100 >= MIX_SIZE * 30,
        "too few allowed jobs: {counts:?}"
    );
    // Not the rules the guard gives (counted jobs, pools' books, facts it could not have).
    for rule in DenyRule::ALL[1..].iter().filter(|r| {
        !matches!(
            r,
            DenyRule::ConcurrencyExhausted | DenyRule::BudgetExhausted | DenyRule::FactsUnavailable
        )
    }) {
        assert!(
            counts.contains_key(rule.code()),
            "no job denied by {rule}: {counts:?}"
        );
    }
    eprintln!("the mix of {MIX_SIZE} jobs, identical decisions from all engines: {counts:?}");

    // One decision per iteration, cycling through the mix.
    let mut group = c.benchmark_group("decide");
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("gatehouse", |b| {
        let mut jobs = jobs.iter().cycle();
        b.iter(|| bench_gatehouse(&policy, black_box(jobs.next().expect("a cycle"))))
    });
    // Denials alone (each carries what its message names; an allow carries two ids).
    let denied: Vec<&JobContext> = mix
        .iter()
        .filter(|(_, meant)| meant.is_some())
        .map(|(job, _)| job)
        .collect();
    group.bench_function("gatehouse-denied", |b| {
        let mut jobs = denied.iter().cycle();
        b.iter(|| bench_gatehouse(&policy, black_box(jobs.next().expect("a cycle"))))
    });
    group.bench_function("cedar", |b| {
        let mut requests = cedar.requests.iter().cycle();
        b.iter(|| bench_cedar(&cedar, black_box(requests.next().expect("a cycle"))))
    });
    group.bench_function("regorus-interpreter", |b| {
        let mut inputs = inputs.iter().cycle();
        b.iter(|| {
            bench_regorus_interpreter(&mut engine, black_box(inputs.next().expect("a cycle")))
        })
    });
    group.bench_function("regorus-rvm", |b| {
        let mut inputs = inputs.iter().cycle();
        b.iter(|| bench_regorus_rvm(&mut vm, black_box(inputs.next().expect("a cycle"))))
    });
    // The same, from the job itself: routing and naming in Rego too, as in `decide`.
    group.bench_function("regorus-interpreter-job", |b| {
        let mut inputs = job_inputs.iter().cycle();
        b.iter(|| {
            bench_regorus_interpreter(&mut job_engine, black_box(inputs.next().expect("a cycle")))
        })
    });
    group.bench_function("regorus-rvm-job", |b| {
        let mut inputs = job_inputs.iter().cycle();
        b.iter(|| bench_regorus_rvm(&mut job_vm, black_box(inputs.next().expect("a cycle"))))
    });
    group.finish();

    // Where gatehouse's time goes: the naming steps `decide` starts with, alone.
    let mut group = c.benchmark_group("decide-parts");
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("route", |b| {
        let mut jobs = jobs.iter().cycle();
        b.iter(|| {
            let job = black_box(jobs.next().expect("a cycle"));
            policy.route(job.labels.iter().map(String::as_str))
        })
    });
    group.bench_function("project_of", |b| {
        let mut jobs = jobs.iter().cycle();
        b.iter(|| policy.project_of(&black_box(jobs.next().expect("a cycle")).repository))
    });
    // The guard decides a job context it has just built, hot in the cache; cycling through
    // 1,000 of them is colder. Each job decided 16 times in a row shows the hot end.
    group.bench_function("decide-hot", |b| {
        b.iter_custom(|iters| {
            const REPEAT: u64 = 16;
            let mut jobs = jobs.iter().cycle();
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let job = jobs.next().expect("a cycle");
                let start = Instant::now();
                for _ in 0..REPEAT {
                    black_box(policy.decide(black_box(job)));
                }
                total += start.elapsed();
                done += REPEAT;
            }
            total
        })
    });
    group.finish();

    let mut group = c.benchmark_group("compile");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("conda-forge-scale", |b| {
        b.iter_with_large_drop(|| compile(black_box(&repo), TODAY))
    });
    group.finish();
}

criterion_group!(benches, bench_engines);
criterion_main!(benches);
