//! The guard's side of the gate on the runner.
//!
//! - `POST /api/v1/admission` ([`admission`]): a runner pool's gate asks, before a job's first
//!   step, whether the job may run on the pool's resource. It names only which job asks (run,
//!   attempt, job key, runner); the guard builds the job's context itself from what it knows of
//!   that run (its `workflow_run` event, or GitHub's API) and decides with its facts (roles,
//!   terms, usage) exactly as it decides webhooks. A request about a run of another
//!   repository than it claims is refused (409): a forged request can only ask about a real
//!   run, and learns nothing it could use elsewhere.
//! - `GET /api/v1/snapshot` ([`snapshot`]): the signed policy snapshot a gate decides from
//!   when it cannot reach the guard, with an `ETag`, so runners fetch it only when it changed.
//! - Matching: when a job goes in progress, its admission (by run, attempt and runner) is
//!   matched with the webhook path's decision; a disagreement is counted and logged. The
//!   stricter decision wins by itself: a gate's denial stops the job on the runner, a
//!   webhook denial cancels the run.
//!
//! Both endpoints need a pool's token (`Authorization: Bearer`), one per pool
//! (`--gate-tokens DIR`, a file per pool). A job can read its runner's token: that is why the
//! token buys no more than asking about real runs and reading the snapshot.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_gate::admission::{AdmissionAnswer, AdmissionRequest};
use gatehouse_gate::snapshot::{SigningKey, Snapshot};
use gatehouse_policy::Decision;
use jiff::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Secret;
use crate::events::run_record;
use crate::guard::view_of;
use crate::signed_snapshot::Signed;
use crate::state::AppState;
use crate::store::{DecisionRecord, RunRecord, Write, time_text};

/// The gate's settings in the guard.
#[derive(Clone)]
pub struct GateConfig {
    /// Each runner pool's admission token, by pool name (the pools of `gatehouse.yml`).
    pub tokens: Vec<(String, Secret)>,
    /// Signs snapshots; `None`: no snapshots (`GET /api/v1/snapshot` says so).
    pub signing_key: Option<Arc<SigningKey>>,
    /// A snapshot older than this is refused by the runners.
    pub snapshot_max_age: Duration,
    /// How long an admission waits for a fact the guard does not hold yet: first the run,
    /// then the roles and the teams' members together, in one such wait (a gate stops waiting
    /// after 2 s by default and decides from its snapshot).
    pub fact_wait: Duration,
}

impl fmt::Debug for GateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateConfig")
            .field(
                "pools",
                &self.tokens.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .field("signing_key", &self.signing_key.as_ref().map(|_| "***"))
            .field("snapshot_max_age", &self.snapshot_max_age)
            .finish()
    }
}

impl GateConfig {
    pub fn new(tokens: Vec<(String, Secret)>, signing_key: Option<SigningKey>) -> GateConfig {
        GateConfig {
            tokens,
            signing_key: signing_key.map(Arc::new),
            snapshot_max_age: Duration::from_secs(24 * 3600),
            fact_wait: Duration::from_millis(1500),
        }
    }
}

fn reply(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

/// The pool whose token the request carries; the refusal otherwise.
fn pool_of(state: &AppState, headers: &HeaderMap) -> Result<String, (StatusCode, &'static str)> {
    let Some(config) = &state.config.gate else {
        return Err((
            StatusCode::NOT_FOUND,
            "the gate is off: start the guard with --gate-tokens",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Every token is compared, in time that depends on none of them.
    let digest = |s: &str| Sha256::digest(s.trim().as_bytes());
    let given = digest(given);
    let mut found = None;
    for (pool, token) in &config.tokens {
        let same = given
            .iter()
            .zip(digest(token.expose()).iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if same && found.is_none() {
            found = Some(pool.clone());
        }
    }
    found.ok_or((
        StatusCode::UNAUTHORIZED,
        "a runner pool's token is required (Authorization: Bearer <token>)",
    ))
}

/// `POST /api/v1/admission`.
pub async fn admission(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pool = match pool_of(&state, &headers) {
        Ok(p) => p,
        Err((status, message)) => {
            state.metrics.admission("refused");
            return reply(status, message);
        }
    };
    let request: AdmissionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            state.metrics.admission("refused");
            return reply(
                StatusCode::BAD_REQUEST,
                format!("not an admission request: {e}"),
            );
        }
    };
    let source = state.source.load_full();
    let Some(settings) = source.pools.iter().find(|p| p.name == pool) else {
        state.metrics.admission("refused");
        return reply(
            StatusCode::FORBIDDEN,
            format!("runner pool `{pool}` has a token but is not in gatehouse.yml's gate.pools"),
        );
    };
    match admit(&state, &pool, &settings.resource, &request).await {
        Ok(Admitted::Answer(answer)) => {
            state.metrics.admission(if answer.waits() {
                "wait"
            } else if answer.allows() {
                "allow"
            } else {
                "deny"
            });
            Json(answer).into_response()
        }
        Ok(Admitted::Refused(message)) => {
            state.metrics.admission("refused");
            tracing::warn!(pool, message, "admission refused");
            reply(StatusCode::CONFLICT, message)
        }
        Err(e) => {
            state.metrics.admission("failed");
            tracing::error!(pool, error = format!("{e:#}"), "cannot decide an admission");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "the guard cannot decide now; the gate decides from its snapshot",
            )
        }
    }
}

enum Admitted {
    Answer(AdmissionAnswer),
    /// The request does not describe a job the guard can find.
    Refused(String),
}

/// The run's attempt: from the store, waiting a little for its `workflow_run` event, then
/// from GitHub's API. `None` when it cannot be had within `wait`.
async fn run_of(
    state: &AppState,
    request: &AdmissionRequest,
    wait: Duration,
) -> anyhow::Result<Option<RunRecord>> {
    let until = tokio::time::Instant::now() + wait;
    let (run_id, attempt) = (request.run_id, request.run_attempt);
    if let Some(run) = state.store.get_run(run_id, attempt).await? {
        return Ok(Some(run));
    }
    if let Some(github) = &state.github {
        // The repository named in the request only says where to look: the answer's own
        // repository is what counts.
        if let Ok(Ok(Some(run))) = tokio::time::timeout_at(
            until,
            github.run_attempt(&request.repository, run_id, attempt),
        )
        .await
            && let Some(record) = run_record(run, &request.repository, None)
        {
            state
                .store
                .commit(vec![Write::Run {
                    run: record.clone(),
                    now: crate::store::now_text(),
                }])
                .await?;
            return Ok(Some(record));
        }
    }
    state
        .store
        .wait_run(run_id, attempt, until, Duration::from_millis(100))
        .await
}

async fn admit(
    state: &AppState,
    pool: &str,
    resource_name: &str,
    request: &AdmissionRequest,
) -> anyhow::Result<Admitted> {
    let wait = state
        .config
        .gate
        .as_ref()
        .map_or(Duration::from_millis(1500), |g| g.fact_wait);
    let run = run_of(state, request, wait).await?;
    if let Some(run) = &run
        && !run.repository.eq_ignore_ascii_case(&request.repository)
    {
        return Ok(Admitted::Refused(format!(
            "run {} attempt {} is a run of {}, not of {}",
            request.run_id, request.run_attempt, run.repository, request.repository
        )));
    }
    let policy = state.policy.load();
    let Some(resource) = policy.resource_by_name(resource_name) else {
        return Ok(Admitted::Refused(format!(
            "runner pool `{pool}` serves `{resource_name}`, which is no resource"
        )));
    };
    // The run's own repository once it is known; until then, the request's (only rules that
    // need no run can decide, and a missing run denies).
    let repository = run
        .as_ref()
        .map_or_else(|| request.repository.clone(), |r| r.repository.clone());
    // The roles on it, and the members of the teams the job's grant names (a team member not
    // listed by name is let in only on a fresh list), read again together when stale: one
    // wait of `fact_wait` for all of them, as the gate waits for one answer.
    if let Some(github) = &state.github {
        let until = tokio::time::Instant::now() + wait;
        let ttl = state.config.facts_ttl;
        let roles = async {
            if state
                .facts
                .fresh(&repository, Timestamp::now(), ttl)
                .is_none()
                && policy.project_of(&repository).is_some()
            {
                let _ = state
                    .facts
                    .refresh(github, &state.store, &repository, ttl, until)
                    .await;
            }
        };
        let teams = async {
            for team in policy.teams_of(&repository, resource) {
                if state
                    .team_facts
                    .fresh(team, Timestamp::now(), ttl)
                    .is_none()
                {
                    let _ = state
                        .team_facts
                        .refresh(github, &state.store, policy.org(), team, ttl, until)
                        .await;
                }
            }
        };
        tokio::join!(roles, teams);
    }
    let mut view = view_of(state, &policy, &repository, resource, run).await?;
    view.on_resource(resource_name);
    let mut decision = policy.decide(&view);
    // A run approval of the commit counts here as on the webhook path (which decides the job
    // again when it is queued, and records the approval its decision used).
    if decision.rule() == Some(gatehouse_policy::DenyRule::UserNotAllowed)
        && let Some((approved, _)) = crate::run_approvals::consider(
            state,
            &policy,
            &mut view,
            request.run_id,
            request.run_attempt,
        )
        .await?
    {
        decision = approved;
    }
    if let Decision::Undecided { resource, missing } = decision {
        state.metrics.facts_unavailable(missing);
        decision = Decision::facts_unavailable(&policy, &repository, resource, missing);
    }
    // An allowed job on a capped resource takes a slot, or waits for one, or (past its pool's
    // `concurrency_wait`) is denied.
    let project = policy.project_of(&repository).map(str::to_lowercase);
    let source = state.source.load_full();
    if matches!(decision, Decision::Allow { .. })
        && let Some(caps) = source.caps.of(resource_name)
    {
        let now = Timestamp::now();
        let holder = crate::caps::holder(request.run_id, request.run_attempt, &request.runner_name);
        let claim = crate::caps::hold(
            caps,
            holder.clone(),
            resource_name,
            project.clone(),
            &repository,
            request.run_id,
            None,
            now,
        );
        state.store.commit(vec![Write::Admit(claim)]).await?;
        if state.store.hold_state(&holder).await?.as_deref() != Some("admitted") {
            let (cap, running, limit) = crate::caps::reached_now(
                &state.store,
                caps,
                resource_name,
                project.as_deref(),
                now,
                &holder,
            )
            .await?;
            let wait = source.caps.wait_of(pool);
            let waited = Duration::from_secs(request.waited_secs);
            if waited < wait {
                let left = wait - waited;
                return Ok(Admitted::Answer(AdmissionAnswer {
                    outcome: "wait".into(),
                    resource: Some(resource_name.to_string()),
                    rule: Some(
                        gatehouse_policy::DenyRule::ConcurrencyExhausted
                            .code()
                            .into(),
                    ),
                    message: Some(format!(
                        "{} {} (the cap is {limit}); this job waits for one to finish, {}s more at most",
                        if running == 1 {
                            "1 job holds".to_string()
                        } else {
                            format!("{running} jobs hold")
                        },
                        match cap {
                            gatehouse_policy::Cap::Resource => format!("`{resource_name}`"),
                            gatehouse_policy::Cap::Project => format!(
                                "`{resource_name}` for `{}`",
                                project.as_deref().unwrap_or(&repository)
                            ),
                            gatehouse_policy::Cap::Provider =>
                                format!("`{}`'s resources", caps.provider),
                        },
                        left.as_secs()
                    )),
                    retry_after_secs: Some(left.as_secs().clamp(1, 5)),
                }));
            }
            decision = Decision::concurrency_exhausted(
                &policy,
                &repository,
                resource,
                cap,
                running,
                limit,
                &caps.provider,
            );
        }
    }
    // An allowed job that sponsor pools fund reserves its expected cost now, before its first
    // step, as the webhook path does when it goes in progress (the same holder, so that path
    // finds it held). When no pool has it left, the job fails alone and gives its slot back.
    if matches!(decision, Decision::Allow { .. }) {
        let holder = crate::caps::holder(request.run_id, request.run_attempt, &request.runner_name);
        if let crate::credit::Reserved::Exhausted(pools) =
            crate::credit::reserve(state, &holder, 0, project.as_deref(), resource_name).await?
        {
            state.store.commit(vec![Write::Release { holder }]).await?;
            decision = Decision::budget_exhausted(&policy, &repository, resource, &pools);
        }
    }
    let message = decision.message();
    let answer = AdmissionAnswer {
        outcome: decision.outcome().to_string(),
        resource: Some(resource_name.to_string()),
        rule: decision.rule().map(|r| r.code().to_string()),
        message: message.clone(),
        retry_after_secs: None,
    };
    let record = Write::Decision {
        decision: DecisionRecord {
            delivery_id: admission_id(request.run_id, request.run_attempt, &request.runner_name),
            job_id: 0,
            run_id: request.run_id,
            repository: repository.clone(),
            project,
            resource: Some(resource_name.to_string()),
            outcome: answer.outcome.clone(),
            rule: answer.rule.clone(),
            message,
            decided_at: time_text(Timestamp::now()),
            origin: "gate".into(),
        },
        context: view
            .context()
            .and_then(|ctx| serde_json::to_string(&ctx).ok()),
    };
    state.store.commit(vec![record]).await?;
    tracing::info!(
        pool,
        repository,
        run_id = request.run_id,
        runner = request.runner_name,
        outcome = answer.outcome,
        rule = answer.rule,
        "admission decided"
    );
    Ok(Admitted::Answer(answer))
}

/// The role facts stored in the guard's database at `url`, as a snapshot carries them (for
/// `gatehouse snapshot --db`, which signs a snapshot without a running guard).
pub async fn stored_roles(url: &str) -> anyhow::Result<Vec<gatehouse_gate::snapshot::RepoRoles>> {
    let store = crate::store::Store::connect(url).await?;
    let facts = crate::facts::RoleFacts::default();
    facts.poll(&store).await?;
    Ok(facts.export())
}

/// The delivery id an admission is recorded under: one per run attempt and runner.
pub(crate) fn admission_id(run_id: i64, attempt: i64, runner: &str) -> String {
    format!("gate:{run_id}:{attempt}:{runner}")
}

/// When a job goes in progress on `runner`: links its admission (if a gate asked) to the job,
/// and says when the gate and the webhook path disagreed.
pub(crate) async fn match_admission(
    state: &AppState,
    run_id: i64,
    attempt: i64,
    job_id: i64,
    runner: &str,
) -> anyhow::Result<Option<Write>> {
    let id = admission_id(run_id, attempt, runner);
    let (gate, webhook) = state.store.admission_and_decision(&id, job_id).await?;
    let Some(gate) = gate else {
        return Ok(None);
    };
    if let Some(webhook) = webhook
        && (gate == "deny") != (webhook == "deny")
    {
        state.metrics.gate_disagreement();
        tracing::warn!(
            run_id,
            attempt,
            job_id,
            runner,
            gate,
            webhook,
            "the gate and the webhook path disagree on a job; the stricter decision holds"
        );
    }
    Ok(Some(Write::MatchAdmission {
        delivery_id: id,
        job_id,
    }))
}

/// A job went in progress with no admission: when its resource is a gated pool's, its runner
/// did not run the gate (a hook not set up, or a runner outside the pool with the pool's
/// labels). The webhook path decides the job as always; this says the gate is missing.
pub(crate) fn note_ungated(
    state: &AppState,
    repository: &str,
    job: &crate::events::WorkflowJob,
    runner: &str,
) {
    let policy = state.policy.load();
    let Ok(Some(id)) = policy.route_job(
        job.labels.iter().map(String::as_str),
        job.runner_group_name.as_deref(),
    ) else {
        return;
    };
    let resource = &*policy.resource(id).name;
    let source = state.source.load();
    if let Some(pool) = source.pools.iter().find(|p| p.resource == resource) {
        state.metrics.gate_ungated();
        tracing::warn!(
            repository,
            run_id = job.run_id,
            job_id = job.id,
            runner,
            resource,
            pool = pool.name,
            "a job started on a gated resource without its gate asking: is the runner's job-started hook set up?"
        );
    }
}

/// `GET /api/v1/snapshot`: the current signed snapshot (made again when the policy or the
/// role facts changed, or a quarter of its lifetime has passed), `304` when the runner has it.
pub async fn snapshot(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err((status, message)) = pool_of(&state, &headers) {
        return reply(status, message);
    }
    let Some(config) = state.config.gate.clone() else {
        return reply(StatusCode::NOT_FOUND, "the gate is off");
    };
    let Some(key) = config.signing_key.clone() else {
        return reply(
            StatusCode::NOT_FOUND,
            "snapshots are off: start the guard with --gate-key (the key that signs them)",
        );
    };
    let signed = match current(&state, &config, &key) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = e, "cannot make a snapshot");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot make a snapshot now",
            );
        }
    };
    let etag = format!("\"{}\"", signed.1);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut resp = signed.0.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

/// The snapshot to serve, and its serial: the last one while it is current, else a new one.
fn current(
    state: &AppState,
    config: &GateConfig,
    key: &SigningKey,
) -> Result<(Bytes, u64), String> {
    let source = state.source.load_full();
    let facts = state.facts.generation();
    let mut held = state.snapshot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = held.as_ref()
        && Arc::ptr_eq(&s.source, &source)
        && s.facts == facts
        && s.made.elapsed() < config.snapshot_max_age / 4
    {
        return Ok((s.bytes.clone(), s.serial));
    }
    let now = Timestamp::now();
    // Grows with each snapshot, whatever the clock does.
    let serial = held
        .as_ref()
        .map_or(0, |s| s.serial + 1)
        .max(u64::try_from(now.as_millisecond()).unwrap_or(0));
    let snapshot = Snapshot {
        org: state.policy.load().org().to_string(),
        serial,
        created_at: now.as_second(),
        max_age_secs: config.snapshot_max_age.as_secs(),
        policy: source.policy.clone(),
        roles: state.facts.export(),
        pools: source.pools.clone(),
    };
    let bytes = Bytes::from(key.sign(&snapshot)?);
    state.metrics.snapshot_made(bytes.len());
    *held = Some(Signed {
        bytes: bytes.clone(),
        serial,
        made: Instant::now(),
        source,
        facts,
    });
    Ok((bytes, serial))
}
