-- +goose Up
-- Who staged each change: staged-change quotas per principal, and who may
-- withdraw it.
ALTER TABLE staged_changes ADD COLUMN principal TEXT NOT NULL DEFAULT '';
CREATE INDEX staged_changes_principal ON staged_changes (principal);

-- +goose Down
DROP INDEX staged_changes_principal;
ALTER TABLE staged_changes DROP COLUMN principal;
