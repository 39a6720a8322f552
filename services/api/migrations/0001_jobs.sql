-- The api-service's tables: keys, jobs, output assets and the transactional outbox.

CREATE TABLE api_keys (
    -- SHA-256 of the key; the key itself is never stored.
    key_hash    BYTEA PRIMARY KEY,
    client_id   TEXT NOT NULL,
    label       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    capability       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN
                         ('queued', 'running', 'succeeded', 'failed', 'expired', 'cancelled')),
    -- The validated request, normalised; what the worker receives.
    params           JSONB NOT NULL,
    webhook_url      TEXT,
    idempotency_key  TEXT,
    -- SHA-256 of the canonical request body, to tell a retry from a conflicting reuse.
    request_hash     BYTEA NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    -- Bumped on every re-dispatch so the new message gets a fresh Nats-Msg-Id.
    dispatch_seq     INTEGER NOT NULL DEFAULT 1,
    dispatched_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Fences worker events: only the current lease holder's events apply.
    lease_token      TEXT,
    heartbeat_at     TIMESTAMPTZ,
    progress_pct     INTEGER NOT NULL DEFAULT 0,
    current_step     TEXT,
    error_code       TEXT,
    error_message    TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    -- A job still queued at this time expires.
    expires_at       TIMESTAMPTZ NOT NULL,
    -- A running attempt past this time fails.
    run_deadline_at  TIMESTAMPTZ,
    UNIQUE (client_id, idempotency_key)
);

CREATE INDEX jobs_by_client ON jobs (client_id, created_at DESC, id DESC);
CREATE INDEX jobs_active ON jobs (status) WHERE status IN ('queued', 'running');

CREATE TABLE assets (
    id            TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL,
    job_id        TEXT REFERENCES jobs (id),
    -- Order of the outputs within their job.
    position      INTEGER NOT NULL DEFAULT 0,
    role          TEXT NOT NULL CHECK (role IN ('input', 'output')),
    kind          TEXT NOT NULL CHECK (kind IN ('image', 'video', 'audio')),
    name          TEXT NOT NULL,
    s3_key        TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    width         INTEGER,
    height        INTEGER,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX assets_by_client ON assets (client_id, created_at DESC, id DESC);
CREATE INDEX assets_by_job ON assets (job_id, position);

-- Messages to publish to NATS, written in the same transaction as the state they announce.
CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    subject       TEXT NOT NULL,
    -- JetStream deduplicates republishes of the same message by this id.
    msg_id        TEXT NOT NULL,
    payload       BYTEA NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A relay that took the row holds it until then; a crashed relay's rows come back.
    locked_until  TIMESTAMPTZ,
    published_at  TIMESTAMPTZ
);

CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
