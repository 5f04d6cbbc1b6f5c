//! Run approvals (`/gatehouse run <sha>`, recorded by the guard) in a project's history: they
//! are not in git, so the caller reads them from the guard's store and [`merge`] puts them
//! among the grant events by day, as `run-approved` events.

use crate::Event;

/// A run approval as the history shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunApprovalEntry {
    /// RFC 3339, UTC.
    pub approved_at: String,
    pub approver_login: String,
    pub pull_number: i64,
    pub head_sha: String,
    pub head_repository: String,
    /// Empty: every resource the project holds.
    pub resources: Vec<String>,
    /// The jobs that ran under it, and their counted minutes.
    pub jobs: i64,
    pub minutes: i64,
}

impl RunApprovalEntry {
    fn event(&self) -> Event {
        let sha = self.head_sha.get(..12).unwrap_or(&self.head_sha);
        Event {
            commit: sha.to_string(),
            date: self
                .approved_at
                .get(..10)
                .unwrap_or(&self.approved_at)
                .to_string(),
            author: self.approver_login.clone(),
            subject: format!(
                "pull request #{} from {}",
                self.pull_number, self.head_repository
            ),
            resource: if self.resources.is_empty() {
                "*".into()
            } else {
                self.resources.join(",")
            },
            change: "run-approved",
            details: format!(
                "commit {sha} approved for managed runners by {}; {} job(s) ran under it, {} minutes counted",
                self.approver_login, self.jobs, self.minutes
            ),
        }
    }
}

/// `events` (oldest first) with `approvals` among them by day (oldest first; on one day, the
/// grant events before the approvals).
pub fn merge(events: Vec<Event>, approvals: &[RunApprovalEntry]) -> Vec<Event> {
    let mut all: Vec<(String, usize, Event)> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| (e.date.clone(), i, e))
        .collect();
    let mut approvals: Vec<&RunApprovalEntry> = approvals.iter().collect();
    approvals.sort_by(|a, b| a.approved_at.cmp(&b.approved_at));
    let base = all.len();
    for (i, a) in approvals.into_iter().enumerate() {
        let e = a.event();
        all.push((e.date.clone(), base + i, e));
    }
    all.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().map(|(_, _, e)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(date: &str) -> Event {
        Event {
            commit: "abc".into(),
            date: date.into(),
            author: "core".into(),
            subject: "apply".into(),
            resource: "gpu".into(),
            change: "granted",
            details: String::new(),
        }
    }

    fn approval(at: &str, pull: i64) -> RunApprovalEntry {
        RunApprovalEntry {
            approved_at: at.into(),
            approver_login: "ann".into(),
            pull_number: pull,
            head_sha: "6dcb09b5b57875f334f61aebed695e2e4193db5e".into(),
            head_repository: "drive-by/numpy-feedstock".into(),
            resources: vec![],
            jobs: 3,
            minutes: 42,
        }
    }

    #[test]
    fn approvals_go_among_the_grant_events_by_day() {
        let events = vec![grant("2026-01-01"), grant("2026-03-01")];
        let merged = merge(
            events,
            &[
                approval("2026-03-01T09:00:00Z", 8),
                approval("2026-02-01T09:00:00Z", 7),
                approval("2026-04-01T09:00:00Z", 9),
            ],
        );
        let seen: Vec<(&str, &str)> = merged.iter().map(|e| (e.date.as_str(), e.change)).collect();
        assert_eq!(
            seen,
            [
                ("2026-01-01", "granted"),
                ("2026-02-01", "run-approved"),
                ("2026-03-01", "granted"),
                ("2026-03-01", "run-approved"),
                ("2026-04-01", "run-approved"),
            ]
        );
        let a = &merged[1];
        assert_eq!(
            (a.commit.as_str(), a.author.as_str(), a.resource.as_str()),
            ("6dcb09b5b578", "ann", "*")
        );
        assert_eq!(a.subject, "pull request #7 from drive-by/numpy-feedstock");
        assert_eq!(
            a.details,
            "commit 6dcb09b5b578 approved for managed runners by ann; 3 job(s) ran under it, 42 minutes counted"
        );
    }
}
