-- +goose Up
CREATE TABLE signer_keys (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    gun        TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('timestamp', 'snapshot')),
    algorithm  TEXT    NOT NULL,
    public     TEXT    NOT NULL,
    private    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX signer_keys_gun ON signer_keys (gun, role, seq);

-- +goose Down
DROP TABLE signer_keys;
