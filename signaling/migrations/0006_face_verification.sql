-- Face verification with a real engine: enrolled references, why a check failed,
-- the lock after repeated failures, and whether reference photos are kept.

-- One reference per agent: its templates (SFace embeddings) encrypted with the data
-- key; the photos themselves only when the enterprise keeps them (encrypted objects).
CREATE TABLE face_references (
    agent_id       TEXT PRIMARY KEY REFERENCES users (id),
    enterprise_id  TEXT NOT NULL REFERENCES enterprises (id),
    templates_enc  TEXT NOT NULL,
    photo_count    BIGINT NOT NULL,
    -- JSON array of object keys, empty when the photos were not kept.
    photo_keys     TEXT NOT NULL,
    enrolled_at    BIGINT NOT NULL,
    enrolled_by    TEXT NOT NULL
);

-- For a failed check: the dashboard's reason (no_face, different_person,
-- liveness_not_shown, timed_out) and the engine's finer one; where it was taken.
ALTER TABLE verification_records ADD COLUMN failure_reason TEXT;
ALTER TABLE verification_records ADD COLUMN failure_detail TEXT;
ALTER TABLE verification_records ADD COLUMN channel TEXT NOT NULL DEFAULT 'workbench';

-- 5 failures within 10 minutes lock verification until an admin clears it.
CREATE TABLE verification_locks (
    agent_id    TEXT PRIMARY KEY REFERENCES users (id),
    locked_at   BIGINT,
    cleared_at  BIGINT,
    cleared_by  TEXT
);

-- Keep the enrolled photos (encrypted, admin-only) or only the templates.
ALTER TABLE enterprises ADD COLUMN keep_enrollment_photos BIGINT NOT NULL DEFAULT 0;
