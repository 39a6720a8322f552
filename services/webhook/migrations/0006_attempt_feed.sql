-- Every attempt is reported to the api's event feed (issue #17) as a `webhook.attempt`
-- event: the attempts table is its own outbox. A reporter leases unreported rows, publishes
-- them (deduplicated by JetStream and by the feed), then marks them reported.
ALTER TABLE webhook.attempts ADD COLUMN reported_at TIMESTAMPTZ;
ALTER TABLE webhook.attempts ADD COLUMN report_locked_until TIMESTAMPTZ;
-- Attempts made before the feed existed are not announced now.
UPDATE webhook.attempts SET reported_at = now();
CREATE INDEX attempts_unreported ON webhook.attempts (id) WHERE reported_at IS NULL;
