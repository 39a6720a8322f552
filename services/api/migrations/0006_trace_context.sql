-- Where a trace continues when work resumes later: the W3C traceparent of the span that
-- queued an outbox row (the relay's publish span is its child), and of the request that
-- accepted a job (the reconciler and sweeper continue the job's trace from it).
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
ALTER TABLE jobs ADD COLUMN traceparent TEXT;

-- Published rows are deleted an hour later (gauges.rs); this finds them without a scan.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
