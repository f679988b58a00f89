//! The retention sweep: for every enterprise that set a retention, delete what is
//! older, objects first (a failed object delete keeps its row, so the next sweep
//! tries again and nothing is left pointing at a missing file), then the rows. The
//! clock comes in as an argument; [`run_daily`] is the thin driver.

use std::time::Duration;

use kefu_recorder::ObjectStore;
use tracing::{info, warn};

use crate::accounts::{EnterpriseId, UserId};
use crate::audit::AuditEntry;
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
/// that lost something.
pub async fn enforce(
    store: &Store,
    objects: &ObjectStore,
    now_ms: i64,
) -> Result<Vec<(EnterpriseId, Swept)>, StoreError> {
    let mut report = Vec::new();
    for (enterprise, settings) in store.all_retention_settings().await? {
        let mut swept = Swept::default();
        let days = [
            (Kind::Recording, settings.recordings_days),
            (Kind::Incident, settings.moderation_days),
            (Kind::FaceReference, settings.face_reference_days),
        ];
        for (kind, days) in days {
            if let Some(before) = cutoff(now_ms, days) {
                let rows = sweep(store, objects, &mut swept, kind, &enterprise, before).await?;
                match kind {
                    Kind::Recording => swept.recordings = rows,
                    Kind::Incident => swept.incidents = rows,
                    Kind::FaceReference => swept.face_references = rows,
                }
            }
        }
        if let Some(before) = cutoff(now_ms, settings.verification_days) {
            swept.verification_records = store
                .delete_verifications_before(&enterprise, before)
                .await?;
        }
        if swept.deleted_anything() {
            audit(store, &enterprise, &swept, now_ms).await?;
            report.push((enterprise, swept));
        }
    }
    Ok(report)
}

/// The kinds of expired items that own objects in the object store.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Recording,
    Incident,
    FaceReference,
}

impl Kind {
    async fn list(
        self,
        store: &Store,
        enterprise: &EnterpriseId,
        before: i64,
    ) -> Result<Vec<Expired>, StoreError> {
        match self {
            Kind::Recording => store.expired_recordings(enterprise, before).await,
            Kind::Incident => store.expired_incidents(enterprise, before).await,
            Kind::FaceReference => store.expired_face_references(enterprise, before).await,
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

/// Lists expired items batch by batch and deletes each one's objects, then its row;
/// stops at a batch where an object could not be deleted (the store is down: the
/// next sweep goes on). Returns the rows deleted.
async fn sweep(
    store: &Store,
    objects: &ObjectStore,
    swept: &mut Swept,
    kind: Kind,
    enterprise: &EnterpriseId,
    before: i64,
) -> Result<u64, StoreError> {
    let mut rows = 0;
    loop {
        let batch = kind.list(store, enterprise, before).await?;
        let full = batch.len() as i64 >= BATCH;
        let mut stuck = false;
        for item in batch {
            let mut kept = 0;
            for key in &item.objects {
                match objects.delete(key).await {
                    Ok(()) => swept.objects += 1,
                    Err(e) => {
                        warn!(?kind, "retention: an expired object stays for now: {e}");
                        kept += 1;
                    }
                }
            }
            if kept > 0 {
                swept.objects_failed += kept;
                stuck = true;
            } else if kind.delete_row(store, &item.id, before).await? {
                rows += 1;
            }
        }
        if !full || stuck {
            return Ok(rows);
        }
    }
}

async fn audit(
    store: &Store,
    enterprise: &EnterpriseId,
    swept: &Swept,
    now_ms: i64,
) -> Result<(), StoreError> {
    store
        .insert_audit(&AuditEntry {
            id: uuid::Uuid::new_v4().to_string(),
            enterprise_id: enterprise.clone(),
            actor_id: UserId("system".into()),
            actor_role: "system".into(),
            action: "retention_applied".into(),
            target_id: swept.summary(),
            at: now_ms,
        })
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
