-- Call recordings and the audit log of who played or downloaded them.

CREATE TABLE recordings (
    id              TEXT PRIMARY KEY,
    enterprise_id   TEXT NOT NULL REFERENCES enterprises (id),
    call_id         TEXT NOT NULL REFERENCES calls (id),
    agent_id        TEXT,
    customer_id     TEXT,
    kind            TEXT NOT NULL,            -- video | voice
    state           TEXT NOT NULL,            -- recording | processing | ready | failed
    failure_kind    TEXT,                     -- recording | transcoding | upload
    failure_reason  TEXT,
    object_key      TEXT NOT NULL,            -- ids only, never user text
    display_name    TEXT NOT NULL,            -- "2026-11-25 14:30:05 视频通话记录.mp4"
    started_at      BIGINT NOT NULL,
    ended_at        BIGINT,
    duration_ms     BIGINT,
    size_bytes      BIGINT,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX recordings_by_enterprise ON recordings (enterprise_id, started_at);
CREATE INDEX recordings_by_call ON recordings (call_id);
CREATE INDEX recordings_by_state ON recordings (state);

CREATE TABLE audit_log (
    id             TEXT PRIMARY KEY,
    enterprise_id  TEXT NOT NULL,
    actor_id       TEXT NOT NULL,
    actor_role     TEXT NOT NULL,
    action         TEXT NOT NULL,             -- recording.play | recording.download | recording.retry
    target_id      TEXT NOT NULL,
    at             BIGINT NOT NULL
);
CREATE INDEX audit_by_enterprise ON audit_log (enterprise_id, at);
