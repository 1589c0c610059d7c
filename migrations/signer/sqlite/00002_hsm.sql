-- +goose Up
-- Keys generated on a PKCS#11 token: private is JSON null, hsm_id names the
-- token object (CKA_ID, hex).
ALTER TABLE signer_keys ADD COLUMN hsm_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE signer_keys DROP COLUMN hsm_id;
