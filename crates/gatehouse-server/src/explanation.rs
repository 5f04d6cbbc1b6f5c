//! A denial's explanation, queued for the commit it is about ([`crate::guard::spawn_explainer`]
//! leaves it there at GitHub's pace).

/// A denial's explanation, to leave on the commit as a failed check run.
#[derive(Debug)]
pub struct Explanation {
    pub(crate) repository: String,
    pub(crate) head_sha: String,
    pub(crate) title: String,
    pub(crate) summary: String,
}
