//! What a unit of writes needs to be committed ([`super::Store::commit_needing`]): each need
//! is checked inside the unit's transaction, and when one is not met the unit is rolled back
//! whole and the caller told which. A delivery and everything it causes can so be committed in
//! one step even when one of its writes may be refused: a delivery stored before, a job beyond
//! a concurrency cap, a sponsor pool without the job's credit left. The caller then takes the
//! longer way for that rare case (store the delivery, then act on the refusal).

use super::{Param, Statement};

/// What applying a unit came to: the rows each write changed, or the position (in the unit's
/// needs) of the first need not met, when nothing was kept.
pub type Applied = Result<Vec<u64>, usize>;

/// One condition of a unit's commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// Write number `n` of the unit changed a row (checked as soon as it is applied, so that a
    /// duplicate delivery stops its unit at once).
    Changed(usize),
    /// After the unit's writes, `holder`'s claim on a machine is not beyond a cap: it holds one
    /// (admitted), waits for its gate, or holds none (its job completed before).
    WithinCaps { holder: String },
    /// After the unit's writes, `holder` holds credit of a sponsor pool, or holds none because
    /// its job (`job_id`) completed before.
    Funded { holder: String, job_id: i64 },
}

/// 1 when `holder` ($1) holds no claim beyond a cap.
const WITHIN_CAPS: &str = "SELECT CASE WHEN EXISTS
    (SELECT 1 FROM holds WHERE holder = $1 AND state = 'over') THEN 0 ELSE 1 END";
/// 1 when `holder` ($1) holds a reservation, or its job ($2) completed.
const FUNDED: &str = "SELECT CASE WHEN EXISTS
        (SELECT 1 FROM pool_reservations WHERE holder = $1)
    OR EXISTS (SELECT 1 FROM jobs WHERE job_id = $2 AND status = 'completed') THEN 1 ELSE 0 END";

impl Need {
    /// The query that answers 1 when the need is met, for a need checked after every write.
    pub(super) fn query(&self) -> Option<Statement<'_>> {
        match self {
            Need::Changed(_) => None,
            Need::WithinCaps { holder } => Some((WITHIN_CAPS, vec![Param::Text(Some(holder))])),
            Need::Funded { holder, job_id } => Some((
                FUNDED,
                vec![Param::Text(Some(holder)), Param::Int(Some(*job_id))],
            )),
        }
    }
}

/// Which need of `needs` is not met once the writes so far changed `rows` (one count per
/// write, in order): a [`Need::Changed`] of the last write applied.
pub(super) fn unmet_change(needs: &[Need], rows: &[u64]) -> Option<usize> {
    let last = rows.len().checked_sub(1)?;
    needs
        .iter()
        .position(|n| *n == Need::Changed(last) && rows[last] == 0)
}

/// A [`Need::Changed`] naming a write the unit does not have is never met (the unit is
/// rolled back rather than committed on a condition nobody checked).
pub(super) fn unmet_beyond(needs: &[Need], writes: usize) -> Option<usize> {
    needs
        .iter()
        .position(|n| matches!(n, Need::Changed(i) if *i >= writes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_checked_once_its_write_is_applied() {
        let needs = [Need::Changed(0), Need::Changed(2)];
        assert_eq!(unmet_change(&needs, &[]), None);
        assert_eq!(unmet_change(&needs, &[0]), Some(0));
        assert_eq!(unmet_change(&needs, &[1]), None);
        assert_eq!(unmet_change(&needs, &[1, 0]), None, "write 1 needs nothing");
        assert_eq!(unmet_change(&needs, &[1, 0, 0]), Some(1));
        assert_eq!(unmet_change(&needs, &[1, 0, 3]), None);
        assert_eq!(unmet_beyond(&needs, 2), Some(1));
        assert_eq!(unmet_beyond(&needs, 3), None);
    }
}
