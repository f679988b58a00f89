//! The retention sweep: for every enterprise that set a retention, delete what is
//! older, objects first (a failed object delete keeps its row, so the next sweep
//! tries again and no object is left without a row to find it by), then the rows. The
//! clock comes in as an argument; [`run_daily`] is the thin driver.

use std::time::Duration;

use kefu_recorder::ObjectStore;
use tracing::{info, warn};

use crate::accounts::EnterpriseId;
use crate::retention::cutoff;
use crate::retention::store::{BATCH, Expired};
use crate::store::{Store, StoreError};

/// What one sweep deleted in one enterprise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub recordings: u64,
    pub verification_records: u64,
    pub incidents: u64,
    pub face_references: u64,
    pub objects: u64,
    /// Objects the store would not delete now (their rows stay for the next sweep).
    pub objects_failed: u64,
}

impl Swept {
    fn deleted_anything(&self) -> bool {
        self.recordings + self.verification_records + self.incidents + self.face_references > 0
    }

    /// The audit entry's target: counts only, never ids of people.
    fn summary(&self) -> String {
        format!(
            "recordings={} verification_records={} incidents={} face_references={} objects={}",
            self.recordings,
            self.verification_records,
            self.incidents,
            self.face_references,
            self.objects
        )
    }
}

/// Applies every enterprise's retention as of `now_ms`; what went, per enterprise
/// that lost something. One enterprise's failure (a database error, a corrupt row)
/// is logged and the others go on; what it deleted before is still audited.
pub async fn enforce(
    store: &Store,
    objects: &ObjectStore,
    now_ms: i64,
) -> Result<Vec<(EnterpriseId, Swept)>, StoreError> {
    let mut report = Vec::new();
    for (enterprise, settings) in store.all_retention_settings().await? {
        let mut swept = Swept::default();
        if let Err(e) =
            sweep_enterprise(store, objects, &enterprise, settings, now_ms, &mut swept).await
        {
            warn!(enterprise = %enterprise.as_str(), "retention stopped for this enterprise until the next sweep: {e}");
        }
        if swept.deleted_anything() {
            audit(store, &enterprise, &swept, now_ms).await?;
            report.push((enterprise, swept));
        }
    }
    Ok(report)
}

async fn sweep_enterprise(
    store: &Store,
    objects: &ObjectStore,
    enterprise: &EnterpriseId,
    settings: crate::retention::RetentionSettings,
    now_ms: i64,
    swept: &mut Swept,
) -> Result<(), StoreError> {
    if let Some(before) = cutoff(now_ms, settings.verification_days) {
        swept.verification_records = store
            .delete_verifications_before(enterprise, before)
            .await?;
    }
    let days = [
        (Kind::Recording, settings.recordings_days),
        (Kind::Incident, settings.moderation_days),
        (Kind::FaceReference, settings.face_reference_days),
    ];
    for (kind, days) in days {
        if let Some(before) = cutoff(now_ms, days) {
            sweep(store, objects, swept, kind, enterprise, before).await?;
        }
    }
    Ok(())
}

/// The kinds of expired items that own objects in the object store.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Recording,
    Incident,
    FaceReference,
}

impl Kind {
    /// Expired items from the `skip`-th on (the ones stepped over come first).
    async fn list(
        self,
        store: &Store,
        enterprise: &EnterpriseId,
        before: i64,
        skip: i64,
    ) -> Result<Vec<Expired>, StoreError> {
        match self {
            Kind::Recording => store.expired_recordings(enterprise, before, skip).await,
            Kind::Incident => store.expired_incidents(enterprise, before, skip).await,
            Kind::FaceReference => {
                store
                    .expired_face_references(enterprise, before, skip)
                    .await
            }
        }
    }

    fn count(self, swept: &mut Swept) -> &mut u64 {
        match self {
            Kind::Recording => &mut swept.recordings,
            Kind::Incident => &mut swept.incidents,
            Kind::FaceReference => &mut swept.face_references,
        }
    }

    async fn delete_row(self, store: &Store, id: &str, before: i64) -> Result<bool, StoreError> {
        match self {
            Kind::Recording => store.delete_recording(id).await,
            Kind::Incident => store.delete_incident(id).await,
            Kind::FaceReference => store.delete_face_reference_before(id, before).await,
        }
    }
}

/// After this many objects in a row the store would not delete, a kind waits for
/// the next sweep (the store is down).
const FAILURES_IN_A_ROW: u32 = 20;

/// Lists expired items batch by batch and deletes each one's objects, then its row.
/// An item whose objects the store will not all delete now keeps its row (the next
/// sweep finds its objects again; one already deleted may be missing meanwhile) and is
/// stepped over, so it never blocks the ones after.
async fn sweep(
    store: &Store,
    objects: &ObjectStore,
    swept: &mut Swept,
    kind: Kind,
    enterprise: &EnterpriseId,
    before: i64,
) -> Result<(), StoreError> {
    let mut kept = 0i64;
    let mut failures_in_a_row = 0;
    loop {
        let batch = kind.list(store, enterprise, before, kept).await?;
        let full = batch.len() as i64 >= BATCH;
        for item in batch {
            let mut failed = 0;
            for key in &item.objects {
                match objects.delete(key).await {
                    Ok(()) => {
                        swept.objects += 1;
                        failures_in_a_row = 0;
                    }
                    Err(e) => {
                        warn!(?kind, "retention: an expired object stays for now: {e}");
                        failed += 1;
                        failures_in_a_row += 1;
                    }
                }
            }
            if failed > 0 {
                swept.objects_failed += failed;
                kept += 1;
                if failures_in_a_row >= FAILURES_IN_A_ROW {
                    return Ok(());
                }
            } else if kind.delete_row(store, &item.id, before).await? {
                *kind.count(swept) += 1;
            } else {
                // Changed meanwhile (a retry began, a new enrolment): still listed or not,
                // it is not ours now.
                kept += 1;
            }
        }
        if !full {
            return Ok(());
        }
    }
}

async fn audit(
    store: &Store,
    enterprise: &EnterpriseId,
    swept: &Swept,
    now_ms: i64,
) -> Result<(), StoreError> {
    let summary = swept.summary();
    crate::audit::record_unattended(
        store,
        enterprise,
        "system",
        "retention_applied",
        &summary,
        now_ms,
    )
    .await
}

/// How often the sweep runs, and how long after a start the first one waits (a node
/// that restarts in a loop does not sweep in a loop).
pub const SWEEP_EVERY: Duration = Duration::from_secs(24 * 3600);
pub const FIRST_SWEEP_AFTER: Duration = Duration::from_secs(300);

/// The daily driver: sweeps with the wall clock (aborted when the node stops).
pub async fn run_daily(store: Store, objects: ObjectStore) {
    tokio::time::sleep(FIRST_SWEEP_AFTER).await;
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        match enforce(&store, &objects, crate::clock::now_ms()).await {
            Ok(report) => {
                for (enterprise, swept) in report {
                    info!(enterprise = %enterprise.as_str(), ?swept, "retention applied");
                }
            }
            Err(e) => warn!("retention sweep failed (next one tries again): {e}"),
        }
    }
}
