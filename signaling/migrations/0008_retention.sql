-- Retention: how long each enterprise keeps recordings, verification records,
-- moderation incidents with their evidence, and enrolled face references. NULL keeps
-- them until deleted by hand. A daily job deletes what is older.
CREATE TABLE retention_settings (
    enterprise_id            TEXT PRIMARY KEY REFERENCES enterprises (id),
    recordings_days          BIGINT,
    verification_days        BIGINT,
    moderation_days          BIGINT,
    face_reference_days      BIGINT,
    updated_at               BIGINT NOT NULL,
    updated_by               TEXT NOT NULL
);

-- A deleted user keeps their row (calls and records name them) but nothing that
-- lets them in or identifies them beyond their name: see accounts/removal.rs.
ALTER TABLE users ADD COLUMN deleted_at BIGINT;

CREATE INDEX face_references_by_enterprise ON face_references (enterprise_id, enrolled_at);
