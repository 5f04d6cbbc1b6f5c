//! A policy that many threads decide with while another replaces it.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::Policy;

/// The current policy. Readers take a cheap snapshot ([`SharedPolicy::load`]) and decide with
/// it; a reload compiles a new [`Policy`] off to the side and swaps it in with one atomic
/// store. A reader never sees a half-built policy, and one decision never mixes two.
pub struct SharedPolicy {
    current: ArcSwap<Policy>,
}

impl SharedPolicy {
    pub fn new(policy: Policy) -> Self {
        SharedPolicy {
            current: ArcSwap::from_pointee(policy),
        }
    }

    /// A snapshot to decide with; it stays valid however many reloads happen meanwhile.
    pub fn load(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Replaces the policy for every later [`SharedPolicy::load`].
    pub fn store(&self, policy: Policy) {
        self.current.store(Arc::new(policy));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decision, JobContext, compile};
    use gatehouse_core::Repo;
    use jiff::civil::date;

    fn repo(granted: bool) -> Policy {
        let mut files = vec![
            (
                "gatehouse.yml",
                "org: o\nreviewers: { teams: [t] }\nproviders:\n  c: { kind: cirun, access_repo: .cirun }\n",
            ),
            (
                "resources/gpu.yml",
                "name: gpu\nprovider: c\nlabels: [gpu]\n",
            ),
        ];
        if granted {
            files.push((
                "grants/p.yml",
                "project: p\ngrants:\n  - resource: gpu\n    granted: 2026-01-01\n",
            ));
        }
        compile(&Repo::from_sources(files), date(2026, 6, 1))
    }

    #[test]
    fn readers_see_one_whole_policy_or_the_other_while_it_is_swapped() {
        let shared = Arc::new(SharedPolicy::new(repo(false)));
        let job: JobContext = serde_json::from_str(
            r#"{"repository": "o/p", "labels": ["gpu"], "event": "push", "actor": {"login": "a", "id": 1, "permission": "write"}}"#,
        )
        .unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (shared, job, stop) = (shared.clone(), job.clone(), stop.clone());
                std::thread::spawn(move || {
                    let (mut allows, mut denies) = (0u32, 0u32);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let policy = shared.load();
                        // Within one snapshot, repeated decisions agree.
                        let first = policy.decide(&job);
                        assert_eq!(policy.decide(&job), first);
                        match first {
                            Decision::Allow { .. } => allows += 1,
                            Decision::Deny(_) => denies += 1,
                            other => panic!("the label is always managed: {other:?}"),
                        }
                    }
                    (allows, denies)
                })
            })
            .collect();
        for i in 0..200 {
            shared.store(repo(i % 2 == 0));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            r.join().expect("no reader panicked");
        }
        shared.store(repo(true));
        assert!(matches!(shared.load().decide(&job), Decision::Allow { .. }));
    }
}
