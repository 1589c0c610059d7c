-- +goose Up
-- Partially signed changes waiting for more signatures (k-of-n signing).
-- Times are Unix nanoseconds (UTC).
CREATE TABLE staged_changes (
    gun        TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    revision   INTEGER NOT NULL CHECK (revision > 0),
    data       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    PRIMARY KEY (gun, id)
) WITHOUT ROWID;
CREATE INDEX staged_changes_expires ON staged_changes (expires);

-- +goose Down
DROP TABLE staged_changes;
