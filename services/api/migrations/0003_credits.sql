-- Credits: a balance per client and an append-only ledger. A job's charge and its refund are
-- each unique per job, so no retry, redelivery or restart can apply either twice.

ALTER TABLE jobs
    -- The tasks API's model, when the job came through that face.
    ADD COLUMN model_id    TEXT,
    -- Credits charged when the job was accepted (0 when free).
    ADD COLUMN credits     BIGINT NOT NULL DEFAULT 0,
    -- The request that created the job (`X-Request-Id`).
    ADD COLUMN request_id  TEXT;

CREATE TABLE credit_accounts (
    client_id   TEXT PRIMARY KEY,
    balance     BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE credit_ledger (
    id             BIGSERIAL PRIMARY KEY,
    client_id      TEXT NOT NULL,
    job_id         TEXT REFERENCES jobs (id),
    kind           TEXT NOT NULL CHECK (kind IN ('grant', 'charge', 'refund')),
    -- Signed: grants and refunds add, charges subtract.
    amount         BIGINT NOT NULL,
    balance_after  BIGINT NOT NULL,
    note           TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX credit_ledger_once_per_job ON credit_ledger (job_id, kind)
    WHERE job_id IS NOT NULL;
CREATE INDEX credit_ledger_by_client ON credit_ledger (client_id, id DESC);
