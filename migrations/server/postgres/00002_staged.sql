-- +goose Up
-- Partially signed changes waiting for more signatures (k-of-n signing).
-- data is opaque to the store (server/tufrepo encodes it).
CREATE TABLE staged_changes (
    gun        TEXT        NOT NULL,
    id         TEXT        NOT NULL,
    revision   BIGINT      NOT NULL CHECK (revision > 0),
    data       BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (gun, id)
);
CREATE INDEX staged_changes_expires ON staged_changes (expires);

-- +goose Down
DROP TABLE staged_changes;
