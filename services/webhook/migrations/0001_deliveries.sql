-- The webhook-service's own tables, in their own schema: one row per event to deliver,
-- one row per attempt made.

CREATE TABLE webhook.deliveries (
    -- The Standard Webhooks `webhook-id`, stable across every attempt.
    event_id         TEXT PRIMARY KEY,
    job_id           TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    url              TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    -- A sender that took the row holds it until then; a crashed sender's rows come back.
    locked_until     TIMESTAMPTZ,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX deliveries_due ON webhook.deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_job ON webhook.deliveries (job_id);

CREATE TABLE webhook.attempts (
    id               BIGSERIAL PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES webhook.deliveries (event_id),
    attempt          INTEGER NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    status_code      INTEGER,
    latency_ms       INTEGER NOT NULL,
    error            TEXT,
    next_attempt_at  TIMESTAMPTZ
);

CREATE INDEX attempts_by_event ON webhook.attempts (event_id, attempt);
