-- Per-client signing secrets. The live secret has no retired_at; a rotated-out secret keeps
-- signing until its overlap ends, so receivers can switch without dropping events.

CREATE TABLE webhook.secrets (
    id          BIGSERIAL PRIMARY KEY,
    client_id   TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    retired_at  TIMESTAMPTZ,
    -- A retired secret signs until then.
    expires_at  TIMESTAMPTZ
);

CREATE UNIQUE INDEX secrets_one_live_per_client ON webhook.secrets (client_id)
    WHERE retired_at IS NULL;
