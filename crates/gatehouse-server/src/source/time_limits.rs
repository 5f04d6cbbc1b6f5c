//! Each resource's job time limit (`max_job_minutes`) as the access repository sets it; the
//! guard times jobs against it in [`crate::time_limits`].

use std::collections::HashMap;

use gatehouse_core::Repo;

/// Each resource's `max_job_minutes`, as of the last load of the access repository.
#[derive(Debug, Default)]
pub(crate) struct TimeLimits(HashMap<String, u32>);

impl TimeLimits {
    pub fn from_repo(repo: &Repo) -> TimeLimits {
        TimeLimits(
            repo.resources
                .iter()
                .filter_map(|r| {
                    let name = &r.value.name.value;
                    Some((name.clone(), repo.max_job_minutes(name)?))
                })
                .collect(),
        )
    }

    /// The time limit of `resource`'s jobs, in minutes.
    pub fn of(&self, resource: &str) -> Option<u32> {
        self.0.get(resource).copied()
    }
}
