-- 0002_devices: devices (identity and key, ownership, connection state,
-- what the firmware exposes) and claim codes.
--
-- name_key is the name folded to lower case by the store: the per-owner
-- uniqueness of names, and the lookup by name, ignore case the same way in
-- both dialects. functions, variables and subscriptions are JSON text.

CREATE TABLE devices (
	id                       TEXT    NOT NULL PRIMARY KEY,
	name                     TEXT    NOT NULL DEFAULT '',
	name_key                 TEXT    NOT NULL DEFAULT '',
	owner_id                 TEXT    NOT NULL DEFAULT '',
	customer_id              TEXT    NOT NULL DEFAULT '',
	product_id               INTEGER NOT NULL DEFAULT 0,
	platform_id              INTEGER NOT NULL DEFAULT 0,
	public_key               BLOB,
	key_algorithm            TEXT    NOT NULL DEFAULT '',
	notes                    TEXT    NOT NULL DEFAULT '',
	online                   INTEGER NOT NULL DEFAULT 0,
	node                     TEXT    NOT NULL DEFAULT '',
	session_id               TEXT    NOT NULL DEFAULT '',
	last_heard               INTEGER,
	last_handshake_at        INTEGER,
	last_ip                  TEXT    NOT NULL DEFAULT '',
	system_version           TEXT    NOT NULL DEFAULT '',
	system_module_version    INTEGER NOT NULL DEFAULT 0,
	product_version          INTEGER NOT NULL DEFAULT 0,
	functions                TEXT    NOT NULL DEFAULT '[]',
	variables                TEXT    NOT NULL DEFAULT '{}',
	subscriptions            TEXT    NOT NULL DEFAULT '[]',
	status                   TEXT    NOT NULL DEFAULT 'normal',
	firmware_updates_enabled INTEGER NOT NULL DEFAULT 1,
	development              INTEGER NOT NULL DEFAULT 0,
	quarantined              INTEGER NOT NULL DEFAULT 0,
	denied                   INTEGER NOT NULL DEFAULT 0,
	firmware_updates_forced  INTEGER NOT NULL DEFAULT 0,
	created_at               INTEGER NOT NULL,
	updated_at               INTEGER NOT NULL
) STRICT;
CREATE INDEX devices_owner ON devices (owner_id);
CREATE INDEX devices_customer ON devices (customer_id);
CREATE UNIQUE INDEX devices_owner_name ON devices (owner_id, name_key)
	WHERE owner_id <> '' AND name_key <> '';
CREATE UNIQUE INDEX devices_customer_name ON devices (customer_id, name_key)
	WHERE customer_id <> '' AND name_key <> '';
CREATE INDEX devices_product ON devices (product_id);
CREATE INDEX devices_node ON devices (node);

CREATE TABLE claim_codes (
	hash        TEXT    NOT NULL PRIMARY KEY,
	user_id     TEXT    NOT NULL DEFAULT '',
	customer_id TEXT    NOT NULL DEFAULT '',
	product_id  INTEGER NOT NULL DEFAULT 0,
	expires_at  INTEGER NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX claim_codes_user ON claim_codes (user_id);
CREATE INDEX claim_codes_customer ON claim_codes (customer_id);
CREATE INDEX claim_codes_expires ON claim_codes (expires_at);
