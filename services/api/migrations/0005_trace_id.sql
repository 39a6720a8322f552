-- Every job is one W3C trace: its trace id is chosen when the job is accepted and travels
-- with its messages and webhooks (`traceparent`).
ALTER TABLE jobs ADD COLUMN trace_id TEXT;
