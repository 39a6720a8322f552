-- The job's W3C trace id, sent as `traceparent` with every attempt.
ALTER TABLE webhook.deliveries ADD COLUMN trace_id TEXT;
