-- +goose Up
-- signet-signer's keys. private holds the keywrap record (JSON): the key is
-- never stored in the clear.
CREATE TABLE signer_keys (
    seq        BIGSERIAL   PRIMARY KEY,
    id         TEXT        NOT NULL UNIQUE,
    gun        TEXT        NOT NULL,
    role       TEXT        NOT NULL CHECK (role IN ('timestamp', 'snapshot')),
    algorithm  TEXT        NOT NULL,
    public     TEXT        NOT NULL,
    private    TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX signer_keys_gun ON signer_keys (gun, role, seq);

-- +goose Down
DROP TABLE signer_keys;
