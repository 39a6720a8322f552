-- The creations face (seed 000): a creation is a job seen as a piece of content. Its id is an
-- integer, as KPainter's published clients expect; its job is an ordinary job (same id space,
-- one pipeline), accepted in the same transaction as this row.
CREATE TABLE creations (
    id          BIGSERIAL PRIMARY KEY,
    client_id   TEXT NOT NULL,
    job_id      TEXT NOT NULL UNIQUE REFERENCES jobs (id),
    -- `slides_video`, `slide_deck` or `image`.
    type        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX creations_by_client ON creations (client_id, id DESC);

-- Creations have subtitles, a manifest and a PDF among their outputs.
ALTER TABLE assets DROP CONSTRAINT assets_kind_check;
ALTER TABLE assets ADD CONSTRAINT assets_kind_check
    CHECK (kind IN ('image', 'video', 'audio', 'text', 'document'));
