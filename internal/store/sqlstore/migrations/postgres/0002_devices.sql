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
	product_id               BIGINT  NOT NULL DEFAULT 0,
	platform_id              BIGINT  NOT NULL DEFAULT 0,
	public_key               BYTEA,
	key_algorithm            TEXT    NOT NULL DEFAULT '',
	notes                    TEXT    NOT NULL DEFAULT '',
	online                   BOOLEAN NOT NULL DEFAULT FALSE,
	node                     TEXT    NOT NULL DEFAULT '',
	session_id               TEXT    NOT NULL DEFAULT '',
	last_heard               BIGINT,
	last_handshake_at        BIGINT,
	last_ip                  TEXT    NOT NULL DEFAULT '',
	system_version           TEXT    NOT NULL DEFAULT '',
	system_module_version    BIGINT  NOT NULL DEFAULT 0,
	product_version          BIGINT  NOT NULL DEFAULT 0,
	functions                TEXT    NOT NULL DEFAULT '[]',
	variables                TEXT    NOT NULL DEFAULT '{}',
	subscriptions            TEXT    NOT NULL DEFAULT '[]',
	status                   TEXT    NOT NULL DEFAULT 'normal',
	firmware_updates_enabled BOOLEAN NOT NULL DEFAULT TRUE,
	development              BOOLEAN NOT NULL DEFAULT FALSE,
	quarantined              BOOLEAN NOT NULL DEFAULT FALSE,
	denied                   BOOLEAN NOT NULL DEFAULT FALSE,
	firmware_updates_forced  BOOLEAN NOT NULL DEFAULT FALSE,
	created_at               BIGINT  NOT NULL,
	updated_at               BIGINT  NOT NULL
);
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
	product_id  BIGINT  NOT NULL DEFAULT 0,
	expires_at  BIGINT  NOT NULL,
	created_at  BIGINT  NOT NULL
);
CREATE INDEX claim_codes_user ON claim_codes (user_id);
CREATE INDEX claim_codes_customer ON claim_codes (customer_id);
CREATE INDEX claim_codes_expires ON claim_codes (expires_at);
