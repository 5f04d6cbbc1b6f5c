//! A job going in progress claims what it uses: a machine, against the concurrency caps
//! ([`crate::caps`]), and its expected cost, on a sponsor pool ([`crate::credit`]).
//!
//! Most claims fit, so they are first made as needs of the delivery's commit
//! ([`Claims::as_needs`]): the claims, the delivery and its other effects are committed in one
//! step, and the store checks inside that step that the job is within every cap and funded
//! ([`Need::WithinCaps`], [`Need::Funded`]). When one is refused, nothing is committed and the
//! delivery is handled again ([`Mode::Refused`]): each claim is then committed on its own
//! ([`Claims::check_caps`], [`Claims::check_pools`]) and a refusal is acted on: the run is
//! cancelled (`concurrency-exhausted`, `budget-exhausted`), or, past a cap with
//! `on_exceed: record`, the excess only recorded.

use gatehouse_core::model::OnExceed;
use gatehouse_policy::{Decision, ResourceId};
use jiff::Timestamp;

use crate::events::WorkflowJob;
use crate::guard::{After, Cancel, Handling, Mode, Routing, Step, cancel, explain_cancel};
use crate::source::ResourceCaps;
use crate::state::AppState;
use crate::store::{DecisionRecord, Need, Write, time_text};

/// What a job going in progress on a runner claims, and where it was routed.
pub(crate) struct Claims<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) job: &'a Handling<'a>,
    pub(crate) repository: &'a str,
    pub(crate) w: &'a WorkflowJob,
    pub(crate) route: &'a Routing<'a>,
}

/// A job in progress that a rule the guard counts refuses (a concurrency cap, a used-up
/// sponsor pool).
struct InProgressDenial {
    /// The resource's name.
    resource: String,
    decision: Decision,
    /// The decision is recorded under `<delivery id>:<suffix>` (the job's decision on its
    /// queued delivery stands).
    suffix: &'static str,
    /// Only record it (`on_exceed: record`); else its run is cancelled.
    record_only: bool,
    project: Option<String>,
}

/// Who claims: the job's claim key, its resource (by id and name) and its project.
struct Subject {
    holder: String,
    id: ResourceId,
    resource: String,
    project: Option<String>,
}

impl Claims<'_> {
    /// Who claims, when the job runs on a runner of a managed resource.
    fn subject(&self) -> Option<Subject> {
        let runner = self.w.runner_name.as_deref()?;
        let id = self.route.resource()?;
        let policy = &self.route.policy;
        Some(Subject {
            holder: crate::caps::holder(self.w.run_id, self.w.run_attempt, runner),
            id,
            resource: policy.resource(id).name.to_string(),
            project: policy.project_of(self.repository).map(str::to_lowercase),
        })
    }

    /// The claim on a machine, when caps apply to the job's resource.
    fn hold(&self, s: &Subject, now: Timestamp) -> Option<(Write, ResourceCaps)> {
        let source = self.state.source.load();
        let caps = source.caps.of(&s.resource)?.clone();
        let claim = crate::caps::hold(
            &caps,
            s.holder.clone(),
            &s.resource,
            s.project.clone(),
            self.repository,
            self.w.run_id,
            Some(self.w.id),
            now,
        );
        let started = Write::Started {
            hold: claim,
            gated: caps.gated,
        };
        Some((started, caps))
    }

    /// [`Mode::Unstored`] and [`Mode::Stored`]: the claims as writes of the delivery's commit,
    /// each with what the commit needs of it.
    pub(crate) async fn as_needs(
        &self,
        writes: &mut Vec<Write>,
        needs: &mut Vec<Need>,
    ) -> anyhow::Result<()> {
        let Some(s) = self.subject() else {
            return Ok(());
        };
        if let Some((started, _)) = self.hold(&s, Timestamp::now()) {
            writes.push(started);
            needs.push(Need::WithinCaps {
                holder: s.holder.clone(),
            });
        }
        let reservations = crate::credit::reservations(
            self.state,
            &s.holder,
            self.w.id,
            s.project.as_deref(),
            &s.resource,
        )
        .await?;
        if !reservations.is_empty() {
            writes.extend(reservations);
            needs.push(Need::Funded {
                holder: s.holder,
                job_id: self.w.id,
            });
        }
        Ok(())
    }

    /// [`Mode::Refused`]: the job's claim on a machine, committed at once (counted in the same
    /// statement). Beyond a cap, on a resource no gate serves, its run is cancelled
    /// (`on_exceed: cancel`) or the excess only recorded. `None`: within the caps (or gated:
    /// the gate decides).
    pub(crate) async fn check_caps(
        &self,
        writes: &mut Vec<Write>,
        after: &mut Vec<After>,
    ) -> anyhow::Result<Option<Step>> {
        let now = Timestamp::now();
        let Some(s) = self.subject() else {
            return Ok(None);
        };
        let Some((started, caps)) = self.hold(&s, now) else {
            return Ok(None);
        };
        let store = &self.state.store;
        store.commit(vec![started]).await?;
        if store.hold_state(&s.holder).await?.as_deref() != Some("over") {
            return Ok(None);
        }
        let (cap, running, limit) = crate::caps::reached_now(
            store,
            &caps,
            &s.resource,
            s.project.as_deref(),
            now,
            &s.holder,
        )
        .await?;
        let decision = Decision::concurrency_exhausted(
            &self.route.policy,
            self.repository,
            s.id,
            cap,
            running,
            limit,
            &caps.provider,
        );
        let denial = InProgressDenial {
            resource: s.resource,
            decision,
            suffix: "concurrency",
            record_only: caps.on_exceed == OnExceed::Record,
            project: s.project,
        };
        self.deny(denial, writes, after).await.map(Some)
    }

    /// [`Mode::Refused`]: the job reserves its expected cost on the first pool with it left.
    /// When pools fund it but none has it left, its run is cancelled (`budget-exhausted`).
    /// `None`: reserved, or not funded.
    pub(crate) async fn check_pools(
        &self,
        writes: &mut Vec<Write>,
        after: &mut Vec<After>,
    ) -> anyhow::Result<Option<Step>> {
        let Some(s) = self.subject() else {
            return Ok(None);
        };
        let reserved = crate::credit::reserve(
            self.state,
            &s.holder,
            self.w.id,
            s.project.as_deref(),
            &s.resource,
        )
        .await?;
        let crate::credit::Reserved::Exhausted(pools) = reserved else {
            return Ok(None);
        };
        let decision =
            Decision::budget_exhausted(&self.route.policy, self.repository, s.id, &pools);
        let denial = InProgressDenial {
            resource: s.resource,
            decision,
            suffix: "budget",
            record_only: false,
            project: s.project,
        };
        self.deny(denial, writes, after).await.map(Some)
    }

    /// Cancels the run of a job in progress that `denial` refuses (or only records it),
    /// records the decision, and leaves the reason on the commit.
    async fn deny(
        &self,
        denial: InProgressDenial,
        writes: &mut Vec<Write>,
        after: &mut Vec<After>,
    ) -> anyhow::Result<Step> {
        debug_assert_eq!(self.job.mode, Mode::Refused);
        let (state, repository, w) = (self.state, self.repository, self.w);
        let InProgressDenial {
            resource,
            decision,
            suffix,
            record_only,
            project,
        } = denial;
        let rule = decision.rule().map_or("deny", |r| r.code());
        let message = decision.message();
        let acted = if record_only {
            "recorded (on_exceed: record)".to_string()
        } else {
            match cancel(state, self.job, repository, w.run_id).await {
                Cancel::Acted(acted) => acted,
                Cancel::Wait(wait) => {
                    return Ok(Step::Wait(wait));
                }
                Cancel::Failed(error) => {
                    state.metrics.decision("deny", Some(rule));
                    anyhow::bail!("{rule}, but the run could not be cancelled: {error}");
                }
            }
        };
        tracing::info!(
            repository,
            run_id = w.run_id,
            job_id = w.id,
            resource,
            rule,
            acted,
            "job in progress denied"
        );
        state.metrics.decision("deny", Some(rule));
        writes.push(Write::Decision {
            decision: DecisionRecord {
                delivery_id: format!("{}:{suffix}", self.job.delivery),
                job_id: w.id,
                run_id: w.run_id,
                repository: repository.to_string(),
                project,
                resource: Some(resource),
                outcome: "deny".into(),
                rule: Some(rule.into()),
                message: message.clone(),
                decided_at: time_text(Timestamp::now()),
                origin: "webhook".into(),
            },
            context: None,
        });
        after.extend(explain_cancel(&acted, repository, w, rule, message));
        Ok(Step::Did(format!("deny ({rule}): {acted}")))
    }
}
