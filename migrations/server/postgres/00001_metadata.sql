-- +goose Up
-- Every version of every role of every repository, stored exactly as uploaded.
CREATE TABLE tuf_files (
    gun        TEXT        NOT NULL,
    role       TEXT        NOT NULL,
    version    BIGINT      NOT NULL CHECK (version > 0),
    sha256     TEXT        NOT NULL,
    data       BYTEA       NOT NULL,
    expires    TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (gun, role, version)
);
CREATE INDEX tuf_files_sha256 ON tuf_files (gun, role, sha256);

-- The current version of each role, kept by UpdateMany, so that the upkeep
-- sweep finds expiring timestamps with an index scan.
CREATE TABLE current_files (
    gun     TEXT        NOT NULL,
    role    TEXT        NOT NULL,
    version BIGINT      NOT NULL,
    expires TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (gun, role)
);
CREATE INDEX current_files_expiring ON current_files (role, expires);

CREATE TABLE changefeed (
    id         BIGSERIAL   PRIMARY KEY,
    gun        TEXT        NOT NULL,
    category   TEXT        NOT NULL CHECK (category IN ('update', 'deletion')),
    version    BIGINT      NOT NULL DEFAULT 0,
    sha256     TEXT        NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE changefeed;
DROP TABLE current_files;
DROP TABLE tuf_files;
