//! The last policy snapshot the guard signed for runners' gates, kept while it is current
//! (made again when the policy or the role facts change, or it grows old: [`crate::gate`]).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;

use crate::source::Source;

/// A signed snapshot and what it was made from.
pub(crate) struct Signed {
    pub bytes: Bytes,
    pub serial: u64,
    /// When it was signed.
    pub made: Instant,
    /// The policy's source it carries.
    pub source: Arc<Source>,
    /// The role facts' generation it carries ([`crate::facts::RoleFacts::generation`]).
    pub facts: u64,
}
