//! Deliveries that wait, and the facts they wait for.
//!
//! A queued job whose run, roles or team members the guard does not hold yet is stored and
//! left unprocessed ([`crate::guard::Handled::Waiting`]); a task here fetches what it needs
//! (the run's attempt: first its `workflow_run` event, which may be on its way, then GitHub's
//! API; the repository's roles: [`crate::facts`]; the members of its grant's teams:
//! [`crate::team_facts`]) with retries until the delivery's deadline, then
//! processes it again. Past the deadline the guard denies it `facts-unavailable`. A denied run
//! that GitHub would not cancel is tried again the same way.
//!
//! Also here: the role and team facts' upkeep (fetched at start and on reload for every
//! granted project and every team a grant names, refreshed before they go stale, read from the
//! store when another replica changed them) and a sweep that picks up deliveries left waiting
//! by a replica that stopped.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;

use crate::clock::later;
use crate::events::run_record;
use crate::facts::granted_repositories;
use crate::guard::{self, Processed, Wait};
use crate::state::AppState;
use crate::store::{StoredDelivery, Write, now_text};

/// How long a missing run is waited for from its own `workflow_run` event (which usually
/// arrives first, or a moment later) before GitHub is asked for it.
const RUN_EVENT_GRACE: Duration = Duration::from_secs(2);

/// How often the store is looked at for role facts another replica changed.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// How often deliveries left waiting by another replica (or a stopped process) are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// What became of a delivery handed to [`process_or_wait`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Processed: what was done.
    Processed(String),
    /// Processing failed; marked processed with the error.
    Failed(String),
    /// Stored, and waiting: for what.
    Waiting(String),
}

/// How long a webhook's answer waits for a missing fact before it says "waiting" (202) and
/// lets the delivery wait in the background: most facts arrive within it (the run's own event,
/// a first fetch of a repository's roles), so most answers carry the decision.
pub const INLINE_WAIT: Duration = Duration::from_secs(3);

/// Processes a stored delivery; if it must wait, starts its waiter and waits up to `inline`
/// for it, else says what it waits for. `Err`: the store failed, the delivery stays
/// unprocessed.
pub async fn process_or_wait(
    state: &Arc<AppState>,
    d: StoredDelivery,
    parsed: Option<guard::Parsed>,
    received_at: Timestamp,
    deadline: Timestamp,
    inline: Duration,
) -> anyhow::Result<Outcome> {
    let parsed = parsed.unwrap_or_else(|| crate::events::parse_event(&d.event, &d.body));
    let processed =
        guard::process_parsed(state, &d.delivery_id, &parsed, received_at, deadline).await?;
    match processed {
        Processed::Done(Ok(what)) => Ok(Outcome::Processed(what)),
        Processed::Done(Err(error)) => Ok(Outcome::Failed(error)),
        Processed::Waiting(wait) => {
            let what = wait.describe();
            if let Some(done) = spawn_waiter(state, d, received_at, deadline, wait)
                && let Ok(Ok(outcome)) = tokio::time::timeout(inline, done).await
            {
                return Ok(outcome);
            }
            Ok(Outcome::Waiting(format!("stored; {what}")))
        }
    }
}

/// Starts the task that fetches what a delivery waits for and processes it again, until it
/// is processed; the receiver hears how it ended. `None` when this process already waits on
/// it.
pub fn spawn_waiter(
    state: &Arc<AppState>,
    d: StoredDelivery,
    received_at: Timestamp,
    deadline: Timestamp,
    wait: Wait,
) -> Option<tokio::sync::oneshot::Receiver<Outcome>> {
    if !state.waiting.claim(&d.delivery_id) {
        return None;
    }
    state.metrics.waiting(1);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let state = state.clone();
    tokio::spawn(async move {
        let id = d.delivery_id.clone();
        match wait_and_process(&state, d, received_at, deadline, wait).await {
            Ok(outcome) => {
                let _ = tx.send(outcome);
            }
            Err(e) => tracing::error!(
                delivery = id,
                error = format!("{e:#}"),
                "a waiting delivery could not be processed; the sweep will try again"
            ),
        }
        state.waiting.release(&id);
        state.metrics.waiting(-1);
    });
    Some(rx)
}

async fn wait_and_process(
    state: &Arc<AppState>,
    d: StoredDelivery,
    received_at: Timestamp,
    deadline: Timestamp,
    mut wait: Wait,
) -> anyhow::Result<Outcome> {
    let mut cancel_backoff = Duration::from_secs(2);
    loop {
        let until = tokio::time::Instant::now() + until(deadline);
        match &wait {
            Wait::Run {
                repository,
                run_id,
                attempt,
            } => {
                if let Err(e) = obtain_run(state, repository, *run_id, *attempt, until).await {
                    tracing::warn!(
                        repository,
                        run_id,
                        attempt,
                        error = format!("{e:#}"),
                        "cannot learn the run's attempt"
                    );
                }
            }
            Wait::Roles { repository } => {
                if let Some(github) = &state.github {
                    read_roles(state, github, repository, until).await;
                }
            }
            Wait::Teams { teams } => {
                if let Some(github) = &state.github {
                    let org = state.policy.load().org().to_string();
                    for team in teams {
                        read_team(state, github, &org, team, until).await;
                    }
                }
            }
            Wait::Cancel { .. } => {
                tokio::time::sleep(cancel_backoff).await;
                cancel_backoff = (cancel_backoff * 2).min(Duration::from_secs(60));
            }
        }
        // Store failures are retried: the delivery must not be left undecided.
        let mut store_backoff = Duration::from_millis(200);
        let processed = loop {
            match guard::process(
                state,
                &d.delivery_id,
                &d.event,
                &d.body,
                received_at,
                deadline,
            )
            .await
            {
                Ok(p) => break p,
                Err(e) if store_backoff < Duration::from_secs(30) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "cannot store a decision; retrying"
                    );
                    tokio::time::sleep(store_backoff).await;
                    store_backoff *= 2;
                }
                Err(e) => return Err(e),
            }
        };
        match processed {
            Processed::Done(outcome) => {
                return Ok(match outcome {
                    Ok(what) => {
                        tracing::info!(
                            delivery = d.delivery_id,
                            outcome = what,
                            "waiting delivery processed"
                        );
                        Outcome::Processed(what)
                    }
                    Err(error) => {
                        tracing::error!(
                            delivery = d.delivery_id,
                            error,
                            "waiting delivery processed with an error"
                        );
                        Outcome::Failed(error)
                    }
                });
            }
            Processed::Waiting(next) => {
                // The fact came but another is missing (the run, then the roles), or it did
                // not come and the deadline has not passed: go on.
                if next == wait
                    && !matches!(next, Wait::Cancel { .. })
                    && Timestamp::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                wait = next;
            }
        }
    }
}

/// Time left until `deadline`, zero when it has passed.
fn until(deadline: Timestamp) -> Duration {
    let left = deadline.duration_since(Timestamp::now());
    Duration::try_from(left).unwrap_or(Duration::ZERO)
}

/// The run's attempt: from its `workflow_run` event if it comes within a short grace, else
/// from GitHub's API, retried until `until`; stored for the run's other jobs.
async fn obtain_run(
    state: &AppState,
    repository: &str,
    run_id: i64,
    attempt: i64,
    until: tokio::time::Instant,
) -> anyhow::Result<()> {
    let grace = tokio::time::Instant::now() + RUN_EVENT_GRACE;
    let store = &state.store;
    let poll = Duration::from_millis(100);
    if store
        .wait_run(run_id, attempt, grace.min(until), poll)
        .await?
        .is_some()
    {
        return Ok(());
    }
    // Without a token only the webhook can tell: wait for it until the deadline.
    let Some(github) = &state.github else {
        if store
            .wait_run(run_id, attempt, until, poll)
            .await?
            .is_some()
        {
            return Ok(());
        }
        anyhow::bail!(
            "no workflow_run event for attempt {attempt} of run {run_id}, and no token to ask GitHub"
        );
    };
    tracing::info!(
        repository,
        run_id,
        attempt,
        "workflow_run event missed: reading the attempt from GitHub"
    );
    let mut backoff = Duration::from_millis(250);
    loop {
        let answer =
            tokio::time::timeout_at(until, github.run_attempt(repository, run_id, attempt))
                .await
                .context("GitHub did not give the run's attempt in time")?;
        let failure = match answer {
            Ok(Some(run)) => {
                let record = run_record(run, repository, None)
                    .with_context(|| format!("GitHub's run {run_id} names no actor"))?;
                state
                    .store
                    .commit(vec![Write::Run {
                        run: record,
                        now: now_text(),
                    }])
                    .await?;
                return Ok(());
            }
            Ok(None) => {
                anyhow::anyhow!("GitHub has no attempt {attempt} of run {run_id} in {repository}")
            }
            Err(e) if e.is_refusal() => return Err(e.into()),
            Err(e) => e.into(),
        };
        if tokio::time::Instant::now() + backoff >= until {
            return Err(failure);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Fetches the roles of the granted repositories among `repositories` (`None`: every granted
/// one, and the members of every team a grant names) that are not fresh, a few at a time.
/// Failures are reported, not returned: a job that needs a list that could not be had waits
/// for it, then is denied.
pub async fn refresh_granted(state: &Arc<AppState>, repositories: Option<&[String]>) {
    let Some(github) = state.github.clone() else {
        return;
    };
    let granted = granted_repositories(&state.policy.load());
    let wanted: Vec<String> = match repositories {
        None => granted,
        Some(list) => {
            let list: HashSet<String> = list.iter().map(|r| r.to_ascii_lowercase()).collect();
            granted.into_iter().filter(|r| list.contains(r)).collect()
        }
    };
    let due = state
        .facts
        .due(&wanted, Timestamp::now(), state.config.facts_ttl);
    let teams = async {
        if repositories.is_none() {
            refresh_teams(state, &github, None).await;
        }
    };
    tokio::join!(refresh_all(state, &github, due), teams);
}

/// Fetches `repositories`' roles, four at a time (GitHub asks for no more than a few requests
/// at once), each within the facts deadline.
async fn refresh_all(
    state: &Arc<AppState>,
    github: &Arc<gatehouse_github::Client>,
    repositories: Vec<String>,
) {
    let gate = Arc::new(tokio::sync::Semaphore::new(4));
    let mut tasks = tokio::task::JoinSet::new();
    for repository in repositories {
        let (state, github, gate) = (state.clone(), github.clone(), gate.clone());
        tasks.spawn(async move {
            let Ok(_permit) = gate.acquire_owned().await else {
                return;
            };
            let until = tokio::time::Instant::now() + state.config.facts_deadline;
            if read_roles(&state, &github, &repository, until).await {
                state.metrics.role_fetch("fetched");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Fetches the member lists of the teams grants name among `teams` (`None`: every one) that
/// are not fresh, one at a time (a handful of teams at most), each within the facts deadline.
pub async fn refresh_teams(
    state: &Arc<AppState>,
    github: &Arc<gatehouse_github::Client>,
    teams: Option<&[String]>,
) {
    let policy = state.policy.load();
    let org = policy.org().to_string();
    let granted = policy.granted_teams();
    let wanted: Vec<String> = match teams {
        None => granted,
        Some(list) => granted
            .into_iter()
            .filter(|t| list.iter().any(|l| l.eq_ignore_ascii_case(t)))
            .collect(),
    };
    let due = state
        .team_facts
        .due(&wanted, Timestamp::now(), state.config.facts_ttl);
    for team in due {
        let until = tokio::time::Instant::now() + state.config.facts_deadline;
        read_team(state, github, &org, &team, until).await;
    }
}

/// Reads the roles on `repository` again unless they are fresh, until `until`. A failure is
/// counted and logged, not returned: a job that needs them waits for them, then is denied
/// `facts-unavailable`. Whether they were had.
async fn read_roles(
    state: &AppState,
    github: &gatehouse_github::Client,
    repository: &str,
    until: tokio::time::Instant,
) -> bool {
    let ttl = state.config.facts_ttl;
    match state
        .facts
        .refresh(github, &state.store, repository, ttl, until)
        .await
    {
        Ok(_) => true,
        Err(e) => {
            state.metrics.role_fetch("failed");
            tracing::warn!(
                repository,
                error = format!("{e:#}"),
                "cannot read the roles on a repository"
            );
            false
        }
    }
}

/// Reads the members of `team` (of the organisation `org`) again unless they are fresh, until
/// `until`; a failure is logged, as [`read_roles`] does.
async fn read_team(
    state: &AppState,
    github: &gatehouse_github::Client,
    org: &str,
    team: &str,
    until: tokio::time::Instant,
) {
    let ttl = state.config.facts_ttl;
    if let Err(e) = state
        .team_facts
        .refresh(github, &state.store, org, team, ttl, until)
        .await
    {
        tracing::warn!(
            team,
            error = format!("{e:#}"),
            "cannot read the members of a team a grant names"
        );
    }
}

/// A team's members or permissions changed: the roles on its repositories did. Marks the
/// granted ones stale (in the store, for every replica) and fetches them again; if the team's
/// repositories cannot be listed (a deleted team), every granted repository's.
pub async fn team_changed(state: &Arc<AppState>, org: &str, team: &str) {
    let Some(github) = state.github.clone() else {
        return;
    };
    let repos = match github.team_repositories(org, team).await {
        Ok(Some(list)) => Some(list),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(
                team,
                error = %e,
                "cannot list a team's repositories: every granted repository's roles are looked up again"
            );
            None
        }
    };
    let at = Timestamp::now();
    let at_text = crate::store::time_text(at);
    let writes: Vec<Write> = match &repos {
        Some(list) => list
            .iter()
            .map(|r| Write::InvalidateRoles {
                repository: Some(r.to_ascii_lowercase()),
                at: at_text.clone(),
            })
            .collect(),
        None => vec![Write::InvalidateRoles {
            repository: None,
            at: at_text,
        }],
    };
    if let Err(e) = state.store.commit(writes).await {
        tracing::error!(error = format!("{e:#}"), "cannot mark role facts stale");
    }
    match &repos {
        Some(list) => {
            for r in list {
                state.facts.invalidate(Some(r), at);
            }
        }
        None => state.facts.invalidate(None, at),
    }
    refresh_granted(state, repos.as_deref()).await;
}

/// The upkeep of the role facts, for as long as the guard runs: reads what the store holds,
/// fetches every granted repository's list that is not fresh, then every quarter of the time
/// to live fetches those about to go stale, and every second reads what other replicas
/// changed. Also sweeps up deliveries left waiting.
pub fn spawn_upkeep(state: &Arc<AppState>) {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        if let Some(state) = weak.upgrade() {
            if let Err(e) = state.facts.poll(&state.store).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot read the stored role facts"
                );
            }
            if let Err(e) = state.team_facts.poll(&state.store).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "cannot read the stored team facts"
                );
            }
            refresh_granted(&state, None).await;
        }
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let sync_every = weak.upgrade().map_or(Duration::from_secs(900), |s| {
            (s.config.facts_ttl / 4).max(POLL_EVERY)
        });
        let mut sync = tokio::time::interval(sync_every);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = poll.tick() => {
                    let Some(state) = weak.upgrade() else { return };
                    if let Err(e) = state.facts.poll(&state.store).await {
                        tracing::debug!(error = format!("{e:#}"), "cannot poll the role facts");
                    }
                    if let Err(e) = state.team_facts.poll(&state.store).await {
                        tracing::debug!(error = format!("{e:#}"), "cannot poll the team facts");
                    }
                }
                _ = sync.tick() => {
                    let Some(state) = weak.upgrade() else { return };
                    let state2 = state.clone();
                    // In the background: a long sync must not hold up polls and sweeps.
                    tokio::spawn(async move { refresh_granted(&state2, None).await });
                }
                _ = sweep.tick() => {
                    let Some(state) = weak.upgrade() else { return };
                    if let Err(e) = sweep_once(&state).await {
                        tracing::warn!(error = format!("{e:#}"), "cannot sweep waiting deliveries");
                    }
                }
            }
        }
    });
}

/// Picks up deliveries left unprocessed longer than a waiter would hold them (their replica
/// stopped, say) and waits on them here.
async fn sweep_once(state: &Arc<AppState>) -> anyhow::Result<()> {
    let slack = state.config.facts_deadline + Duration::from_secs(30);
    for d in state.store.unprocessed(500).await? {
        let received_at: Timestamp = d.received_at.parse().unwrap_or_else(|_| Timestamp::now());
        if later(received_at, slack) > Timestamp::now() || state.waiting.holds(&d.delivery_id) {
            continue;
        }
        process_or_wait(
            state,
            d,
            None,
            received_at,
            state.fresh_deadline(),
            Duration::ZERO,
        )
        .await?;
    }
    Ok(())
}
