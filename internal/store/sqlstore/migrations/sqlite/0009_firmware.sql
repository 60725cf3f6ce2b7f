-- 0009_firmware: over-the-air updates (docs/ota.md). Binaries are kept
-- once each, by the hex SHA-256 of their bytes, in the database itself so
-- that every server of a cluster reads the same ones; product firmware
-- versions and per-device firmware state name them by hash.
CREATE TABLE firmware_binaries (
	hash       TEXT    NOT NULL PRIMARY KEY,
	size       INTEGER NOT NULL,
	data       BLOB    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE product_firmware (
	product_id      INTEGER NOT NULL,
	version         INTEGER NOT NULL,
	title           TEXT    NOT NULL DEFAULT '',
	description     TEXT    NOT NULL DEFAULT '',
	file_name       TEXT    NOT NULL DEFAULT '',
	hash            TEXT    NOT NULL,
	size            INTEGER NOT NULL,
	platform_id     INTEGER NOT NULL,
	uploaded_by     TEXT    NOT NULL DEFAULT '',
	product_default INTEGER NOT NULL DEFAULT 0,
	released_at     INTEGER,
	released_by     TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	PRIMARY KEY (product_id, version)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX product_firmware_default ON product_firmware (product_id)
	WHERE product_default = 1;

CREATE TABLE device_firmware (
	device_id       TEXT    NOT NULL PRIMARY KEY,
	product_id      INTEGER NOT NULL DEFAULT 0,
	desired_version INTEGER,
	hash            TEXT    NOT NULL DEFAULT '',
	version         INTEGER NOT NULL DEFAULT 0,
	status          TEXT    NOT NULL DEFAULT '',
	error           TEXT    NOT NULL DEFAULT '',
	attempts        INTEGER NOT NULL DEFAULT 0,
	started_at      INTEGER,
	finished_at     INTEGER,
	updated_at      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX device_firmware_product ON device_firmware (product_id);
