-- Assets become first-class: uploaded and registered inputs, deletion, and retention.

ALTER TABLE assets
    -- Where a registered asset was fetched from.
    ADD COLUMN source_url  TEXT,
    -- Set when the asset is deleted (by its client or by retention); its object is gone.
    ADD COLUMN deleted_at  TIMESTAMPTZ,
    -- Retention: the sweeper deletes the object and marks the record after this time.
    ADD COLUMN expires_at  TIMESTAMPTZ;

CREATE INDEX assets_expiring ON assets (expires_at) WHERE deleted_at IS NULL;
