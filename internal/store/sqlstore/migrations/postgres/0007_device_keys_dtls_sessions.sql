-- 0007_device_keys_dtls_sessions: the device key index and saved DTLS
-- sessions of Gen 3 devices.
--
-- key_fingerprint is the SHA-256 of public_key for ECC keys, NULL for RSA
-- keys and devices without a key. A DTLS device is known only by its key
-- until its Hello names it, so an ECC key belongs to one device. The store
-- fills the column of rows written before this step when it opens the
-- database, as it does on SQLite (two devices sharing a key must not make
-- this step fail); devices_key_unindexed finds them without a scan.
ALTER TABLE devices ADD COLUMN key_fingerprint BYTEA;
CREATE UNIQUE INDEX devices_key_fingerprint ON devices (key_fingerprint)
	WHERE key_fingerprint IS NOT NULL;
CREATE INDEX devices_key_unindexed ON devices (id)
	WHERE key_algorithm = 'ecc' AND public_key IS NOT NULL AND key_fingerprint IS NULL;

-- A saved session, by the connection ID the server chose. state is opaque
-- to the store (the gateway seals it); addr is the last "host:port".
CREATE TABLE dtls_sessions (
	cid        BYTEA  NOT NULL PRIMARY KEY,
	device_id  TEXT   NOT NULL,
	state      BYTEA  NOT NULL,
	addr       TEXT   NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL
);
CREATE INDEX dtls_sessions_device ON dtls_sessions (device_id);
CREATE INDEX dtls_sessions_updated ON dtls_sessions (updated_at);
