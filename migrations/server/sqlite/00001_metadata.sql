-- +goose Up
-- Times are Unix nanoseconds (UTC).
CREATE TABLE tuf_files (
    gun        TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    sha256     TEXT    NOT NULL,
    data       BLOB    NOT NULL,
    expires    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (gun, role, version)
) WITHOUT ROWID;
CREATE INDEX tuf_files_sha256 ON tuf_files (gun, role, sha256);

CREATE TABLE current_files (
    gun     TEXT    NOT NULL,
    role    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (gun, role)
) WITHOUT ROWID;
CREATE INDEX current_files_expiring ON current_files (role, expires);

CREATE TABLE changefeed (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    gun        TEXT    NOT NULL,
    category   TEXT    NOT NULL CHECK (category IN ('update', 'deletion')),
    version    INTEGER NOT NULL DEFAULT 0,
    sha256     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE changefeed;
DROP TABLE current_files;
DROP TABLE tuf_files;
