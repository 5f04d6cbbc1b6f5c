//! gatehouse against Cedar: random repositories and jobs, decided by [`Policy::decide`] and by
//! Cedar evaluating `render cedar`; both must give the same outcome and, on deny, the same rule.
//!
//! The repositories are written as YAML and loaded by the real loader. The jobs are drawn mostly
//! from the repository's own names so that every rule, and allowing, is reached often; routing
//! (labels to a resource) and naming (repository to project) are gatehouse's alone, so jobs that
//! route nowhere or ambiguously are not compared.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

use cedar_policy::{
    Authorizer, Context, Entities, EntityUid, PolicySet, Request, Schema, ValidationMode, Validator,
};
use gatehouse_core::Repo;
use gatehouse_core::duration::Day;
use gatehouse_policy::render::cedar;
use gatehouse_policy::{
    Actor, Decision, DenyReason, DenyRule, JobContext, Missing, Permission, Policy, ResourceId,
    RunApproval, Usage, Who, compile,
};
use jiff::ToSpan;
use jiff::civil::{Date, date};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};

/// The day repositories are compiled on; jobs and expiries are a few days around it.
const BASE: Date = date(2026, 11, 28);

// ---------------------------------------------------------------------------------------------
// The oracle.

/// Cedar, loaded with one repository's rendering.
struct Oracle {
    schema: Schema,
    policies: PolicySet,
    entities: Entities,
    action: EntityUid,
    authorizer: Authorizer,
}

impl Oracle {
    fn new(repo: &Repo, today: Date) -> Oracle {
        let rendered = cedar::render(repo, today);
        let (schema, warnings) = Schema::from_cedarschema_str(cedar::SCHEMA)
            .unwrap_or_else(|e| panic!("the schema does not parse: {e:?}"));
        let warnings: Vec<_> = warnings.map(|w| w.to_string()).collect();
        assert!(warnings.is_empty(), "{warnings:?}");
        let policies: PolicySet = rendered
            .policies
            .parse()
            .unwrap_or_else(|e| panic!("the policies do not parse: {e:?}"));
        // Strict validation proves that no policy can fail to evaluate on entities and
        // requests that follow the schema (except on a missing entity, which `has` guards).
        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        let findings: Vec<String> = validation
            .validation_errors()
            .map(|e| e.to_string())
            .chain(validation.validation_warnings().map(|w| w.to_string()))
            .collect();
        assert!(findings.is_empty(), "{findings:#?}");
        let entities = Entities::from_json_value(rendered.entities, Some(&schema))
            .unwrap_or_else(|e| panic!("the entities do not load: {e:?}"));
        let action = uid(&cedar::run_action());
        Oracle {
            schema,
            policies,
            entities,
            action,
            authorizer: Authorizer::new(),
        }
    }

    /// Cedar's decision, as gatehouse's: `None` to allow, the rule on deny.
    fn decide(&self, policy: &Policy, job: &JobContext, resource: ResourceId) -> Option<DenyRule> {
        let r = cedar::request(policy, job, resource);
        assert_eq!(uid(&r.action), self.action);
        let context =
            Context::from_json_value(r.context.clone(), Some((&self.schema, &self.action)))
                .unwrap_or_else(|e| {
                    panic!(
                        "the context does not follow the schema: {e:?}\n{:#}",
                        r.context
                    )
                });
        let request = Request::new(
            uid(&r.principal),
            uid(&r.action),
            uid(&r.resource),
            context,
            Some(&self.schema),
        )
        .unwrap_or_else(|e| panic!("the request does not follow the schema: {e:?}"));
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &self.entities);
        // Cedar skips a policy that fails to evaluate: a failing `forbid` could allow.
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "Cedar evaluation errors: {errors:#?}");
        let reasons: Vec<&str> = response
            .diagnostics()
            .reason()
            .map(|id| {
                self.policies
                    .annotation(id, "id")
                    .unwrap_or_else(|| panic!("policy {id} has no @id"))
            })
            .collect();
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        cedar::decision_of(allowed, reasons).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn uid(u: &cedar::EntityUid) -> EntityUid {
    EntityUid::from_json(u.to_json()).unwrap_or_else(|e| panic!("{u}: {e:?}"))
}

/// What both engines say about a job; `None` when gatehouse does not route it to one resource.
fn both(
    policy: &Policy,
    oracle: &Oracle,
    job: &JobContext,
) -> Option<(Decision, Option<DenyRule>)> {
    let resource = policy.route(job.labels.iter().map(String::as_str)).ok()??;
    let ours = policy.decide(job);
    let theirs = oracle.decide(policy, job, resource);
    Some((ours, theirs))
}

// ---------------------------------------------------------------------------------------------
// Random repositories.

const RESOURCE_NAMES: [&str; 4] = ["gpu", "cpu", "Gpu", "gpu/large"];
const PROJECTS: [&str; 4] = ["pytorch-cpu", "tensorflow", "numpy", "ray.packages"];
const LOGINS: [&str; 5] = ["wolfv", "isuruf", "beckermr", "jaimergp", "h-vetinari"];
const IDS: [i64; 6] = [885054, 5234427, 1, 2, 3, -7];
const ROLES: [&str; 5] = ["admin", "maintain", "write", "triage", "read"];
/// The organisation's teams a grant may name (slugs).
const TEAMS: [&str; 3] = ["core", "gpu-users", "Maintainers"];

#[derive(Clone, Debug)]
struct ResourceSpec {
    name: usize,
    /// `None`: the default roles.
    roles: Option<Vec<bool>>,
    require_tos: bool,
    quota: Option<(Option<u64>, Option<u64>)>,
    /// `defaults: { forks: ... }`.
    forks: Option<bool>,
    /// `bots: trusted`.
    bots_trusted: bool,
}

#[derive(Clone, Debug)]
struct GrantSpec {
    /// One of the repository's resources; `None` names one that does not exist.
    resource: Option<Index>,
    pull_request: bool,
    forks: Option<bool>,
    /// Days from [`BASE`]: long before it, or a few days around it (a grant written ahead of
    /// its start).
    granted: i64,
    /// Days from [`BASE`].
    expires: Option<i64>,
    /// (login, case, written with its id): a login alone is resolved by people/tos.yml.
    users: Option<Vec<(usize, u8, bool)>>,
    /// (team, case): the teams the user list names too (written only with `users`).
    teams: Vec<(usize, u8)>,
}

#[derive(Clone, Debug)]
struct GrantFileSpec {
    project: usize,
    case: u8,
    grants: Vec<GrantSpec>,
}

#[derive(Clone, Debug)]
struct RepoSpec {
    resources: Vec<ResourceSpec>,
    grant_files: Vec<GrantFileSpec>,
    /// (login, case, id); `None`: no people/tos.yml.
    tos: Option<Vec<(usize, u8, usize)>>,
    /// `gatehouse.yml`'s bots: positions in [`IDS`] (whoever has that id is a bot).
    bots: Vec<usize>,
}

/// `s` in one of four spellings: as is, upper case, capitalised, alternating.
fn spell(s: &str, case: u8) -> String {
    match case % 4 {
        0 => s.to_string(),
        1 => s.to_ascii_uppercase(),
        2 => {
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        }
        _ => s
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect(),
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

fn label_of(position: usize) -> String {
    format!("cirun-res{position}-large")
}

fn day(offset: i64) -> Date {
    BASE.checked_add(offset.days()).expect("near BASE")
}

impl RepoSpec {
    /// The name of the resource a grant names, `None` for one that does not exist.
    fn grant_resource(&self, g: &GrantSpec) -> Option<&'static str> {
        let i = g.resource.as_ref()?.index(self.resources.len());
        Some(RESOURCE_NAMES[self.resources[i].name])
    }

    fn sources(&self) -> Vec<(String, String)> {
        let mut settings = "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n".to_string();
        if !self.bots.is_empty() {
            settings.push_str("bots:\n");
            for (k, id) in self.bots.iter().enumerate() {
                let _ = writeln!(settings, "  - {{ github: ci-bot-{k}, id: {} }}", IDS[*id]);
            }
        }
        let mut files = vec![("gatehouse.yml".to_string(), settings)];
        for (i, r) in self.resources.iter().enumerate() {
            let mut y = format!(
                "name: {}\nprovider: cirun\nlabels: [{}]\n",
                quoted(RESOURCE_NAMES[r.name]),
                label_of(i)
            );
            let roles = r.roles.as_ref().map(|mask| {
                ROLES
                    .iter()
                    .zip(mask)
                    .filter(|(_, on)| **on)
                    .map(|(role, _)| *role)
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            match roles {
                Some(roles) => {
                    let _ = writeln!(
                        y,
                        "users: {{ roles: [{roles}], require_tos: {} }}",
                        r.require_tos
                    );
                }
                None => {
                    let _ = writeln!(y, "users: {{ require_tos: {} }}", r.require_tos);
                }
            }
            if let Some(forks) = r.forks {
                let _ = writeln!(y, "defaults: {{ forks: {forks} }}");
            }
            if r.bots_trusted {
                y.push_str("bots: trusted\n");
            }
            if let Some((project, total)) = r.quota {
                y.push_str("quota: {");
                if let Some(m) = project {
                    let _ = write!(y, " project_minutes_per_month: {m},");
                }
                if let Some(m) = total {
                    let _ = write!(y, " minutes_per_month: {m},");
                }
                y.push_str(" concurrency: 2 }\n");
            }
            files.push((format!("resources/r{i}.yml"), y));
        }
        for (i, f) in self.grant_files.iter().enumerate() {
            let mut y = format!(
                "project: {}\ngrants:",
                quoted(&spell(PROJECTS[f.project], f.case))
            );
            if f.grants.is_empty() {
                y.push_str(" []");
            }
            y.push('\n');
            for g in &f.grants {
                let resource = self.grant_resource(g).unwrap_or("nonexistent");
                let _ = writeln!(y, "  - resource: {}", quoted(resource));
                let _ = writeln!(y, "    pull_request: {}", g.pull_request);
                if let Some(forks) = g.forks {
                    let _ = writeln!(y, "    forks: {forks}");
                }
                let _ = writeln!(y, "    granted: {}", day(g.granted));
                if let Some(e) = g.expires {
                    let _ = writeln!(y, "    expires: {}", day(e));
                }
                if let Some(users) = &g.users {
                    let list: Vec<String> = users
                        .iter()
                        .map(|&(l, c, explicit)| {
                            let login = quoted(&spell(LOGINS[l], c));
                            if explicit {
                                format!("{{ github: {login}, id: {} }}", listed_id(self, l))
                            } else {
                                login
                            }
                        })
                        .collect();
                    let teams: Vec<String> = g
                        .teams
                        .iter()
                        .map(|&(t, c)| quoted(&spell(TEAMS[t], c)))
                        .collect();
                    let _ = writeln!(
                        y,
                        "    users: {{ users: [{}], teams: [{}] }}",
                        list.join(", "),
                        teams.join(", ")
                    );
                }
            }
            files.push((format!("grants/f{i}.yml"), y));
        }
        if let Some(tos) = &self.tos {
            let mut y = String::new();
            if tos.is_empty() {
                y.push_str("[]\n");
            }
            for (l, c, id) in tos {
                let _ = writeln!(
                    y,
                    "- {{ github: {}, id: {} }}",
                    quoted(&spell(LOGINS[*l], *c)),
                    IDS[*id]
                );
            }
            files.push(("people/tos.yml".to_string(), y));
        }
        files
    }
}

fn resource_spec() -> impl Strategy<Value = ResourceSpec> {
    (
        0..RESOURCE_NAMES.len(),
        prop_oneof![
            1 => Just(None),
            2 => prop::collection::vec(prop::bool::weighted(0.85), 5).prop_map(Some),
        ],
        any::<bool>(),
        prop_oneof![
            2 => Just(None),
            3 => (
                prop::option::weighted(0.7, 0u64..=100),
                prop::option::weighted(0.5, 0u64..=150)
            )
                .prop_map(Some),
        ],
        prop::option::weighted(0.3, any::<bool>()),
        prop::bool::weighted(0.5),
    )
        .prop_map(
            |(name, roles, require_tos, quota, forks, bots_trusted)| ResourceSpec {
                name,
                roles,
                require_tos,
                quota,
                forks,
                bots_trusted,
            },
        )
}

fn grant_spec() -> impl Strategy<Value = GrantSpec> {
    (
        prop::option::weighted(0.9, any::<Index>()),
        prop::bool::weighted(0.6),
        prop::option::weighted(0.3, any::<bool>()),
        prop_oneof![12 => Just(-400i64), 1 => -3i64..=3],
        prop::option::weighted(0.5, -3i64..=15),
        prop::option::weighted(
            0.3,
            prop::collection::vec((0..LOGINS.len(), 0u8..4, any::<bool>()), 0..=3),
        ),
        prop_oneof![
            2 => Just(Vec::new()),
            1 => prop::collection::vec((0..TEAMS.len(), 0u8..4), 1..=2),
        ],
    )
        .prop_map(
            |(resource, pull_request, forks, granted, expires, users, teams)| GrantSpec {
                resource,
                pull_request,
                forks,
                // `check` refuses a grant that expires before it starts; the loader does not,
                // but such a grant is never both, so keep the pair consistent.
                granted: expires.map_or(granted, |e| granted.min(e)),
                expires,
                users,
                teams,
            },
        )
}

fn repo_spec() -> impl Strategy<Value = RepoSpec> {
    (
        prop::collection::vec(resource_spec(), 1..=3),
        prop::collection::vec(
            (
                0..PROJECTS.len(),
                prop_oneof![3 => Just(0u8), 1 => 1u8..4],
                prop::collection::vec(grant_spec(), 1..=3),
                prop::bool::weighted(0.1),
            )
                .prop_map(|(project, case, grants, empty)| GrantFileSpec {
                    project,
                    case,
                    grants: if empty { Vec::new() } else { grants },
                }),
            1..=3,
        ),
        prop::option::weighted(
            0.9,
            prop::collection::vec((0..LOGINS.len(), 0u8..4, 0..IDS.len()), 0..=5),
        ),
        // Bots by the pool's positive ids.
        prop_oneof![1 => Just(Vec::new()), 1 => prop::collection::vec(0..5usize, 1..=2)],
    )
        .prop_map(|(resources, grant_files, tos, bots)| RepoSpec {
            resources,
            grant_files,
            tos,
            bots,
        })
}

// ---------------------------------------------------------------------------------------------
// Random jobs, resolved against a repository.

#[derive(Clone, Debug)]
enum Target {
    /// A grant of the repository: its project and a label of its resource.
    Granted(Index, Index),
    /// Any project of the pool and any resource of the repository.
    Any(usize, Index),
    /// A repository that is no project repository.
    NotAProject(u8, usize, Index),
    /// No managed label.
    NotManaged,
}

#[derive(Clone, Debug)]
enum WhoSpec {
    /// Someone from people/tos.yml, with their id.
    Tos(Index),
    /// A login of the target grant's user list, with the id people/tos.yml gives it if any.
    Listed(Index),
    /// A login and an id of the pools.
    Pool(usize, usize),
}

#[derive(Clone, Debug)]
struct PersonSpec {
    who: WhoSpec,
    case: u8,
    permission: Option<Permission>,
}

#[derive(Clone, Debug)]
struct JobSpec {
    target: Target,
    repo_case: u8,
    label_case: u8,
    label_suffix: bool,
    event: &'static str,
    /// 0: no head repository; 1: the repository itself; 2: a fork.
    head: u8,
    /// The fork's owner, for `head: 2` (and given, to be ignored, for a pull request without
    /// a head repository).
    head_owner: Option<PersonSpec>,
    actor: PersonSpec,
    /// `None`: absent; `Some(None)`: the actor again; `Some(Some(p))`: someone.
    triggering: Option<Option<PersonSpec>>,
    usage: (u64, u64),
    today: Option<i64>,
    /// 0: no ref; 1: `refs/heads/main`; 2: `refs/heads/feature`.
    git_ref: u8,
    /// The repository's default branch (`main`) is known.
    default_branch: bool,
    /// 0: no head commit; 1: [`SHA`]; 2: [`SHA`] in upper case.
    head_sha: u8,
    approval: Option<ApprovalSpec>,
    /// Each of [`TEAMS`]: how the job's facts spell its slug, and which of [`IDS`] are in it.
    teams: Vec<(u8, Vec<bool>)>,
}

/// The job's commit.
const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

/// A run approval the guard would hand the decision.
#[derive(Clone, Debug)]
struct ApprovalSpec {
    approver: PersonSpec,
    /// The approved commit is the job's (in another case when `case`), or another.
    same_commit: bool,
    /// The approved head repository is the job's (in another case), or another.
    same_head: bool,
    /// 0: every resource; 1: the job's resource (in another case); 2: another; 3: both.
    resources: u8,
}

fn approval_spec() -> impl Strategy<Value = ApprovalSpec> {
    (
        person_spec(),
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.85),
        prop_oneof![3 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
    )
        .prop_map(
            |(approver, same_commit, same_head, resources)| ApprovalSpec {
                approver,
                same_commit,
                same_head,
                resources,
            },
        )
}

fn person_spec() -> impl Strategy<Value = PersonSpec> {
    (
        prop_oneof![
            6 => any::<Index>().prop_map(WhoSpec::Tos),
            3 => any::<Index>().prop_map(WhoSpec::Listed),
            1 => (0..LOGINS.len(), 0..IDS.len()).prop_map(|(l, i)| WhoSpec::Pool(l, i)),
        ],
        prop_oneof![3 => Just(0u8), 1 => 1u8..4],
        prop_oneof![
            12 => Just(Some(Permission::Write)),
            5 => Just(Some(Permission::Admin)),
            5 => Just(Some(Permission::Maintain)),
            1 => Just(Some(Permission::Triage)),
            1 => Just(Some(Permission::Read)),
            1 => Just(Some(Permission::None)),
            1 => Just(None),
        ],
    )
        .prop_map(|(who, case, permission)| PersonSpec {
            who,
            case,
            permission,
        })
}

fn minutes() -> impl Strategy<Value = u64> {
    prop_oneof![
        12 => Just(0u64),
        6 => 0u64..=160,
        1 => Just(u64::MAX),
    ]
}

fn job_spec() -> impl Strategy<Value = JobSpec> {
    let target = prop_oneof![
        16 => (any::<Index>(), any::<Index>()).prop_map(|(f, g)| Target::Granted(f, g)),
        2 => (0..PROJECTS.len(), any::<Index>()).prop_map(|(p, r)| Target::Any(p, r)),
        1 => (0u8..3, 0..PROJECTS.len(), any::<Index>()).prop_map(|(k, p, r)| Target::NotAProject(k, p, r)),
        1 => Just(Target::NotManaged),
    ];
    let event = prop_oneof![
        9 => Just("push"),
        3 => Just("workflow_dispatch"),
        5 => Just("pull_request"),
        1 => Just("pull_request_target"),
        1 => Just("Pull_Request"),
        1 => Just("pull_request_review"),
        1 => Just("PULL_REQUEST_TARGET"),
    ];
    (
        (target, 0u8..4, 0u8..4, any::<bool>(), event),
        prop_oneof![4 => Just(0u8), 8 => Just(1u8), 2 => Just(2u8)],
        prop::option::weighted(0.9, person_spec()),
        person_spec(),
        prop_oneof![
            2 => Just(None),
            1 => Just(Some(None)),
            1 => person_spec().prop_map(|p| Some(Some(p))),
        ],
        (minutes(), minutes()),
        prop::option::weighted(0.8, -3i64..=3),
        (
            prop_oneof![1 => Just(0u8), 3 => Just(1u8), 1 => Just(2u8)],
            prop::bool::weighted(0.8),
            prop_oneof![1 => Just(0u8), 4 => Just(1u8), 1 => Just(2u8)],
            prop::option::weighted(0.35, approval_spec()),
        ),
        prop::collection::vec(
            (0u8..4, prop::collection::vec(any::<bool>(), IDS.len())),
            TEAMS.len(),
        ),
    )
        .prop_map(
            |(
                (target, repo_case, label_case, label_suffix, event),
                head,
                head_owner,
                actor,
                triggering,
                usage,
                today,
                (git_ref, default_branch, head_sha, approval),
                teams,
            )| JobSpec {
                target,
                repo_case,
                label_case,
                label_suffix,
                event,
                head,
                head_owner,
                actor,
                triggering,
                usage,
                today,
                git_ref,
                default_branch,
                head_sha,
                approval,
                teams,
            },
        )
}

impl JobSpec {
    fn resolve(&self, repo: &RepoSpec) -> JobContext {
        let granted: Vec<(&GrantFileSpec, &GrantSpec)> = repo
            .grant_files
            .iter()
            .flat_map(|f| f.grants.iter().map(move |g| (f, g)))
            .collect();
        // The project, the resource position, and the grant whose user list `Listed` reads.
        let (repository, position, grant) = match &self.target {
            Target::Granted(f, r) if !granted.is_empty() => {
                let (file, g) = granted[f.index(granted.len())];
                let project = spell(&spell(PROJECTS[file.project], file.case), self.repo_case);
                let position = repo
                    .resources
                    .iter()
                    .position(|res| Some(RESOURCE_NAMES[res.name]) == repo.grant_resource(g))
                    .unwrap_or_else(|| r.index(repo.resources.len()));
                (
                    format!("conda-forge/{project}-feedstock"),
                    Some(position),
                    Some(g),
                )
            }
            Target::Granted(_, r) => (
                format!("conda-forge/{}-feedstock", PROJECTS[0]),
                Some(r.index(repo.resources.len())),
                None,
            ),
            Target::Any(p, r) => (
                format!(
                    "conda-forge/{}-feedstock",
                    spell(PROJECTS[*p], self.repo_case)
                ),
                Some(r.index(repo.resources.len())),
                None,
            ),
            Target::NotAProject(kind, p, r) => {
                let repository = match kind {
                    0 => format!("evil-org/{}-feedstock", PROJECTS[*p]),
                    1 => format!("conda-forge/{}", PROJECTS[*p]),
                    _ => "conda-forge/-feedstock".to_string(),
                };
                (repository, Some(r.index(repo.resources.len())), None)
            }
            Target::NotManaged => (format!("conda-forge/{}-feedstock", PROJECTS[0]), None, None),
        };
        let mut labels = vec!["self-hosted".to_string(), "linux".to_string()];
        match position {
            Some(p) => {
                let mut label = spell(&label_of(p), self.label_case);
                if self.label_suffix {
                    label.push_str("--8075232475-linux_64");
                }
                labels.insert(0, label);
            }
            None => labels.push("ubuntu-latest".to_string()),
        }
        let repository = spell(&repository, self.repo_case / 2);
        let head_repository = match self.head {
            0 => None,
            1 => Some(spell(&repository, self.repo_case + 1)),
            _ => Some(match repository.split_once('/') {
                Some((_, name)) => format!("someone/{name}"),
                None => "someone/fork".to_string(),
            }),
        };
        let head_owner = self.head_owner.as_ref().map(|p| person(repo, grant, p));
        let actor = person(repo, grant, &self.actor);
        let triggering_actor = self.triggering.as_ref().map(|t| match t {
            None => actor.clone(),
            Some(p) => person(repo, grant, p),
        });
        let resource_name = position.map_or("gpu", |p| RESOURCE_NAMES[repo.resources[p].name]);
        let run_approval = self.approval.as_ref().map(|a| RunApproval {
            approver: person(repo, grant, &a.approver),
            head_sha: if a.same_commit {
                SHA.to_ascii_uppercase()
            } else {
                "c0ffee5b57875f334f61aebed695e2e4193db5e0".into()
            },
            head_repository: match (&head_repository, a.same_head) {
                (Some(h), true) => h.to_ascii_uppercase(),
                _ => "elsewhere/fork".into(),
            },
            resources: match a.resources {
                0 => vec![],
                1 => vec![resource_name.to_ascii_uppercase()],
                2 => vec!["cpu/other".into()],
                _ => vec!["cpu/other".into(), resource_name.to_string()],
            },
        });
        JobContext {
            repository,
            labels,
            event: self.event.to_string(),
            head_repository,
            head_owner,
            actor,
            triggering_actor,
            workflow: Some(".github/workflows/conda-build.yml".into()),
            git_ref: match self.git_ref {
                0 => None,
                1 => Some("refs/heads/main".into()),
                _ => Some("refs/heads/feature".into()),
            },
            usage: Usage {
                project_minutes: self.usage.0,
                resource_minutes: self.usage.1,
            },
            today: self.today.map(|d| Day(day(d))),
            head_sha: match self.head_sha {
                0 => None,
                1 => Some(SHA.into()),
                _ => Some(SHA.to_ascii_uppercase()),
            },
            run_approval,
            default_branch: self.default_branch.then(|| "main".to_string()),
            teams: TEAMS
                .iter()
                .zip(&self.teams)
                .map(|(slug, (case, members))| {
                    let ids = IDS
                        .iter()
                        .zip(members)
                        .filter(|(_, m)| **m)
                        .map(|(id, _)| *id)
                        .collect();
                    (spell(slug, *case), ids)
                })
                .collect(),
        }
    }
}

/// The id of login `l` of a user list: people/tos.yml's when it lists them, else one of the
/// pool's (which only an entry written with its id resolves to).
fn listed_id(repo: &RepoSpec, l: usize) -> i64 {
    let tos = repo.tos.as_deref().unwrap_or_default();
    tos.iter()
        .find(|(tl, _, _)| *tl == l)
        .map_or(IDS[(l + 2) % IDS.len()], |(_, _, id)| IDS[*id])
}

fn person(repo: &RepoSpec, grant: Option<&GrantSpec>, p: &PersonSpec) -> Actor {
    let tos = repo.tos.as_deref().unwrap_or_default();
    let listed = grant.and_then(|g| g.users.as_deref()).unwrap_or_default();
    let (login, id) = match &p.who {
        WhoSpec::Listed(i) if !listed.is_empty() => {
            let (l, _, _) = listed[i.index(listed.len())];
            (LOGINS[l], listed_id(repo, l))
        }
        WhoSpec::Tos(i) | WhoSpec::Listed(i) if !tos.is_empty() => {
            let (l, _, id) = tos[i.index(tos.len())];
            (LOGINS[l], IDS[id])
        }
        WhoSpec::Tos(i) | WhoSpec::Listed(i) => (LOGINS[i.index(LOGINS.len())], IDS[0]),
        WhoSpec::Pool(l, i) => (LOGINS[*l], IDS[*i]),
    };
    Actor {
        login: spell(login, p.case),
        id,
        permission: p.permission,
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

const REPOSITORIES: u32 = 500;
const JOBS_PER_REPOSITORY: usize = 24;

#[test]
fn gatehouse_and_cedar_agree_on_random_repositories_and_jobs() {
    let started = Instant::now();
    let tally: RefCell<BTreeMap<String, usize>> = RefCell::default();
    let reasons: RefCell<BTreeMap<String, usize>> = RefCell::default();
    let mut runner = TestRunner::new(Config {
        cases: REPOSITORIES,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        repo_spec(),
        prop::collection::vec(job_spec(), JOBS_PER_REPOSITORY),
    );
    let result = runner.run(&strategy, |(spec, jobs)| {
        let repo = Repo::from_sources(spec.sources());
        prop_assert!(
            repo.load_errors.is_empty(),
            "{:?}\n{:#?}",
            repo.load_errors,
            spec.sources()
        );
        let policy = compile(&repo, BASE);
        let oracle = Oracle::new(&repo, BASE);
        let mut seen = Vec::with_capacity(jobs.len());
        let mut why = Vec::new();
        for job in &jobs {
            let job = job.resolve(&spec);
            let Some((ours, theirs)) = both(&policy, &oracle, &job) else {
                seen.push("not-routed".to_string());
                continue;
            };
            let ours_rule = ours.rule();
            prop_assert_eq!(
                ours_rule,
                theirs,
                "gatehouse says {:?}, Cedar says {:?}\njob: {:#?}\nrepository: {:#?}\nentities: {:#}\nrequest: {:#?}",
                ours,
                theirs,
                job,
                spec.sources(),
                cedar::render(&repo, BASE).entities,
                policy
                    .route(job.labels.iter().map(String::as_str))
                    .ok()
                    .flatten()
                    .map(|r| cedar::request(&policy, &job, r)),
            );
            seen.push(ours_rule.map_or("allow".to_string(), |r| r.code().to_string()));
            if let Decision::Deny(d) = &ours {
                why.push(reason_name(&d.reason));
            }
            // Allowed only thanks to the run approval: the approval reached, and agreed on.
            if ours_rule.is_none() && job.run_approval.is_some() {
                let without = JobContext {
                    run_approval: None,
                    ..job.clone()
                };
                if policy.decide(&without).rule() == Some(DenyRule::UserNotAllowed) {
                    seen.push("allowed by a run approval".to_string());
                }
            }
            // Allowed only thanks to a team: without the teams' members, it could not be.
            if ours_rule.is_none() {
                let without = JobContext {
                    teams: BTreeMap::new(),
                    ..job.clone()
                };
                if matches!(
                    policy.decide(&without),
                    Decision::Undecided {
                        missing: Missing::Teams,
                        ..
                    }
                ) {
                    seen.push("allowed by a team".to_string());
                }
            }
            // Allowed with a bot among its people: a trusted bot's push.
            let people = [Some(&job.actor), job.triggering_actor.as_ref()];
            if ours_rule.is_none()
                && job.run_approval.is_none()
                && people.iter().flatten().any(|p| policy.is_bot(p.id))
            {
                seen.push("a trusted bot's push".to_string());
            }
        }
        let mut tally = tally.borrow_mut();
        for outcome in seen {
            *tally.entry(outcome).or_default() += 1;
        }
        let mut reasons = reasons.borrow_mut();
        for reason in why {
            *reasons.entry(reason).or_default() += 1;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }

    let tally = tally.into_inner();
    let compared: usize = tally
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "not-routed"
                    | "allowed by a run approval"
                    | "a trusted bot's push"
                    | "allowed by a team"
            )
        })
        .map(|(_, n)| n)
        .sum();
    for special in [
        "allowed by a run approval",
        "a trusted bot's push",
        "allowed by a team",
    ] {
        let n = tally.get(special).copied().unwrap_or(0);
        assert!(n * 2000 >= compared, "{special}: {n} of {compared}");
    }
    let reasons = reasons.into_inner();
    eprintln!(
        "{compared} decisions compared in {:.1?}: {tally:?}\ndenied for: {reasons:#?}",
        started.elapsed()
    );
    assert!(compared >= 10_000, "only {compared} decisions compared");
    let allowed = tally.get("allow").copied().unwrap_or(0);
    // About a fifth are allowed; a sixth keeps the check steady across random draws.
    assert!(
        allowed * 6 >= compared,
        "only {allowed} of {compared} allowed"
    );
    for rule in DenyRule::ALL {
        // Ambiguity is routing's, outside Cedar; facts are never missing from a whole job.
        // Concurrency and sponsor pools are counted by the guard, not decided from the job.
        if !matches!(
            rule,
            DenyRule::AmbiguousLabels
                | DenyRule::FactsUnavailable
                | DenyRule::ConcurrencyExhausted
                | DenyRule::BudgetExhausted
        ) {
            let n = tally.get(rule.code()).copied().unwrap_or(0);
            assert!(
                n * 100 >= compared,
                "{rule} reached {n} times of {compared}"
            );
        }
    }
    // And every way to be denied, for each person alike.
    for who in [Who::Actor, Who::TriggeringActor, Who::HeadOwner] {
        for reason in [
            DenyReason::MissingRole {
                who,
                permission: None,
            },
            DenyReason::NotListed { who },
            DenyReason::TermsNotAccepted { who },
        ] {
            let name = reason_name(&reason);
            assert!(reasons.contains_key(&name), "never denied for {name}");
        }
    }
    // A bot as a fork's owner with its people otherwise passing is rare in random draws:
    // `run_approvals_and_bots_are_decided_alike_by_cedar` names that case.
    for who in [Who::Actor, Who::TriggeringActor] {
        let name = reason_name(&DenyReason::Bot { who });
        assert!(reasons.contains_key(&name), "never denied for {name}");
    }
    for reason in [
        DenyReason::NotAProject,
        DenyReason::NoGrant,
        DenyReason::NotYetActive(BASE),
        DenyReason::Expired(BASE),
        DenyReason::PullRequestTarget,
        DenyReason::PullRequestNotAllowed,
        DenyReason::ForkNotAllowed { head: None },
        DenyReason::UnknownForkOwner,
        DenyReason::ProjectQuota {
            used: 0,
            limit: 0,
            resets: BASE,
        },
        DenyReason::ResourceQuota {
            used: 0,
            limit: 0,
            resets: BASE,
        },
    ] {
        let name = reason_name(&reason);
        assert!(reasons.contains_key(&name), "never denied for {name}");
    }
}

/// Each way to be denied, by name; a new [`DenyReason`] must be named here, and reached.
fn reason_name(reason: &DenyReason) -> String {
    match reason {
        DenyReason::AmbiguousLabels(..) => "ambiguous labels".into(),
        DenyReason::NotAProject => "not a project".into(),
        DenyReason::NoGrant => "no grant".into(),
        DenyReason::NotYetActive(_) => "not yet active".into(),
        DenyReason::Expired(_) => "expired".into(),
        DenyReason::PullRequestTarget => "pull_request_target".into(),
        DenyReason::PullRequestNotAllowed => "pull_request".into(),
        DenyReason::ForkNotAllowed { .. } => "fork".into(),
        DenyReason::UnknownForkOwner => "fork of unknown owner".into(),
        DenyReason::MissingRole { who, .. } => format!("role of {who:?}"),
        DenyReason::NotListed { who } => format!("user list, {who:?}"),
        DenyReason::TermsNotAccepted { who } => format!("terms of service, {who:?}"),
        DenyReason::Bot { who } => format!("bot, {who:?}"),
        DenyReason::ProjectQuota { .. } => "project quota".into(),
        DenyReason::ResourceQuota { .. } => "resource quota".into(),
        DenyReason::Concurrency { .. } => "concurrency".into(),
        DenyReason::Budget { .. } => "budget".into(),
        DenyReason::FactsUnavailable(_) => "facts unavailable".into(),
    }
}

/// The repository of tests/it/conformance.rs.
fn conformance_repo() -> Repo {
    let repo = Repo::from_sources([
        (
            "gatehouse.yml",
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\n",
        ),
        (
            "resources/gpu.yml",
            "name: gpu\nprovider: cirun\nlabels: [cirun-openstack-gpu-large]\nusers: { roles: [admin, maintain, write], require_tos: true }\nquota: { project_minutes_per_month: 3000, minutes_per_month: 20000 }\n",
        ),
        (
            "resources/cpu.yml",
            "name: cpu\nprovider: cirun\nlabels: [cirun-openstack-cpu-large]\n",
        ),
        (
            "grants/pytorch-cpu.yml",
            "project: pytorch-cpu\ngrants:\n  - resource: gpu\n    pull_request: true\n    granted: 2026-03-01\n    expires: 2027-03-01\n",
        ),
        (
            "grants/tensorflow.yml",
            "project: tensorflow\ngrants:\n  - resource: cpu\n    granted: 2026-03-01\n    expires: 2027-03-01\n    users: { users: [Wolfv] }\n",
        ),
        (
            "people/tos.yml",
            "- { github: wolfv, id: 885054 }\n- { github: isuruf, id: 5234427 }\n",
        ),
    ]);
    assert!(repo.load_errors.is_empty(), "{:?}", repo.load_errors);
    repo
}

fn wolfv() -> Actor {
    Actor {
        login: "wolfv".into(),
        id: 885054,
        permission: Some(Permission::Write),
    }
}

fn job() -> JobContext {
    JobContext {
        repository: "conda-forge/pytorch-cpu-feedstock".into(),
        labels: vec![
            "cirun-openstack-gpu-large--8075232475-linux_64".into(),
            "linux".into(),
        ],
        event: "push".into(),
        head_repository: Some("conda-forge/pytorch-cpu-feedstock".into()),
        head_owner: None,
        actor: wolfv(),
        triggering_actor: Some(wolfv()),
        workflow: None,
        git_ref: None,
        usage: Usage::default(),
        today: Some(Day(date(2026, 11, 28))),
        head_sha: None,
        run_approval: None,
        default_branch: None,
        teams: Default::default(),
    }
}

#[test]
fn the_conformance_attacks_are_denied_by_cedar_too() {
    let repo = conformance_repo();
    let policy = compile(&repo, date(2026, 11, 28));
    let oracle = Oracle::new(&repo, date(2026, 11, 28));
    let tensorflow = |actor: Actor| JobContext {
        repository: "conda-forge/tensorflow-feedstock".into(),
        head_repository: None,
        labels: vec!["cirun-openstack-cpu-large".into()],
        triggering_actor: Some(actor.clone()),
        actor,
        ..job()
    };
    let impostor = Actor {
        id: 4242,
        ..wolfv()
    };
    let shouting = Actor {
        login: "WOLFV".into(),
        ..wolfv()
    };
    let isuruf = Actor {
        login: "isuruf".into(),
        id: 5234427,
        permission: Some(Permission::Admin),
    };
    use DenyRule::*;
    let cases: Vec<(&str, JobContext, Option<DenyRule>)> = vec![
        ("a maintainer's push", job(), None),
        (
            "a pull request from the repository itself",
            JobContext {
                event: "pull_request".into(),
                ..job()
            },
            None,
        ),
        (
            "an outsider's fork pull request started by a maintainer",
            JobContext {
                event: "pull_request".into(),
                head_repository: Some("attacker/pytorch-cpu-feedstock".into()),
                head_owner: Some(Actor {
                    login: "attacker".into(),
                    id: 31337,
                    permission: None,
                }),
                ..job()
            },
            Some(UserNotAllowed),
        ),
        (
            "a maintainer's own fork",
            JobContext {
                event: "pull_request".into(),
                head_repository: Some("wolfv/pytorch-cpu-feedstock".into()),
                head_owner: Some(wolfv()),
                ..job()
            },
            None,
        ),
        (
            "a pull request whose fork is gone",
            JobContext {
                event: "pull_request".into(),
                head_repository: None,
                head_owner: Some(wolfv()),
                ..job()
            },
            Some(UserNotAllowed),
        ),
        (
            "pull_request_target",
            JobContext {
                event: "pull_request_target".into(),
                ..job()
            },
            Some(EventNotAllowed),
        ),
        (
            "a pull request without a pull request grant",
            JobContext {
                event: "pull_request".into(),
                ..tensorflow(wolfv())
            },
            Some(EventNotAllowed),
        ),
        (
            "a re-run by someone with read access",
            JobContext {
                triggering_actor: Some(Actor {
                    login: "drive-by".into(),
                    id: 999,
                    permission: Some(Permission::Read),
                }),
                ..job()
            },
            Some(UserNotAllowed),
        ),
        (
            "a renamed account",
            JobContext {
                actor: impostor.clone(),
                triggering_actor: Some(impostor),
                ..job()
            },
            Some(UserNotAllowed),
        ),
        (
            "a login in another case",
            JobContext {
                actor: shouting.clone(),
                triggering_actor: Some(shouting.clone()),
                ..job()
            },
            None,
        ),
        (
            "a login in another case in a user list",
            tensorflow(shouting),
            None,
        ),
        (
            "someone outside a user list",
            tensorflow(isuruf),
            Some(UserNotAllowed),
        ),
        (
            "a suffixed label of a resource not granted",
            JobContext {
                labels: vec!["cirun-openstack-cpu-large--123-linux_64".into()],
                ..job()
            },
            Some(NoGrant),
        ),
        (
            "the last day of a grant",
            JobContext {
                today: Some(Day(date(2027, 3, 1))),
                ..job()
            },
            None,
        ),
        (
            "the day after a grant expired",
            JobContext {
                today: Some(Day(date(2027, 3, 2))),
                ..job()
            },
            Some(Expired),
        ),
        (
            "a project whose name is a prefix of a granted one",
            JobContext {
                repository: "conda-forge/pytorch-feedstock".into(),
                head_repository: None,
                ..job()
            },
            Some(NoGrant),
        ),
        (
            "a project that extends a granted one",
            JobContext {
                repository: "conda-forge/pytorch-cpu-extra-feedstock".into(),
                head_repository: None,
                ..job()
            },
            Some(NoGrant),
        ),
        (
            "another organisation",
            JobContext {
                repository: "evil-org/pytorch-cpu-feedstock".into(),
                head_repository: None,
                ..job()
            },
            Some(NoGrant),
        ),
        (
            "a repository without the suffix",
            JobContext {
                repository: "conda-forge/pytorch-cpu".into(),
                head_repository: None,
                ..job()
            },
            Some(NoGrant),
        ),
        (
            "someone who did not accept the terms",
            JobContext {
                actor: Actor {
                    login: "newcomer".into(),
                    id: 31337,
                    permission: Some(Permission::Maintain),
                },
                triggering_actor: None,
                ..job()
            },
            Some(UserNotAllowed),
        ),
        (
            "someone without a role",
            JobContext {
                actor: Actor {
                    permission: None,
                    ..wolfv()
                },
                ..job()
            },
            Some(UserNotAllowed),
        ),
        (
            "the project's quota used up",
            JobContext {
                usage: Usage {
                    project_minutes: 3000,
                    resource_minutes: 100,
                },
                ..job()
            },
            Some(QuotaExhausted),
        ),
        (
            "the resource's quota used up",
            JobContext {
                usage: Usage {
                    project_minutes: 0,
                    resource_minutes: 20000,
                },
                ..job()
            },
            Some(QuotaExhausted),
        ),
        (
            "a minute of each quota left",
            JobContext {
                usage: Usage {
                    project_minutes: 2999,
                    resource_minutes: 19999,
                },
                ..job()
            },
            None,
        ),
        (
            "usage beyond what a Long holds",
            JobContext {
                usage: Usage {
                    project_minutes: u64::MAX,
                    resource_minutes: 0,
                },
                ..job()
            },
            Some(QuotaExhausted),
        ),
        (
            "an expired grant asked for from a fork with pull_request_target",
            JobContext {
                event: "pull_request_target".into(),
                head_repository: Some("attacker/x".into()),
                today: Some(Day(date(2027, 3, 2))),
                ..job()
            },
            Some(Expired),
        ),
    ];
    for (what, job, expected) in cases {
        let (ours, theirs) =
            both(&policy, &oracle, &job).unwrap_or_else(|| panic!("{what}: not routed"));
        assert_eq!(ours.rule(), expected, "{what}: gatehouse says {ours:?}");
        assert_eq!(theirs, expected, "{what}: Cedar disagrees");
    }
}

#[test]
fn names_that_need_escaping_stay_apart() {
    // `check` refuses such names; the rendering must hold up without it. Project `a` holding
    // `b/c` and project `a/b` (from `conda-forge/a/b-feedstock`) holding `c` would both be
    // `a/b/c` without escaping.
    let repo = Repo::from_sources([
        (
            "gatehouse.yml",
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\n",
        ),
        (
            "resources/a.yml",
            "name: \"b/c\"\nprovider: cirun\nlabels: [label-bc]\n",
        ),
        (
            "resources/b.yml",
            "name: c\nprovider: cirun\nlabels: [label-c]\n",
        ),
        (
            "resources/c.yml",
            "name: \"c\\\"\\\\\\n%2F\"\nprovider: cirun\nlabels: [label-weird]\n",
        ),
        (
            "grants/a.yml",
            "project: a\ngrants:\n  - { resource: \"b/c\", granted: 2026-01-01 }\n",
        ),
        (
            "grants/ab.yml",
            "project: a/b\ngrants:\n  - { resource: \"c\\\"\\\\\\n%2F\", granted: 2026-01-01 }\n",
        ),
    ]);
    assert!(repo.load_errors.is_empty(), "{:?}", repo.load_errors);
    let policy = compile(&repo, BASE);
    let oracle = Oracle::new(&repo, BASE);
    let on = |repository: &str, label: &str| JobContext {
        repository: repository.into(),
        labels: vec![label.into()],
        head_repository: None,
        triggering_actor: None,
        ..job()
    };
    let no_grant = Some(DenyRule::NoGrant);
    for (job, expected) in [
        (on("conda-forge/a-feedstock", "label-bc"), None),
        (on("conda-forge/a/b-feedstock", "label-c"), no_grant),
        (on("conda-forge/a/b-feedstock", "label-bc"), no_grant),
        (on("conda-forge/a/b-feedstock", "label-weird"), None),
        (on("conda-forge/a-feedstock", "label-weird"), no_grant),
        (on("conda-forge/a%2Fb-feedstock", "label-weird"), no_grant),
    ] {
        let (ours, theirs) = both(&policy, &oracle, &job).expect("routed");
        assert_eq!(ours.rule(), expected, "{job:?}");
        assert_eq!(theirs, expected, "{job:?}");
    }
    // The printed uids read back as the same uids.
    let weird = policy
        .route(["label-weird"])
        .ok()
        .flatten()
        .expect("routed");
    let r = cedar::request(
        &policy,
        &on("conda-forge/a/b-feedstock", "label-weird"),
        weird,
    );
    assert_eq!(r.resource.id, "a%2Fb/c\"\\\n%252F");
    for u in [&r.principal, &r.action, &r.resource] {
        let printed: EntityUid = u.to_string().parse().expect("a Cedar uid literal");
        assert_eq!(printed, uid(u));
    }
}

#[test]
fn a_policy_that_fails_to_evaluate_cannot_allow() {
    // Without its Runner, every rule that reads the resource fails and Cedar skips it; the
    // permit needs the Runner too, so the job is denied rather than let through.
    let repo = conformance_repo();
    let policy = compile(&repo, BASE);
    let mut oracle = Oracle::new(&repo, BASE);
    let mut entities = cedar::render(&repo, BASE).entities;
    if let serde_json::Value::Array(list) = &mut entities {
        list.retain(|e| e["uid"]["type"] != "Runner");
    }
    oracle.entities = Entities::from_json_value(entities, Some(&oracle.schema)).expect("entities");
    let job = job();
    let resource = policy
        .route(job.labels.iter().map(String::as_str))
        .ok()
        .flatten()
        .expect("routed");
    assert!(matches!(policy.decide(&job), Decision::Allow { .. }));
    let r = cedar::request(&policy, &job, resource);
    let request = Request::new(
        uid(&r.principal),
        uid(&r.action),
        uid(&r.resource),
        Context::from_json_value(r.context, Some((&oracle.schema, &oracle.action)))
            .expect("context"),
        Some(&oracle.schema),
    )
    .expect("request");
    let response = oracle
        .authorizer
        .is_authorized(&request, &oracle.policies, &oracle.entities);
    assert_eq!(response.decision(), cedar_policy::Decision::Deny);
    assert!(response.diagnostics().errors().count() > 0);
}

/// Run approvals and bots, named case by case: Cedar, reading them as facts of the request,
/// decides each as gatehouse does.
#[test]
fn run_approvals_and_bots_are_decided_alike_by_cedar() {
    let repo = Repo::from_sources([
        (
            "gatehouse.yml",
            "org: conda-forge\nrepo_suffix: \"-feedstock\"\nreviewers: { teams: [core] }\nproviders:\n  cirun: { kind: cirun, access_repo: .cirun }\nbots:\n  - { github: regro-cf-autotick-bot, id: 36490558 }\n",
        ),
        (
            "resources/gpu.yml",
            "name: gpu\nprovider: cirun\nlabels: [cirun-openstack-gpu-large]\nusers: { roles: [admin, maintain, write], require_tos: true }\n",
        ),
        (
            "resources/rerender.yml",
            "name: rerender\nprovider: cirun\nlabels: [cirun-rerender]\nbots: trusted\n",
        ),
        (
            "grants/pytorch-cpu.yml",
            "project: pytorch-cpu\ngrants:\n  - resource: gpu\n    pull_request: true\n    granted: 2026-03-01\n  - resource: rerender\n    pull_request: true\n    granted: 2026-03-01\n",
        ),
        (
            "people/tos.yml",
            "- { github: wolfv, id: 885054 }\n- { github: regro-cf-autotick-bot, id: 36490558 }\n",
        ),
    ]);
    assert!(repo.load_errors.is_empty(), "{:?}", repo.load_errors);
    let today = date(2026, 11, 28);
    let policy = compile(&repo, today);
    let oracle = Oracle::new(&repo, today);
    let sha = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
    let bot = Actor {
        login: "regro-cf-autotick-bot".into(),
        id: 36490558,
        permission: Some(Permission::Write),
    };
    let outsider = Actor {
        login: "drive-by".into(),
        id: 31337,
        permission: None,
    };
    let fork_of = |owner: &Actor| JobContext {
        event: "pull_request".into(),
        head_repository: Some(format!("{}/pytorch-cpu-feedstock", owner.login)),
        head_owner: Some(owner.clone()),
        actor: owner.clone(),
        triggering_actor: Some(owner.clone()),
        head_sha: Some(sha.into()),
        ..job()
    };
    let approved_by = |approver: Actor, job: JobContext, resources: &[&str]| JobContext {
        run_approval: Some(RunApproval {
            approver,
            head_sha: sha.to_ascii_uppercase(),
            head_repository: job.head_repository.clone().unwrap_or_default(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
        }),
        ..job
    };
    let on = |label: &str, job: JobContext| JobContext {
        labels: vec![label.into()],
        ..job
    };
    let push_by = |who: &Actor, git_ref: &str| JobContext {
        actor: who.clone(),
        triggering_actor: Some(who.clone()),
        git_ref: Some(git_ref.into()),
        default_branch: Some("main".into()),
        ..job()
    };
    use DenyRule::*;
    let cases: Vec<(&str, JobContext, Option<DenyRule>)> = vec![
        (
            "an outsider's fork",
            fork_of(&outsider),
            Some(UserNotAllowed),
        ),
        (
            "an outsider's fork, its commit approved by a maintainer",
            approved_by(wolfv(), fork_of(&outsider), &[]),
            None,
        ),
        (
            "approved for this resource, named in another case",
            approved_by(wolfv(), fork_of(&outsider), &["GPU"]),
            None,
        ),
        (
            "approved for another resource only",
            approved_by(wolfv(), fork_of(&outsider), &["rerender"]),
            Some(UserNotAllowed),
        ),
        (
            "a commit pushed after the approval",
            JobContext {
                head_sha: Some("c0ffee5b57875f334f61aebed695e2e4193db5e0".into()),
                ..approved_by(wolfv(), fork_of(&outsider), &[])
            },
            Some(UserNotAllowed),
        ),
        (
            "the approved commit from another head repository",
            JobContext {
                head_repository: Some("someone-else/pytorch-cpu-feedstock".into()),
                ..approved_by(wolfv(), fork_of(&outsider), &[])
            },
            Some(UserNotAllowed),
        ),
        (
            "approved by someone with read access",
            approved_by(
                Actor {
                    permission: Some(Permission::Read),
                    ..wolfv()
                },
                fork_of(&outsider),
                &[],
            ),
            Some(UserNotAllowed),
        ),
        (
            "approved by a maintainer who did not accept the terms",
            approved_by(
                Actor {
                    login: "newcomer".into(),
                    id: 4242,
                    permission: Some(Permission::Maintain),
                },
                fork_of(&outsider),
                &[],
            ),
            Some(UserNotAllowed),
        ),
        (
            "approved by a bot with the write role",
            approved_by(bot.clone(), fork_of(&outsider), &[]),
            Some(UserNotAllowed),
        ),
        (
            "pull_request_target, approved",
            JobContext {
                event: "pull_request_target".into(),
                ..approved_by(wolfv(), fork_of(&outsider), &[])
            },
            Some(EventNotAllowed),
        ),
        (
            "a push, 'approved'",
            JobContext {
                event: "push".into(),
                ..approved_by(wolfv(), fork_of(&outsider), &[])
            },
            Some(UserNotAllowed),
        ),
        (
            "a fork nobody can name, approved",
            JobContext {
                head_owner: None,
                ..approved_by(wolfv(), fork_of(&outsider), &[])
            },
            Some(UserNotAllowed),
        ),
        ("a bot's pull request", fork_of(&bot), Some(UserNotAllowed)),
        (
            "a bot's fork, started by a maintainer",
            JobContext {
                actor: wolfv(),
                triggering_actor: Some(wolfv()),
                ..fork_of(&bot)
            },
            Some(UserNotAllowed),
        ),
        (
            "a bot's pull request, its commit approved by a maintainer",
            approved_by(wolfv(), fork_of(&bot), &[]),
            None,
        ),
        (
            "a bot's push to the default branch",
            push_by(&bot, "refs/heads/main"),
            Some(UserNotAllowed),
        ),
        (
            "a bot's push to the default branch of a resource that trusts bots",
            on("cirun-rerender", push_by(&bot, "refs/heads/main")),
            None,
        ),
        (
            "a bot's push to another branch of a resource that trusts bots",
            on("cirun-rerender", push_by(&bot, "refs/heads/feature")),
            Some(UserNotAllowed),
        ),
        (
            "a bot's pull request on a resource that trusts bots",
            on("cirun-rerender", fork_of(&bot)),
            Some(UserNotAllowed),
        ),
        (
            "a maintainer's push with a bot re-running it, where bots are not trusted",
            JobContext {
                triggering_actor: Some(bot.clone()),
                ..push_by(&wolfv(), "refs/heads/main")
            },
            Some(UserNotAllowed),
        ),
    ];
    for (what, job, expected) in cases {
        let (ours, theirs) =
            both(&policy, &oracle, &job).unwrap_or_else(|| panic!("{what}: not routed"));
        assert_eq!(ours.rule(), expected, "{what}: gatehouse says {ours:?}");
        assert_eq!(theirs, expected, "{what}: Cedar disagrees");
    }
}
