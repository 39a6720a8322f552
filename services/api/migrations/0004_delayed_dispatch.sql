-- Retries are scheduled in the database: a released job's next dispatch waits in the outbox
-- until its delay has passed.
ALTER TABLE outbox ADD COLUMN available_at TIMESTAMPTZ NOT NULL DEFAULT now();
