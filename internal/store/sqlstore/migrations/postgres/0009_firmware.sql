-- 0009_firmware: over-the-air updates (docs/ota.md). Binaries are kept
-- once each, by the hex SHA-256 of their bytes, in the database itself so
-- that every server of a cluster reads the same ones; product firmware
-- versions and per-device firmware state name them by hash.
CREATE TABLE firmware_binaries (
	hash       TEXT   NOT NULL PRIMARY KEY,
	size       BIGINT NOT NULL,
	data       BYTEA  NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE product_firmware (
	product_id      BIGINT  NOT NULL,
	version         BIGINT  NOT NULL,
	title           TEXT    NOT NULL DEFAULT '',
	description     TEXT    NOT NULL DEFAULT '',
	file_name       TEXT    NOT NULL DEFAULT '',
	hash            TEXT    NOT NULL,
	size            BIGINT  NOT NULL,
	platform_id     BIGINT  NOT NULL,
	uploaded_by     TEXT    NOT NULL DEFAULT '',
	product_default BOOLEAN NOT NULL DEFAULT FALSE,
	released_at     BIGINT,
	released_by     TEXT    NOT NULL DEFAULT '',
	created_at      BIGINT  NOT NULL,
	updated_at      BIGINT  NOT NULL,
	PRIMARY KEY (product_id, version)
);
CREATE UNIQUE INDEX product_firmware_default ON product_firmware (product_id)
	WHERE product_default;

CREATE TABLE device_firmware (
	device_id       TEXT   NOT NULL PRIMARY KEY,
	product_id      BIGINT NOT NULL DEFAULT 0,
	desired_version BIGINT,
	hash            TEXT   NOT NULL DEFAULT '',
	version         BIGINT NOT NULL DEFAULT 0,
	status          TEXT   NOT NULL DEFAULT '',
	error           TEXT   NOT NULL DEFAULT '',
	attempts        BIGINT NOT NULL DEFAULT 0,
	started_at      BIGINT,
	finished_at     BIGINT,
	updated_at      BIGINT NOT NULL
);
CREATE INDEX device_firmware_product ON device_firmware (product_id);
