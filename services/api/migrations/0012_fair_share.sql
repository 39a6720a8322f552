-- Each client's create-rate token bucket (issue #16): its level when it was last written.
-- Read and written under the row's lock in the transaction that accepts a job, so every api
-- replica draws from one bucket and a refused or rolled-back create takes nothing.
CREATE TABLE admission_buckets (
    client_id   TEXT PRIMARY KEY,
    tokens      DOUBLE PRECISION NOT NULL,
    refilled_at TIMESTAMPTZ NOT NULL
);

-- A client's waiting and running jobs by capability: the queued cap at every create, the
-- counts of GET /api/v1/limits and the per-client gauges.
CREATE INDEX jobs_active_by_client ON jobs (client_id, status, capability)
    WHERE status IN ('queued', 'running');

-- Fair dispatch (issue #16): a queued job's dispatch goes to the work stream only when the
-- dispatcher releases it, client by client. `released_seq` is the last dispatch released; a
-- queued job with `released_seq < dispatch_seq` waits in PostgreSQL, one with
-- `released_seq = dispatch_seq` is in the work stream. Every dispatch written before this
-- migration went to the outbox at once: it counts as released.
ALTER TABLE jobs ADD COLUMN released_seq INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET released_seq = dispatch_seq;

-- The dispatcher's walk: which clients wait for a capability, and their oldest jobs.
CREATE INDEX jobs_waiting ON jobs (capability, client_id, created_at, id)
    WHERE status = 'queued' AND released_seq < dispatch_seq;

-- What is in flight per client for a capability: released and unclaimed, or running. The
-- dispatcher counts it at every release; it never scans the jobs still waiting.
CREATE INDEX jobs_in_flight ON jobs (capability, client_id)
    WHERE status = 'running' OR (status = 'queued' AND released_seq = dispatch_seq);
