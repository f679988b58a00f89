-- Content moderation: each enterprise's screening settings, and the incidents
-- (every blur or call end) with their evidence pictures (encrypted objects).

-- Absent: the defaults (screening on). `settings` is the JSON of the settings.
CREATE TABLE moderation_settings (
    enterprise_id  TEXT PRIMARY KEY REFERENCES enterprises (id),
    settings       TEXT NOT NULL,
    updated_at     BIGINT NOT NULL,
    updated_by     TEXT NOT NULL
);

CREATE TABLE moderation_incidents (
    id             TEXT PRIMARY KEY,
    enterprise_id  TEXT NOT NULL REFERENCES enterprises (id),
    call_id        TEXT NOT NULL,
    agent_id       TEXT,
    -- Whose video: 'agent' or 'customer'; what was done: 'blurred' or 'ended'.
    party          TEXT NOT NULL,
    action         TEXT NOT NULL,
    -- JSON array of the positive scores that led to it.
    scores         TEXT NOT NULL,
    -- Object keys of the evidence (clear, and its mosaic); NULL when none was taken.
    evidence_key   TEXT,
    mosaic_key     TEXT,
    created_at     BIGINT NOT NULL,
    review         TEXT NOT NULL DEFAULT 'pending',
    review_note    TEXT,
    reviewed_by    TEXT,
    reviewed_at    BIGINT
);

CREATE INDEX moderation_incidents_by_time ON moderation_incidents (enterprise_id, created_at);
CREATE INDEX moderation_incidents_by_call ON moderation_incidents (call_id);
