-- Accounts and tenancy. Portable SQL: runs unchanged on SQLite and PostgreSQL.
-- Ids are UUID strings made by the application; times are Unix milliseconds (BIGINT);
-- flags are BIGINT 0/1 (sqlx's Any driver cannot decode SQLite booleans).

CREATE TABLE enterprises (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    -- The public number customers see; unique across kefu.
    main_account        TEXT NOT NULL UNIQUE,
    time_zone           TEXT NOT NULL,
    -- Outgoing calls an agent may make per face verification.
    verification_period BIGINT NOT NULL,
    ring_timeout_secs   BIGINT NOT NULL,
    queue_capacity      BIGINT NOT NULL,
    recording_enabled   BIGINT NOT NULL CHECK (recording_enabled IN (0, 1)),
    created_at          BIGINT NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    enterprise_id   TEXT NOT NULL REFERENCES enterprises (id),
    login           TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    real_name       TEXT NOT NULL,
    -- AES-256-GCM under the data key: base64(nonce || ciphertext). NULL when unknown.
    id_number_enc   TEXT,
    password_hash   TEXT NOT NULL,
    video_enabled   BIGINT NOT NULL CHECK (video_enabled IN (0, 1)),
    capacity        BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('online', 'away', 'offline')),
    accepting       BIGINT NOT NULL CHECK (accepting IN (0, 1)),
    -- When the agent last finished a call or came online: routing ties go to the longest idle.
    idle_since      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX users_enterprise ON users (enterprise_id);

CREATE TABLE sessions (
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE reception_groups (
    id              TEXT PRIMARY KEY,
    enterprise_id   TEXT NOT NULL REFERENCES enterprises (id),
    name            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (enterprise_id, name)
);

CREATE TABLE group_members (
    group_id    TEXT NOT NULL REFERENCES reception_groups (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_id, user_id)
);
