//! What the guard does with the events it uses: remember runs, decide queued jobs (and act on
//! denials), track managed jobs, count the minutes of completed jobs, and mark role facts
//! stale when GitHub says roles changed.
//!
//! [`handle`] is the one entry: it runs the event's handler, which pushes the writes it wants
//! into a list, and the caller commits them together with the delivery's processed mark, so a
//! delivery's effects are stored all or nothing. Actions outside the store (cancelling a run)
//! happen before that commit: a delivery interrupted in between is processed again
//! ([`recover`]), and cancelling twice does no harm.
//!
//! A delivery is first handled before it is stored ([`Mode::Unstored`]): when its effects are
//! only writes (a run remembered, a job allowed, a job in progress within its caps and credit,
//! a job completed), the delivery and its effects are committed in one step. Anything more (a
//! denial to act on, a fact to wait for, a claim refused) has it stored first and handled again
//! ([`Mode::Stored`], then [`Mode::Refused`]), so that a duplicate never acts twice and a
//! delivery that waits is never lost.
//!
//! Deciding needs facts: the run's attempt (from its `workflow_run` event, or GitHub's API),
//! the people's roles (the role facts, [`crate::facts`]) and, for a grant that names teams,
//! who is in them (the team facts, [`crate::team_facts`]). The decision is made from what
//! is held, in memory and in the store, without calling GitHub: rules that need no missing
//! fact may deny at once; otherwise the delivery *waits* ([`Handled::Waiting`]): it stays
//! stored and unprocessed while [`crate::pending`] fetches the fact, and is decided again. Past
//! its deadline a job whose fact could not be had is denied `facts-unavailable`; it is never
//! let through and never left undecided.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gatehouse_core::duration::Day;
use gatehouse_core::model::GuardMode;
use gatehouse_policy::{
    Actor, Decision, DenyRule, Job, JobContext, Missing, Permission, Policy, ResourceId, Routed,
    Run, RunApproval, Usage,
};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::clock::{later, today};
use crate::events::{
    Event, RoleChangeEvent, Team, WorkflowJob, WorkflowJobEvent, WorkflowRunEvent, parse_event,
};
use crate::explanation::Explanation;
use crate::facts::RepoRoles;
use crate::state::AppState;
use crate::store::{
    CreditWrite, DecisionRecord, JobStatus, Need, RunRecord, TeamFactsWrite, Write, now_text,
    time_text,
};
use crate::team_facts::TeamMembers;

/// How long a denied run's cancellation is retried before the delivery is given up (with an
/// error, in `/metrics` and the log): a run that long past its denial has likely ended.
pub const CANCEL_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// What handling a delivery came to.
pub enum Handled {
    /// Decided (or nothing to decide): commit these effects with the processed mark.
    Done(Effects),
    /// A fact is missing, or a denied run could not be cancelled yet: leave the delivery
    /// unprocessed and try again ([`crate::pending`]).
    Waiting(Wait),
    /// Handled as [`Mode::Unstored`], the delivery needs more than writes (a call to GitHub,
    /// a wait, a run approval's claim): store it first, then handle it as [`Mode::Stored`].
    StoreFirst,
}

/// How a delivery is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Not stored yet: its effects are computed, but anything beyond writes (acting on GitHub,
    /// waiting for a fact, a write on the way) answers [`Handled::StoreFirst`]. A job's claims
    /// on a machine and on a sponsor's credit are needs of the commit ([`Need`]): the delivery,
    /// its claims and its other effects are committed in one step when nothing refuses them.
    Unstored,
    /// Stored: act where needed; the claims are needs of the commit, as above.
    Stored,
    /// Stored, and a claim was refused when it was committed with the other effects: each
    /// claim is committed on its own first, and a refusal acted on (the run cancelled, or the
    /// excess recorded).
    Refused,
}

/// What a waiting delivery waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The attempt's context: from its `workflow_run` event, or GitHub's API.
    Run {
        repository: String,
        run_id: i64,
        attempt: i64,
    },
    /// The roles on the repository.
    Roles { repository: String },
    /// The members of these teams (lower-cased slugs) of the organisation.
    Teams { teams: Vec<String> },
    /// The run was denied but GitHub did not take the cancellation.
    Cancel { error: String },
}

impl Wait {
    pub fn describe(&self) -> String {
        match self {
            Wait::Run {
                run_id, attempt, ..
            } => format!("waiting for attempt {attempt} of run {run_id}"),
            Wait::Roles { repository } => format!("waiting for the roles on {repository}"),
            Wait::Teams { teams } => {
                format!("waiting for the members of the teams {}", teams.join(", "))
            }
            Wait::Cancel { error } => format!("denied; cancelling again ({error})"),
        }
    }
}

/// Processes one stored delivery, received at `received_at`: handles it and, unless it must
/// wait, commits its effects with its processed mark. `deadline`: when a missing fact stops
/// being waited for. `Err`: the store failed; the delivery stays unprocessed.
pub async fn process(
    state: &AppState,
    delivery: &str,
    event: &str,
    body: &[u8],
    received_at: Timestamp,
    deadline: Timestamp,
) -> anyhow::Result<Processed> {
    let parsed = parse_event(event, body);
    process_parsed(state, delivery, &parsed, received_at, deadline).await
}

/// [`process`] of a payload parsed already ([`parse_event`]): handled as [`Mode::Stored`], and
/// again as [`Mode::Refused`] when a claim is refused.
pub async fn process_parsed(
    state: &AppState,
    delivery: &str,
    event: &Parsed,
    received_at: Timestamp,
    deadline: Timestamp,
) -> anyhow::Result<Processed> {
    let mut mode = Mode::Stored;
    loop {
        let mut effects = match handle(state, delivery, event, received_at, deadline, mode).await {
            Handled::Waiting(wait) => return Ok(Processed::Waiting(wait)),
            Handled::StoreFirst => anyhow::bail!("a stored delivery was handled as unstored"),
            Handled::Done(effects) => effects,
        };
        let (writes, needs) = effects.take_commit();
        match state.store.commit_needing(writes, needs).await? {
            Ok(rows) => return Ok(Processed::Done(effects.finish(state, &rows))),
            Err(_) if mode == Mode::Stored => mode = Mode::Refused,
            Err(_) => anyhow::bail!("a claim was refused although it was committed on its own"),
        }
    }
}

/// The end of [`process`].
pub enum Processed {
    /// Processed: what was done, or why processing failed (marked processed all the same,
    /// with the error, so it is not retried forever; `replay` can look at it again).
    Done(Result<String, String>),
    Waiting(Wait),
}

/// Where a job routes, found once per event and passed on, with the policy that routed it (a
/// resource id means nothing under another policy, and the policy may be replaced meanwhile).
pub(crate) struct Routing<'a> {
    pub(crate) policy: Arc<Policy>,
    /// The runner group it was routed with (`None` for a queued job).
    group: Option<&'a str>,
    routed: Routed,
}

impl<'a> Routing<'a> {
    /// A job as its labels and `group` route it.
    fn of(state: &AppState, w: &WorkflowJob, group: Option<&'a str>) -> Routing<'a> {
        let policy = state.policy.load();
        let routed = policy.route_job(w.labels.iter().map(String::as_str), group);
        Routing {
            policy,
            group,
            routed,
        }
    }

    /// A job in progress: by its labels and the runner group that took it.
    fn in_progress(state: &AppState, w: &'a WorkflowJob) -> Routing<'a> {
        Routing::of(state, w, w.runner_group_name.as_deref())
    }

    /// The resource the job is tracked on ([`tracked`]).
    pub(crate) fn resource(&self) -> Option<ResourceId> {
        tracked(self.routed)
    }
}

/// What became of a denied job's run.
pub(crate) enum Cancel {
    /// Cancelled, already over, or not cancelled (dry run, no token): what to say.
    Acted(String),
    /// GitHub did not take the cancellation yet: try again.
    Wait(Wait),
    /// GitHub did not take it for [`CANCEL_RETRY_FOR`]: give up.
    Failed(String),
}

/// Cancels a denied job's run, as the guard's mode says.
pub(crate) async fn cancel(
    state: &AppState,
    job: &Handling<'_>,
    repository: &str,
    run_id: i64,
) -> Cancel {
    match (state.mode(), &state.github) {
        (GuardMode::DryRun, _) => Cancel::Acted("dry run: not cancelled".to_string()),
        (GuardMode::Enforce, None) => Cancel::Acted("no GitHub token: not cancelled".to_string()),
        (GuardMode::Enforce, Some(github)) => {
            state.metrics.cancel_sent(job.received_at);
            match github.cancel_run(repository, run_id).await {
                Ok(true) => Cancel::Acted("run cancelled".to_string()),
                Ok(false) => Cancel::Acted("run already over".to_string()),
                Err(e) => {
                    let error = e.to_string();
                    if Timestamp::now() < later(job.received_at, CANCEL_RETRY_FOR) {
                        tracing::warn!(
                            repository,
                            run_id,
                            error,
                            "denied, but the run could not be cancelled yet"
                        );
                        return Cancel::Wait(Wait::Cancel { error });
                    }
                    Cancel::Failed(error)
                }
            }
        }
    }
}

/// What processing a delivery does to the store, what it says, and what follows its commit.
pub struct Effects {
    outcome: Result<String, String>,
    /// Ends with the delivery's processed mark.
    writes: Vec<Write>,
    /// Which write counts minutes, to tell a new count from a job counted before.
    minutes: Option<(usize, String, i64)>,
    /// What the commit needs: else nothing is committed ([`Mode`]).
    needs: Vec<Need>,
    /// Done once the writes are committed.
    after: Vec<After>,
}

/// How many explanations may wait for their turn (GitHub wants mutating calls a second
/// apart); beyond it they are dropped, counted and logged: the run is cancelled all the same
/// and its decision, with the message, is on the guard's pages.
pub const EXPLANATIONS_QUEUED: usize = 1000;

/// Leaves the explanations on their commits one by one, at GitHub's pace, after the
/// cancellations (which do not wait).
pub fn spawn_explainer(state: &Arc<AppState>) -> tokio::sync::mpsc::Sender<Explanation> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Explanation>(EXPLANATIONS_QUEUED);
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            let Some(state) = weak.upgrade() else { return };
            let Some(github) = &state.github else {
                continue;
            };
            if let Err(err) = github
                .fail_check_run(&e.repository, &e.head_sha, &e.title, &e.summary)
                .await
            {
                tracing::warn!(
                    repository = e.repository,
                    error = %err,
                    "cannot leave the explanation on the commit"
                );
            }
        }
    });
    tx
}

/// The explanation left on the commit of a run the guard cancelled (none when it did not cancel
/// or the job names no commit).
pub(crate) fn explain_cancel(
    acted: &str,
    repository: &str,
    w: &WorkflowJob,
    rule: &str,
    message: Option<String>,
) -> Option<After> {
    let sha = w.head_sha.as_ref().filter(|_| acted == "run cancelled")?;
    Some(After::Explain {
        repository: repository.to_string(),
        head_sha: sha.clone(),
        title: format!("gatehouse denied this job: {rule}"),
        summary: message.unwrap_or_default(),
    })
}

/// Work that follows a delivery's commit, off the request.
#[derive(Debug)]
pub(crate) enum After {
    /// A job was decided without a rule, in `deciding` (count it in the metrics).
    Decided {
        outcome: &'static str,
        deciding: Duration,
    },
    /// Leave the denial's explanation on the commit (a courtesy: the run is cancelled).
    Explain {
        repository: String,
        head_sha: String,
        title: String,
        summary: String,
    },
    /// Roles changed: mark these repositories' facts stale in memory (`None`: every one) and
    /// fetch the granted ones again.
    Invalidate {
        repositories: Option<Vec<String>>,
        at: Timestamp,
    },
    /// A team's members changed: its repositories' roles did.
    TeamChanged { org: String, team: String },
    /// The members of these teams a grant names changed (`None`: of every one): mark their
    /// lists stale in memory and fetch them again.
    TeamsChanged {
        teams: Option<Vec<String>>,
        at: Timestamp,
    },
}

impl Effects {
    /// The outcome once `rows` (one per write, in order) were committed; starts what follows
    /// the commit.
    pub fn finish(self, state: &AppState, rows: &[u64]) -> Result<String, String> {
        if let Some((i, resource, n)) = &self.minutes {
            if rows.get(*i) == Some(&1) {
                state.metrics.minutes(resource, *n);
            } else if self.outcome.is_ok() {
                return Ok("job counted before".into());
            }
        }
        for after in self.after {
            state.after_commit(after);
        }
        self.outcome
    }

    /// The writes and the needs, for the commit (what `finish` looks at stays).
    pub fn take_commit(&mut self) -> (Vec<Write>, Vec<Need>) {
        (
            std::mem::take(&mut self.writes),
            std::mem::take(&mut self.needs),
        )
    }

    /// Puts the delivery's own write before the others, needing it to be new: a delivery
    /// stored before changes nothing (the first need is then the one not met). Its processed
    /// mark goes into its row (one write of its body, not two). Shifts what `finish` and the
    /// needs look at.
    pub fn prepend_delivery(&mut self, mut write: Write) {
        if let Write::Delivery {
            delivery_id,
            processed,
            ..
        } = &mut write
            && let Some(Write::Processed {
                delivery_id: marked,
                at,
                outcome,
            }) = self.writes.last()
            && marked == delivery_id
        {
            *processed = Some((at.clone(), outcome.clone()));
            self.writes.pop();
        }
        self.writes.insert(0, write);
        if let Some(m) = &mut self.minutes {
            m.0 += 1;
        }
        for need in &mut self.needs {
            if let Need::Changed(i) = need {
                *i += 1;
            }
        }
        self.needs.insert(0, Need::Changed(0));
    }
}

impl AppState {
    /// Queues an explanation; dropped (and counted) when the queue is full.
    pub(crate) fn explain(&self, e: Explanation) {
        let Some(tx) = self.explainer.get() else {
            return;
        };
        if tx.try_send(e).is_err() {
            self.metrics.explanation_dropped();
            tracing::warn!("too many explanations waiting for GitHub: one was dropped");
        }
    }

    fn after_commit(&self, after: After) {
        if let After::Decided { outcome, deciding } = after {
            self.metrics.decide(deciding);
            self.metrics.decision(outcome, None);
            return;
        }
        if let After::Explain {
            repository,
            head_sha,
            title,
            summary,
        } = after
        {
            self.explain(Explanation {
                repository,
                head_sha,
                title,
                summary,
            });
            return;
        }
        let Some(state) = self.me() else { return };
        tokio::spawn(async move {
            match after {
                After::Explain { .. } | After::Decided { .. } => {}
                After::Invalidate { repositories, at } => {
                    match &repositories {
                        None => state.facts.invalidate(None, at),
                        Some(list) => {
                            for r in list {
                                state.facts.invalidate(Some(r), at);
                            }
                        }
                    }
                    crate::pending::refresh_granted(&state, repositories.as_deref()).await;
                }
                After::TeamChanged { org, team } => {
                    crate::pending::team_changed(&state, &org, &team).await;
                }
                After::TeamsChanged { teams, at } => {
                    match &teams {
                        None => state.team_facts.invalidate(None, at),
                        Some(list) => {
                            for t in list {
                                state.team_facts.invalidate(Some(t), at);
                            }
                        }
                    }
                    if let Some(github) = state.github.clone() {
                        crate::pending::refresh_teams(&state, &github, teams.as_deref()).await;
                    }
                }
            }
        });
    }
}

/// A payload as [`parse_event`] read it (each payload is parsed once).
pub type Parsed = anyhow::Result<Event>;

/// Runs the event's handler (acting on GitHub where it must) and collects its writes.
pub async fn handle(
    state: &AppState,
    delivery: &str,
    event: &Parsed,
    received_at: Timestamp,
    deadline: Timestamp,
    mode: Mode,
) -> Handled {
    let mut writes = Vec::new();
    let mut after = Vec::new();
    let mut needs = Vec::new();
    let job = Handling {
        delivery,
        received_at,
        deadline,
        mode,
    };
    let step = match event {
        Err(e) => Err(anyhow::anyhow!("{e:#}")),
        Ok(Event::Ping) => Ok(Step::Did("pong".to_string())),
        Ok(Event::WorkflowRun(e)) => on_workflow_run(e, &mut writes).map(Step::Did),
        Ok(Event::WorkflowJob(e)) => {
            on_workflow_job(state, &job, e, &mut writes, &mut after, &mut needs).await
        }
        Ok(Event::RoleChange(name, e)) => {
            on_role_change(state, name, e, &mut writes, &mut after).map(Step::Did)
        }
        Ok(e @ (Event::IssueComment(_) | Event::PullRequestReview(_))) => {
            if mode == Mode::Unstored && crate::run_approvals::acts(state, event) {
                Ok(Step::StoreFirst)
            } else {
                crate::run_approvals::on_event(state, &job, e, &mut writes).await
            }
        }
        Ok(Event::Other) => Ok(Step::Did("stored; event not used".to_string())),
    };
    let outcome = match step {
        Ok(Step::Wait(_) | Step::StoreFirst) if mode == Mode::Unstored => {
            return Handled::StoreFirst;
        }
        Ok(Step::Wait(wait)) => return Handled::Waiting(wait),
        Ok(Step::StoreFirst) => Err("a stored delivery was handled as unstored".to_string()),
        Ok(Step::Did(what)) => Ok(what),
        Err(e) => Err(format!("{e:#}")),
    };
    let minutes = writes.iter().enumerate().find_map(|(i, w)| match w {
        Write::Minutes {
            resource, minutes, ..
        } => Some((i, resource.clone(), *minutes)),
        _ => None,
    });
    writes.push(Write::Processed {
        delivery_id: delivery.to_string(),
        at: now_text(),
        outcome: match &outcome {
            Ok(what) => what.clone(),
            Err(e) => format!("error: {e}"),
        },
    });
    Handled::Done(Effects {
        outcome,
        writes,
        minutes,
        needs,
        after,
    })
}

/// The delivery being handled.
pub(crate) struct Handling<'a> {
    pub(crate) delivery: &'a str,
    pub(crate) received_at: Timestamp,
    pub(crate) deadline: Timestamp,
    pub(crate) mode: Mode,
}

pub(crate) enum Step {
    Did(String),
    Wait(Wait),
    /// [`Mode::Unstored`] only: more than writes are needed ([`Handled::StoreFirst`]).
    StoreFirst,
}

/// Processes, oldest first, the deliveries that were stored but not processed (the process
/// stopped in between, or they were waiting for a fact). Those that must wait again are
/// handed to [`crate::pending`] with a new deadline. Returns how many were looked at. Stops
/// at the first store failure.
pub async fn recover(state: &Arc<AppState>) -> anyhow::Result<usize> {
    let mut done = 0;
    let mut seen = std::collections::HashSet::new();
    loop {
        let batch = state.store.unprocessed(500).await?;
        let batch: Vec<_> = batch
            .into_iter()
            .filter(|d| seen.insert(d.delivery_id.clone()))
            .collect();
        if batch.is_empty() {
            return Ok(done);
        }
        for d in batch {
            let received_at = d.received_at.parse().unwrap_or_else(|_| Timestamp::now());
            let deadline = state.fresh_deadline();
            crate::pending::process_or_wait(state, d, None, received_at, deadline, Duration::ZERO)
                .await
                .context("cannot process a stored delivery")?;
            done += 1;
        }
    }
}

fn on_workflow_run(event: &WorkflowRunEvent, writes: &mut Vec<Write>) -> anyhow::Result<String> {
    let repository = &event.repository.full_name;
    let Some(mut run) =
        crate::events::run_record(event.workflow_run.clone(), repository, event.sender.clone())
    else {
        anyhow::bail!("the workflow_run event names no actor");
    };
    if run.default_branch.is_none() {
        run.default_branch = event.repository.default_branch.clone();
    }
    let what = format!("run {} attempt {} remembered", run.run_id, run.run_attempt);
    writes.push(Write::Run {
        run,
        now: now_text(),
    });
    Ok(what)
}

async fn on_workflow_job(
    state: &AppState,
    job: &Handling<'_>,
    event: &WorkflowJobEvent,
    writes: &mut Vec<Write>,
    after: &mut Vec<After>,
    needs: &mut Vec<Need>,
) -> anyhow::Result<Step> {
    let repository = event.repository.full_name.as_str();
    let w = &event.workflow_job;
    match event.action.as_str() {
        "queued" => {
            let route = Routing::of(state, w, None);
            decide_job(state, job, repository, w, &route, writes, after).await
        }
        "in_progress" => {
            // A gate asked for this job on its runner: link the two decisions.
            if state.config.gate.is_some()
                && let Some(runner) = w.runner_name.as_deref()
            {
                match crate::gate::match_admission(state, w.run_id, w.run_attempt, w.id, runner)
                    .await?
                {
                    Some(link) => writes.push(link),
                    // Warned of once, when the delivery is stored.
                    None if job.mode == Mode::Unstored => return Ok(Step::StoreFirst),
                    None => crate::gate::note_ungated(state, repository, w, runner),
                }
            }
            // Routed once, for every step below.
            let route = Routing::in_progress(state, w);
            let step = if decided_in_progress(&route, w) {
                decide_job(state, job, repository, w, &route, writes, after).await?
            } else {
                Step::Did(track_job(
                    &route.policy,
                    repository,
                    w,
                    route.resource(),
                    JobStatus::InProgress,
                    writes,
                ))
            };
            // A job denied already is being cancelled; any other one holds a machine.
            let denied = writes.iter().any(
                |w| matches!(w, Write::Decision { decision, .. } if decision.outcome == "deny"),
            );
            if matches!(step, Step::Did(_)) && !denied {
                time_limit(state, repository, w, &route, writes);
            }
            if !matches!(step, Step::Did(_)) || denied {
                return Ok(step);
            }
            let claims = crate::claims::Claims {
                state,
                job,
                repository,
                w,
                route: &route,
            };
            if job.mode != Mode::Refused {
                claims.as_needs(writes, needs).await?;
                return Ok(step);
            }
            if let Some(capped) = claims.check_caps(writes, after).await? {
                return Ok(capped);
            }
            if let Some(exhausted) = claims.check_pools(writes, after).await? {
                return Ok(exhausted);
            }
            Ok(step)
        }
        "completed" => count_minutes(state, repository, w, writes).map(Step::Did),
        other => Ok(Step::Did(format!("workflow_job `{other}` not used"))),
    }
}

/// A job in progress on a resource with a time limit: its timer starts.
fn time_limit(
    state: &AppState,
    repository: &str,
    w: &WorkflowJob,
    route: &Routing<'_>,
    writes: &mut Vec<Write>,
) {
    let policy = &route.policy;
    let Some(id) = route.resource() else {
        return;
    };
    let resource = &policy.resource(id).name;
    if let Some(minutes) = state.source.load().time_limits.of(resource) {
        writes.push(crate::time_limits::arm(
            repository,
            policy.project_of(repository).map(str::to_lowercase),
            resource,
            minutes,
            w,
            Timestamp::now(),
        ));
    }
}

/// A job is decided (again) when it goes in progress if its runner group, known only once a
/// runner took it, changes where it routes: `runs-on: { group: ... }` jobs are queued with no
/// managed label, and labels of one resource on another resource's group are ambiguous.
fn decided_in_progress(route: &Routing<'_>, job: &WorkflowJob) -> bool {
    route.group.is_some()
        && route.routed != route.policy.route(job.labels.iter().map(String::as_str))
}

/// The resource a job asks for (its labels', or its runner group's); for ambiguous labels,
/// the first of them, so that the job is still tracked.
fn route(policy: &Policy, labels: &[String], group: Option<&str>) -> Option<ResourceId> {
    tracked(policy.route_job(labels.iter().map(String::as_str), group))
}

/// The resource a job is tracked on, from where it routes: for ambiguous labels, the first.
fn tracked(routed: Routed) -> Option<ResourceId> {
    match routed {
        Ok(found) => found,
        Err((a, _)) => Some(a),
    }
}

/// Notes how far a managed job got (for concurrency per resource).
fn track_job(
    policy: &Policy,
    repository: &str,
    job: &WorkflowJob,
    resource: Option<ResourceId>,
    status: JobStatus,
    writes: &mut Vec<Write>,
) -> String {
    let Some(resource) = resource else {
        return "not managed".into();
    };
    writes.push(Write::JobStatus {
        job_id: job.id,
        project: policy.project_of(repository).map(str::to_lowercase),
        resource: policy.resource(resource).name.to_string(),
        status,
        at: now_text(),
    });
    format!("job {}", status.as_str().replace('_', " "))
}

/// The guard's view of a job: what the event says, the run's attempt if it is known, and the
/// roles on the repository if they are fresh.
pub(crate) struct GuardJob<'a> {
    repository: &'a str,
    labels: Vec<String>,
    runner_group: Option<&'a str>,
    /// The resource where it runs says (a gate's pool), when not its labels.
    resource: Option<&'a str>,
    /// Where it routes, found once ([`Job::routed`]): `decide` does not route it again.
    routed: Option<Routed>,
    today: Date,
    usage: Usage,
    run: Option<RunPeople>,
    roles: Option<Arc<RepoRoles>>,
    /// The teams the job's grant names (lower-cased), each with its member list when fresh.
    teams: Vec<(String, Option<Arc<TeamMembers>>)>,
    /// The run approval of the run's commit being considered ([`crate::run_approvals`]).
    pub(crate) approval: Option<RunApproval>,
    /// How a run approval is written (`run_approvals.phrase`).
    approval_phrase: String,
}

/// The guard's view of a job of `repository` on `resource`, with the facts it holds now: this
/// month's usage, the run's attempt (`run`, when known), the roles when they are fresh. It is
/// routed to `resource`; the caller sets the labels, runner group or resource it was routed
/// by, and where they route when that is not `resource` alone (ambiguous labels).
pub(crate) async fn view_of<'a>(
    state: &AppState,
    policy: &Policy,
    repository: &'a str,
    resource: ResourceId,
    run: Option<RunRecord>,
) -> anyhow::Result<GuardJob<'a>> {
    let today = today();
    let usage = match policy.project_of(repository) {
        Some(project) => {
            month_usage(state, policy, &project.to_lowercase(), resource, today).await?
        }
        None => Usage::default(),
    };
    Ok(GuardJob {
        repository,
        labels: Vec::new(),
        runner_group: None,
        resource: None,
        routed: Some(Ok(Some(resource))),
        today,
        usage,
        roles: state
            .facts
            .fresh(repository, Timestamp::now(), state.config.facts_ttl),
        teams: policy
            .teams_of(repository, resource)
            .iter()
            .map(|t| {
                let t = t.to_ascii_lowercase();
                let fresh = state
                    .team_facts
                    .fresh(&t, Timestamp::now(), state.config.facts_ttl);
                (t, fresh)
            })
            .collect(),
        run: run.map(RunPeople::of),
        approval: None,
        approval_phrase: state.source.load().run_approvals.phrase.clone(),
    })
}

/// The run attempt's people, as the decision engine reads them.
struct RunPeople {
    event: String,
    head_repository: Option<String>,
    head_owner: Option<Actor>,
    actor: Actor,
    triggering: Option<Actor>,
    workflow: Option<String>,
    git_ref: Option<String>,
    head_sha: Option<String>,
    default_branch: Option<String>,
}

fn person((login, id): (String, i64)) -> Actor {
    Actor {
        login,
        id,
        permission: None,
    }
}

impl RunPeople {
    fn of(run: RunRecord) -> RunPeople {
        let actor = person(run.actor);
        RunPeople {
            event: run.event,
            head_repository: run.head_repository,
            head_owner: run.head_owner.map(person),
            // The same person twice is one person.
            triggering: run.triggering_actor.filter(|t| t.1 != actor.id).map(person),
            actor,
            workflow: run.workflow,
            git_ref: run.git_ref,
            head_sha: run.head_sha,
            default_branch: run.default_branch,
        }
    }
}

impl Job for GuardJob<'_> {
    fn repository(&self) -> &str {
        self.repository
    }

    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn runner_group(&self) -> Option<&str> {
        self.runner_group
    }

    fn resource(&self) -> Option<&str> {
        self.resource
    }

    fn routed(&self) -> Option<Routed> {
        self.routed
    }

    fn today(&self) -> Option<Date> {
        Some(self.today)
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn run(&self) -> Option<Run<'_>> {
        self.run.as_ref().map(|r| Run {
            event: &r.event,
            head_repository: r.head_repository.as_deref(),
            head_owner: r.head_owner.as_ref(),
            actor: &r.actor,
            triggering_actor: r.triggering.as_ref(),
            head_sha: r.head_sha.as_deref(),
            git_ref: r.git_ref.as_deref(),
            default_branch: r.default_branch.as_deref(),
        })
    }

    fn role(&self, person: &Actor) -> Option<Option<Permission>> {
        self.roles.as_ref().map(|r| r.role_of(person.id))
    }

    fn in_team(&self, team: &str, person: &Actor) -> Option<bool> {
        let (_, members) = self
            .teams
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(team))?;
        members.as_ref().map(|m| m.contains(person.id))
    }

    fn run_approval(&self) -> Option<&RunApproval> {
        self.approval.as_ref()
    }

    fn run_approval_phrase(&self) -> Option<&str> {
        Some(&self.approval_phrase)
    }
}

impl<'a> GuardJob<'a> {
    /// The teams of the job's grant whose members are not known (lower-cased).
    pub(crate) fn unknown_teams(&self) -> Vec<String> {
        self.teams
            .iter()
            .filter(|(_, members)| members.is_none())
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// The run's commit and the repository it comes from, when both are known.
    pub(crate) fn head(&self) -> Option<(String, String)> {
        let run = self.run.as_ref()?;
        Some((run.head_sha.clone()?, run.head_repository.clone()?))
    }

    pub(crate) fn repository_name(&self) -> &str {
        self.repository
    }

    /// Decided on `resource` (where it runs says), not on its labels.
    pub(crate) fn on_resource(&mut self, resource: &'a str) {
        self.resource = Some(resource);
    }

    /// The whole job context the decision was made on (for `replay`), once every fact is
    /// known.
    pub(crate) fn context(&self) -> Option<JobContext> {
        let run = self.run.as_ref()?;
        let roles = self.roles.as_ref()?;
        let with_role = |a: &Actor| Actor {
            permission: roles.role_of(a.id),
            ..a.clone()
        };
        Some(JobContext {
            repository: self.repository.to_string(),
            labels: self.labels.clone(),
            event: run.event.clone(),
            head_repository: run.head_repository.clone(),
            head_owner: run.head_owner.as_ref().map(with_role),
            actor: with_role(&run.actor),
            triggering_actor: run.triggering.as_ref().map(with_role),
            workflow: run.workflow.clone(),
            git_ref: run.git_ref.clone(),
            head_sha: run.head_sha.clone(),
            default_branch: run.default_branch.clone(),
            run_approval: self.approval.as_ref().map(|a| RunApproval {
                approver: with_role(&a.approver),
                ..a.clone()
            }),
            usage: self.usage,
            today: Some(Day(self.today)),
            // Each known team with those of the job's people who are in it: what the
            // decision read of it.
            teams: self
                .teams
                .iter()
                .filter_map(|(t, members)| {
                    let members = members.as_ref()?;
                    let people = [
                        Some(&run.actor),
                        run.triggering.as_ref(),
                        run.head_owner.as_ref(),
                        self.approval.as_ref().map(|a| &a.approver),
                    ];
                    let mut ids: Vec<i64> = people
                        .into_iter()
                        .flatten()
                        .map(|p| p.id)
                        .filter(|id| members.contains(*id))
                        .collect();
                    ids.sort_unstable();
                    ids.dedup();
                    Some((t.clone(), ids))
                })
                .collect(),
        })
    }
}

async fn decide_job(
    state: &AppState,
    job: &Handling<'_>,
    repository: &str,
    w: &WorkflowJob,
    route: &Routing<'_>,
    writes: &mut Vec<Write>,
    after: &mut Vec<After>,
) -> anyhow::Result<Step> {
    let policy = &route.policy;
    let (group, routed) = (route.group, route.routed);
    // Most jobs run on GitHub's own runners: settle those before anything is read. (Not
    // recorded either: the decisions table is about managed resources.) Routed once: the
    // decision starts from it.
    let Some(resource) = tracked(routed) else {
        return Ok(Step::Did("not managed".into()));
    };
    let project = policy.project_of(repository).map(str::to_lowercase);
    let run = state.store.get_run(w.run_id, w.run_attempt).await?;
    let now = Timestamp::now();
    let mut view = view_of(state, policy, repository, resource, run).await?;
    view.labels = w.labels.clone();
    view.runner_group = group;
    view.routed = Some(routed);
    // The metric is the decision engine's time: the store reads around it (approvals, pools)
    // are not counted.
    let started = std::time::Instant::now();
    let mut decision = policy.decide(&view);
    let mut deciding = started.elapsed();
    let mut approval_used = None;
    // Unstored, a decision that is not final (a run approval to consider, a fact to wait for)
    // or a denial (a run to cancel) needs the delivery stored first.
    let unstored = job.mode == Mode::Unstored;
    if unstored && matches!(decision, Decision::Deny(_) | Decision::Undecided { .. }) {
        return Ok(Step::StoreFirst);
    }
    if decision.rule() == Some(DenyRule::UserNotAllowed)
        && let Some((approved, used)) =
            crate::run_approvals::consider(state, policy, &mut view, w.run_id, w.run_attempt)
                .await?
    {
        decision = approved;
        approval_used = used;
    }
    if let Decision::Undecided { resource, missing } = decision {
        // Roles cannot come without a token; a run can still come by its webhook.
        let obtainable = missing == Missing::Run || state.github.is_some();
        if obtainable && now < job.deadline {
            return Ok(Step::Wait(match missing {
                Missing::Run => Wait::Run {
                    repository: repository.to_string(),
                    run_id: w.run_id,
                    attempt: w.run_attempt,
                },
                Missing::Roles => Wait::Roles {
                    repository: repository.to_string(),
                },
                Missing::Teams => Wait::Teams {
                    teams: view.unknown_teams(),
                },
            }));
        }
        state.metrics.facts_unavailable(missing);
        decision = Decision::facts_unavailable(policy, repository, resource, missing);
    }
    // Sponsor pools: a job only used-up pools fund is refused before it takes a machine.
    if let Decision::Allow { resource: id, .. } = decision
        && let Some(pools) =
            crate::credit::exhausted(state, &policy.resource(id).name, project.as_deref()).await?
    {
        if unstored {
            return Ok(Step::StoreFirst);
        }
        decision = Decision::budget_exhausted(policy, repository, id, &pools);
    }
    let started = std::time::Instant::now();
    let message = decision.message();
    deciding += started.elapsed();
    let rule = decision.rule().map(|r| r.code());
    let resource_name = decision
        .resource()
        .map(|id| policy.resource(id).name.to_string());
    let Decision::Deny(denial) = &decision else {
        record(
            w,
            repository,
            &project,
            &resource_name,
            &decision,
            &view,
            job,
            None,
            writes,
        );
        if let (Decision::Allow { .. }, Some(approval)) = (&decision, approval_used) {
            writes.push(crate::run_approvals::job_used(
                approval,
                w.id,
                w.run_id,
                w.run_attempt,
                job.delivery,
            ));
        }
        // Counted once committed: an unstored delivery's effects may be rolled back.
        after.push(After::Decided {
            outcome: decision.outcome(),
            deciding,
        });
        return Ok(Step::Did(decision.outcome().to_string()));
    };
    state.metrics.decide(deciding);
    let rule = rule.unwrap_or(denial.rule.code());
    let acted = match cancel(state, job, repository, w.run_id).await {
        Cancel::Acted(acted) => acted,
        Cancel::Wait(wait) => return Ok(Step::Wait(wait)),
        Cancel::Failed(error) => {
            state.metrics.decision(decision.outcome(), Some(rule));
            anyhow::bail!("denied ({rule}) but the run could not be cancelled: {error}");
        }
    };
    tracing::info!(
        repository,
        run_id = w.run_id,
        job_id = w.id,
        rule,
        acted,
        "job denied"
    );
    state.metrics.decision(decision.outcome(), Some(rule));
    record(
        w,
        repository,
        &project,
        &resource_name,
        &decision,
        &view,
        job,
        message.clone(),
        writes,
    );
    after.extend(explain_cancel(&acted, repository, w, rule, message));
    Ok(Step::Did(format!("deny ({rule}): {acted}")))
}

/// The writes that record a decision.
#[allow(clippy::too_many_arguments)]
fn record(
    w: &WorkflowJob,
    repository: &str,
    project: &Option<String>,
    resource: &Option<String>,
    decision: &Decision,
    view: &GuardJob<'_>,
    job: &Handling<'_>,
    message: Option<String>,
    writes: &mut Vec<Write>,
) {
    if let Some(resource) = resource {
        writes.push(Write::JobStatus {
            job_id: w.id,
            project: project.clone(),
            resource: resource.clone(),
            status: JobStatus::Queued,
            at: now_text(),
        });
    }
    writes.push(Write::Decision {
        decision: DecisionRecord {
            delivery_id: job.delivery.to_string(),
            job_id: w.id,
            run_id: w.run_id,
            repository: repository.to_string(),
            project: project.clone(),
            resource: resource.clone(),
            outcome: decision.outcome().to_string(),
            rule: decision.rule().map(|r| r.code().to_string()),
            message,
            decided_at: time_text(Timestamp::now()),
            origin: "webhook".into(),
        },
        context: view
            .context()
            .and_then(|ctx| serde_json::to_string(&ctx).ok()),
    });
}

async fn month_usage(
    state: &AppState,
    policy: &Policy,
    project: &str,
    resource: ResourceId,
    today: Date,
) -> anyhow::Result<Usage> {
    let month = today.strftime("%Y-%m").to_string();
    let (project_minutes, resource_minutes) = state
        .store
        .minutes_used(project, &policy.resource(resource).name, &month)
        .await?;
    Ok(Usage {
        project_minutes,
        resource_minutes,
    })
}

/// Counts a completed managed job's minutes (once per job id: [`Effects::finish`] says "job
/// counted before" when the store already had it) and marks the job completed.
fn count_minutes(
    state: &AppState,
    repository: &str,
    job: &WorkflowJob,
    writes: &mut Vec<Write>,
) -> anyhow::Result<String> {
    let policy = state.policy.load();
    let Some(resource) = route(&policy, &job.labels, job.runner_group_name.as_deref()) else {
        return Ok("not managed".into());
    };
    track_job(
        &policy,
        repository,
        job,
        Some(resource),
        JobStatus::Completed,
        writes,
    );
    writes.push(crate::time_limits::disarm(job));
    // Its machine is free (a claim is kept only on capped resources; deleting none is cheap).
    let holder = job
        .runner_name
        .as_deref()
        .map(|runner| crate::caps::holder(job.run_id, job.run_attempt, runner));
    if let Some(holder) = &holder {
        writes.push(Write::Release {
            holder: holder.clone(),
        });
    }
    let times = job.started_at.zip(job.completed_at);
    let (Some((start, end)), Some(project)) = (times, policy.project_of(repository)) else {
        // Nothing to charge a pool with: what the job held of one is given back.
        if let Some(holder) = holder {
            writes.push(Write::Credit(CreditWrite::Unreserve { holder }));
        }
        return Ok(if times.is_none() {
            "completed job without times: nothing to count".into()
        } else {
            "not a project repository: not counted".into()
        });
    };
    let minutes = minutes_between(start, end);
    let day = TimeZone::UTC.to_datetime(end).date().to_string();
    let resource = policy.resource(resource).name.to_string();
    let project = project.to_lowercase();
    let what = format!("{minutes} minutes counted for {project} on {resource}");
    crate::credit::settle(
        state, holder, job.id, &project, &resource, &day, minutes, writes,
    );
    writes.push(Write::Minutes {
        job_id: job.id,
        project,
        resource,
        day,
        minutes,
    });
    Ok(what)
}

/// Whole minutes from start to end, a started minute counting as one (providers bill so).
fn minutes_between(start: Timestamp, end: Timestamp) -> i64 {
    let d = end.duration_since(start);
    if d.is_negative() {
        return 0;
    }
    d.as_secs() / 60 + i64::from(d.as_secs() % 60 != 0 || d.subsec_nanos() != 0)
}

/// A role-changing event: the repositories whose roles it may change are made stale (in the
/// store with this delivery, so every replica sees it; in memory and fetched again after the
/// commit).
fn on_role_change(
    state: &AppState,
    name: &str,
    e: &RoleChangeEvent,
    writes: &mut Vec<Write>,
    after: &mut Vec<After>,
) -> anyhow::Result<String> {
    let at = Timestamp::now();
    let org = e
        .organization
        .as_ref()
        .map(|o| o.login.clone())
        .unwrap_or_else(|| state.policy.load().org().to_string());
    let mut repos: Option<Vec<String>> = Some(Vec::new());
    let person = e
        .member
        .as_ref()
        .or(e.membership.as_ref().and_then(|m| m.user.as_ref()));
    match (name, e.action.as_str()) {
        // A repository's own collaborators; a repository renamed, moved, deleted, made
        // private or public.
        ("member", _) | ("repository", _) => {
            if let Some(r) = &e.repository {
                repos.get_or_insert_default().push(r.full_name.clone());
                if let Some(from) = e
                    .changes
                    .as_ref()
                    .and_then(|c| c.pointer("/repository/name/from"))
                    .and_then(|v| v.as_str())
                    && let Some((owner, _)) = r.full_name.split_once('/')
                {
                    repos
                        .get_or_insert_default()
                        .push(format!("{owner}/{from}"));
                }
            }
        }
        // A team's repositories or permissions.
        ("team", _) => match (&e.repository, &e.team) {
            (Some(r), _) => repos.get_or_insert_default().push(r.full_name.clone()),
            (None, _) if e.action == "deleted" => repos = None,
            (None, Some(Team { slug: Some(slug) })) => after.push(After::TeamChanged {
                org: org.clone(),
                team: slug.clone(),
            }),
            // A team that cannot be named: everything may have changed.
            (None, _) => repos = None,
        },
        // A team's members: a member who left loses what the team gave everywhere it is
        // listed; one who joined gains the team's repositories.
        ("membership", action) => {
            if action == "removed"
                && let Some(p) = person
            {
                repos
                    .get_or_insert_default()
                    .extend(state.facts.repositories_of(p.id));
            }
            // (A deleted team has no slug and no repositories left to list.)
            if let Some(slug) = e.team.as_ref().and_then(|t| t.slug.as_ref()) {
                after.push(After::TeamChanged {
                    org: org.clone(),
                    team: slug.clone(),
                });
            }
        }
        // Someone left the organisation: every list naming them. Someone joined: the
        // organisation's base permission may give them a role anywhere.
        ("organization", "member_removed") => {
            if let Some(p) = person {
                repos
                    .get_or_insert_default()
                    .extend(state.facts.repositories_of(p.id));
            }
        }
        ("organization", "member_added" | "renamed") => repos = None,
        ("organization", other) => return Ok(format!("organization `{other}`: no role changed")),
        _ => {}
    }
    let teams = changed_teams(state, name, e, at, writes, after);
    let what = match &repos {
        None => "roles changed: every repository's role facts made stale".to_string(),
        Some(list) if list.is_empty() => format!("{name} `{}`: roles looked up again", e.action),
        Some(list) => format!(
            "roles changed on {}: made stale",
            list.iter()
                .map(|r| r.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let at_text = time_text(at);
    match &repos {
        None => writes.push(Write::InvalidateRoles {
            repository: None,
            at: at_text,
        }),
        Some(list) => writes.extend(list.iter().map(|r| Write::InvalidateRoles {
            repository: Some(r.to_ascii_lowercase()),
            at: at_text.clone(),
        })),
    }
    if repos.as_ref().is_none_or(|l| !l.is_empty()) {
        after.push(After::Invalidate {
            repositories: repos,
            at,
        });
    }
    Ok(match teams {
        Some(teams) => format!("{what}; {teams}"),
        None => what,
    })
}

/// A `membership` or `team` event about a team some grant names: its member list is made
/// stale (in the store with this delivery, for every replica; in memory and fetched again
/// after the commit). A team named by id alone (deleted) may be any of them. What was made
/// stale, if anything.
fn changed_teams(
    state: &AppState,
    name: &str,
    e: &RoleChangeEvent,
    at: Timestamp,
    writes: &mut Vec<Write>,
    after: &mut Vec<After>,
) -> Option<String> {
    if !matches!(name, "membership" | "team") {
        return None;
    }
    let granted = state.policy.load().granted_teams();
    let teams: Option<Vec<String>> = match e.team.as_ref().and_then(|t| t.slug.as_ref()) {
        Some(slug) => Some(
            granted
                .into_iter()
                .filter(|t| t.eq_ignore_ascii_case(slug))
                .collect(),
        ),
        None if granted.is_empty() => Some(Vec::new()),
        None => None,
    };
    let at_text = time_text(at);
    let what = match &teams {
        Some(list) if list.is_empty() => return None,
        Some(list) => {
            writes.extend(list.iter().map(|t| {
                Write::TeamFacts(TeamFactsWrite::Invalidate {
                    team: Some(t.clone()),
                    at: at_text.clone(),
                })
            }));
            format!("members of team {} made stale", list.join(", "))
        }
        None => {
            writes.push(Write::TeamFacts(TeamFactsWrite::Invalidate {
                team: None,
                at: at_text,
            }));
            "every team's members made stale".to_string()
        }
    };
    after.push(After::TeamsChanged { teams, at });
    Some(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_minute_counts_whole() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            minutes_between(t("2021-08-05T10:34:58Z"), t("2021-08-05T10:38:16Z")),
            4
        );
        assert_eq!(
            minutes_between(t("2021-08-05T10:00:00Z"), t("2021-08-05T10:02:00Z")),
            2
        );
        assert_eq!(
            minutes_between(t("2021-08-05T10:00:00Z"), t("2021-08-05T10:00:00Z")),
            0
        );
        assert_eq!(
            minutes_between(t("2021-08-05T10:00:01Z"), t("2021-08-05T10:00:00Z")),
            0
        );
    }
}
