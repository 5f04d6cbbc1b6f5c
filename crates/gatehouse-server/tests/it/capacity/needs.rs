//! A delivery and the claims it makes are committed in one step, needing the claims to fit
//! (`Store::commit_needing`): when one does not, nothing of the delivery is kept, so that the
//! guard can store it first and act on the refusal.

use gatehouse_server::store::{CreditWrite, Hold, JobStatus, Limits, Need, Reservation};

use super::*;

fn delivery(id: &str) -> Write {
    Write::Delivery {
        delivery_id: id.into(),
        event: "workflow_job".into(),
        received_at: "2026-12-07T10:00:00Z".into(),
        body: axum::body::Bytes::from_static(b"{}"),
        processed: None,
    }
}

/// `holder`'s job `job_id` goes in progress on `gpu`, which one machine at a time may run.
fn started(holder: &str, job_id: i64) -> Write {
    Write::Started {
        hold: Hold {
            holder: holder.into(),
            resource: "gpu".into(),
            provider: "cirun".into(),
            project: Some("example".into()),
            repository: REPO.into(),
            run_id: job_id,
            job_id: Some(job_id),
            limits: Limits {
                resource: Some(1),
                project: None,
                provider: None,
            },
            at: "2026-12-07T10:00:00Z".into(),
            expires: "2026-12-12T10:00:00Z".into(),
        },
        gated: false,
    }
}

/// `holder`'s job reserves 6 of the 10 units of pool `cloud`.
fn reserve(holder: &str, job_id: i64) -> Write {
    Write::Credit(CreditWrite::Reserve(Reservation {
        holder: holder.into(),
        pool: "cloud".into(),
        job_id,
        project: Some("example".into()),
        resource: "gpu".into(),
        units: 6,
        per_minute: 1,
        credit: 10,
        since: "2026-12-07T10:00:00Z".into(),
        expires: "2026-12-12T10:00:00Z".into(),
    }))
}

fn completed(job_id: i64) -> Write {
    Write::JobStatus {
        job_id,
        project: Some("example".into()),
        resource: "gpu".into(),
        status: JobStatus::Completed,
        at: "2026-12-07T10:00:00Z".into(),
    }
}

/// The first job takes the one machine and 6 units with its delivery, in one commit. The
/// second's delivery is not kept (its claim would be beyond the cap), nor is the third's (the
/// pool has 4 units left): the answer names the need refused. A redelivery is refused as a
/// duplicate before anything else is applied. A job reported completed before its claims
/// holds nothing and needs nothing: its delivery is kept.
pub(super) async fn a_delivery_whose_claim_is_refused_is_not_kept(backend: Backend) {
    let db = Db::new(backend).await;
    let store = Store::connect(&db.url).await.unwrap();
    let needs = |holder: &str, job_id: i64| {
        vec![
            Need::Changed(0),
            Need::WithinCaps {
                holder: holder.into(),
            },
            Need::Funded {
                holder: holder.into(),
                job_id,
            },
        ]
    };
    let unit = |id: &str, holder: &str, job_id: i64| {
        vec![
            delivery(id),
            started(holder, job_id),
            reserve(holder, job_id),
        ]
    };

    let first = store
        .commit_needing(unit("d1", "1:1:r1", 1), needs("1:1:r1", 1))
        .await
        .unwrap();
    assert_eq!(first, Ok(vec![1, 1, 1]));
    assert_eq!(
        store.hold_state("1:1:r1").await.unwrap().as_deref(),
        Some("admitted")
    );

    // Beyond the cap: refused by its second need, and none of it is kept.
    let second = store
        .commit_needing(unit("d2", "2:1:r2", 2), needs("2:1:r2", 2))
        .await
        .unwrap();
    assert_eq!(second, Err(1));
    assert_eq!(store.hold_state("2:1:r2").await.unwrap(), None);
    assert_eq!(store.reservation_of("2:1:r2").await.unwrap(), None);

    // Within a cap of two, but the pool has 4 units left of 10: refused by its third need.
    let mut third = unit("d3", "3:1:r3", 3);
    if let Write::Started { hold, .. } = &mut third[1] {
        hold.limits.resource = Some(2);
    }
    let third = store
        .commit_needing(third, needs("3:1:r3", 3))
        .await
        .unwrap();
    assert_eq!(third, Err(2));
    assert_eq!(store.hold_state("3:1:r3").await.unwrap(), None);

    // A redelivery of the first: a duplicate, whatever else it holds.
    let again = store
        .commit_needing(unit("d1", "9:1:r9", 9), needs("9:1:r9", 9))
        .await
        .unwrap();
    assert_eq!(again, Err(0));
    assert_eq!(store.hold_state("9:1:r9").await.unwrap(), None);

    // Job 4 was reported completed: its claims change nothing, and need nothing.
    store.commit(vec![completed(4)]).await.unwrap();
    let late = store
        .commit_needing(unit("d4", "4:1:r4", 4), needs("4:1:r4", 4))
        .await
        .unwrap();
    assert_eq!(late, Ok(vec![1, 0, 0]));

    let mut ids = store.delivery_ids().await.unwrap();
    ids.sort();
    assert_eq!(ids, ["d1", "d4"]);
    assert_eq!(
        store.reservation_of("1:1:r1").await.unwrap().as_deref(),
        Some("cloud")
    );
}
