-- Customers, calls with their transition log, and face-verification records.

CREATE TABLE customers (
    id              TEXT PRIMARY KEY,
    enterprise_id   TEXT NOT NULL REFERENCES enterprises (id),
    display_name    TEXT NOT NULL,
    -- When the customer accepted the consent page (stands in for WeChat authorization).
    consented_at    BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX customers_enterprise ON customers (enterprise_id);

CREATE TABLE calls (
    id              TEXT PRIMARY KEY,
    enterprise_id   TEXT NOT NULL REFERENCES enterprises (id),
    direction       TEXT NOT NULL CHECK (direction IN ('agent_initiated', 'customer_initiated')),
    kind            TEXT NOT NULL CHECK (kind IN ('video', 'voice')),
    -- The state's name, and the whole state (who, why) as JSON.
    state           TEXT NOT NULL,
    state_json      TEXT NOT NULL,
    agent_id        TEXT REFERENCES users (id),
    customer_id     TEXT REFERENCES customers (id),
    group_id        TEXT REFERENCES reception_groups (id),
    -- Random code of an agent's invite link; NULL for customer-initiated calls.
    invite_code     TEXT UNIQUE,
    created_at      BIGINT NOT NULL,
    state_since     BIGINT NOT NULL,
    -- When ringing (or waiting for the invite to be opened) times out.
    ring_deadline   BIGINT,
    connected_at    BIGINT,
    ended_at        BIGINT
);
CREATE INDEX calls_agent ON calls (agent_id, created_at);
CREATE INDEX calls_queue ON calls (group_id, state, created_at);

CREATE TABLE call_events (
    call_id     TEXT NOT NULL REFERENCES calls (id),
    seq         BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    event       TEXT NOT NULL,
    -- Who and why, as JSON (the target state).
    detail      TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);

CREATE TABLE verification_records (
    id              TEXT PRIMARY KEY,
    enterprise_id   TEXT NOT NULL REFERENCES enterprises (id),
    agent_id        TEXT NOT NULL REFERENCES users (id),
    -- The agent's name and ID number as they were at check time (ID number encrypted).
    agent_name      TEXT NOT NULL,
    id_number_enc   TEXT,
    passed          BIGINT NOT NULL CHECK (passed IN (0, 1)),
    checked_at      BIGINT NOT NULL,
    passed_at       BIGINT
);
CREATE INDEX verification_agent ON verification_records (agent_id, checked_at);
CREATE INDEX verification_enterprise ON verification_records (enterprise_id, checked_at);
