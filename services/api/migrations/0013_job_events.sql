-- The event feed (issue #17): every change a partner can see in a job, in commit order, for
-- `GET /api/v1/events` and its Server-Sent Events stream.
--
-- Rows are written by a trigger on `jobs`, so every path that moves a job (accept, claim,
-- progress, release, requeue, terminal transitions, cancel, expiry; on every face) records
-- its event in the same transaction and none can forget to. Webhook attempts arrive from the
-- webhook-service through the projector, deduplicated by `dedup_key`.
--
-- Order: `tx` is the writing transaction's id. A reader takes only rows whose `tx` is below
-- its snapshot's xmin, so every transaction that could still add a row before them has ended:
-- a cursor `(tx, id)` never skips a row committed late (a sequence alone would: ids are taken
-- at insert, not at commit). docs/decisions.md, "The event feed".
CREATE TABLE job_events (
    id         BIGSERIAL PRIMARY KEY,
    tx         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    client_id  TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    type       TEXT NOT NULL,
    data       JSONB NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- Set for events that may be reported twice (a webhook attempt: `<event id>:<attempt>`).
    dedup_key  TEXT
);

-- A client's feed, read from a cursor.
CREATE INDEX job_events_by_client ON job_events (client_id, tx, id);
-- Every client's feed, read by each api replica's pump to wake the open streams.
CREATE INDEX job_events_in_order ON job_events (tx, id);
CREATE UNIQUE INDEX job_events_dedup ON job_events (dedup_key) WHERE dedup_key IS NOT NULL;

CREATE FUNCTION job_events_record() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        kind := 'job.created';
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        -- job.running, job.queued (a retry or a requeue), job.succeeded, job.failed,
        -- job.expired, job.cancelled
        kind := 'job.' || NEW.status;
    ELSE
        kind := 'job.progress';
    END IF;
    INSERT INTO job_events (client_id, job_id, type, data)
    VALUES (NEW.client_id, NEW.id, kind, jsonb_strip_nulls(jsonb_build_object(
        'status', NEW.status,
        'capability', NEW.capability,
        'progressPct', NEW.progress_pct,
        'currentStep', NEW.current_step,
        'attempt', NEW.attempt,
        'error', CASE WHEN NEW.error_code IS NOT NULL THEN
                     jsonb_build_object('code', NEW.error_code, 'message', NEW.error_message)
                 END)));
    RETURN NULL;
END
$$;

CREATE TRIGGER job_events_created AFTER INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION job_events_record();

-- Heartbeats that change nothing a partner sees write nothing.
CREATE TRIGGER job_events_changed AFTER UPDATE OF status, progress_pct, current_step ON jobs
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.progress_pct IS DISTINCT FROM NEW.progress_pct
          OR OLD.current_step IS DISTINCT FROM NEW.current_step)
    EXECUTE FUNCTION job_events_record();
