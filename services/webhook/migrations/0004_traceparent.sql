-- The span that queued a delivery (the intake of its request): every attempt, and any
-- redelivery a partner asks for, is a child span in the job's trace.
ALTER TABLE webhook.deliveries ADD COLUMN traceparent TEXT;
