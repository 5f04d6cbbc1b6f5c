//! What the live ledger and the dashboard keep between requests ([`crate::site_routes`]): the
//! rendered static site, the dashboard's figures and the minutes of the weeks before this one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use gatehouse_site::{Dashboard, Ledger};
use jiff::Timestamp;
use jiff::civil::Date;
use tokio::sync::Mutex;

use crate::store::WeekUsage;

/// The rendered static site of one loaded policy on one day.
pub(crate) struct Rendered {
    pub(crate) loaded_at: Timestamp,
    pub(crate) day: Date,
    pub(crate) ledger: Ledger,
    pub(crate) files: BTreeMap<String, Vec<u8>>,
}

/// The dashboard's figures, and when and for which site they were read.
pub(crate) struct Figures {
    pub(crate) read_at: Instant,
    pub(crate) day: Date,
    pub(crate) loaded_at: Timestamp,
    pub(crate) dashboard: Arc<Dashboard>,
}

/// The site, rendered on first use and again when the policy or the day changes; and the
/// dashboard's figures, read again when their time to live (`DASHBOARD_TTL` in
/// [`crate::site_routes`]) has passed.
#[derive(Clone, Default)]
pub(crate) struct SiteCache {
    pub(crate) site: Arc<Mutex<Option<Arc<Rendered>>>>,
    pub(crate) figures: Arc<Mutex<Option<Figures>>>,
    /// A background read of the figures is under way.
    pub(crate) refreshing: Arc<AtomicBool>,
    pub(crate) closed_weeks: Arc<Mutex<Option<ClosedWeeks>>>,
}

/// The day the weeks before this one were read on, and their minutes.
pub(crate) type ClosedWeeks = (Date, Arc<Vec<WeekUsage>>);
