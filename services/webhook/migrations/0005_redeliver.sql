-- A partner asked for a redelivery while an attempt was in flight (the row leased): the
-- attempt's record then makes the delivery due again at once, so the ask is never dropped.
-- Cleared whenever an attempt starts, since that attempt answers the ask.
ALTER TABLE webhook.deliveries ADD COLUMN redeliver BOOLEAN NOT NULL DEFAULT false;
