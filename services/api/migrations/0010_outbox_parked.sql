-- A row that can never be published (larger than NATS' max_payload) is parked instead of
-- retried forever: it leaves the relay's queue, keeps its payload for an operator, and says
-- why (docs/hardening.md, H2).
ALTER TABLE outbox ADD COLUMN parked_at TIMESTAMPTZ;
ALTER TABLE outbox ADD COLUMN park_reason TEXT;
