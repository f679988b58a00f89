-- Routing as a call center expects: a request an agent declines or lets ring out goes
-- back to the front of its queue for the next agent, until its overall wait limit.

-- How long a customer's request may wait in all (queue and rings) before it times out.
ALTER TABLE enterprises ADD COLUMN request_wait_secs BIGINT NOT NULL DEFAULT 300;

-- Agents a request was offered to who declined it or let it ring out: the same
-- request is not offered to them again.
CREATE TABLE call_passed_over (
    call_id     TEXT NOT NULL REFERENCES calls (id),
    agent_id    TEXT NOT NULL REFERENCES users (id),
    at          BIGINT NOT NULL,
    PRIMARY KEY (call_id, agent_id)
);
