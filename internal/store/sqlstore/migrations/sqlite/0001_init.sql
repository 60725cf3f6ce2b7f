-- 0001_init: accounts, products and their teams, customers, OAuth clients,
-- access and refresh tokens, challenges.
--
-- Conventions for every later migration:
--   * times are INTEGER milliseconds since the Unix epoch, UTC; NULL means "none";
--   * absent references are '' (strings) or 0 (product IDs), never NULL, so
--     that the same SQL serves SQLite and PostgreSQL;
--   * there are no foreign keys between aggregates: the store removes
--     dependent rows itself, in the transaction that removes the parent;
--   * tables are STRICT; tables keyed by a hash are WITHOUT ROWID.

CREATE TABLE users (
	id                  TEXT    NOT NULL PRIMARY KEY,
	username            TEXT    NOT NULL,
	password_hash       TEXT    NOT NULL,
	first_name          TEXT    NOT NULL DEFAULT '',
	last_name           TEXT    NOT NULL DEFAULT '',
	company_name        TEXT    NOT NULL DEFAULT '',
	business_account    INTEGER NOT NULL DEFAULT 0,
	verified            INTEGER NOT NULL DEFAULT 0,
	mfa_enabled         INTEGER NOT NULL DEFAULT 0,
	mfa_secret          BLOB,
	mfa_recovery_hashes TEXT,
	created_at          INTEGER NOT NULL,
	updated_at          INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_username ON users (username);

CREATE TABLE products (
	id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	slug        TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	description TEXT    NOT NULL DEFAULT '',
	platform_id INTEGER NOT NULL DEFAULT 0,
	owner_id    TEXT    NOT NULL DEFAULT '',
	settings    TEXT    NOT NULL DEFAULT '{}',
	created_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX products_slug ON products (slug);
-- Product IDs start at 10000, as Particle's do.
INSERT INTO sqlite_sequence (name, seq) VALUES ('products', 9999);

CREATE TABLE team_members (
	product_id   INTEGER NOT NULL,
	username     TEXT    NOT NULL,
	role         TEXT    NOT NULL,
	programmatic INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (product_id, username)
) STRICT, WITHOUT ROWID;
CREATE INDEX team_members_username ON team_members (username);

CREATE TABLE customers (
	id            TEXT    NOT NULL PRIMARY KEY,
	product_id    INTEGER NOT NULL,
	email         TEXT    NOT NULL,
	password_hash TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX customers_product_email ON customers (product_id, email);
CREATE INDEX customers_product_created ON customers (product_id, created_at, id);

CREATE TABLE oauth_clients (
	id           TEXT    NOT NULL PRIMARY KEY,
	name         TEXT    NOT NULL,
	type         TEXT    NOT NULL,
	redirect_uri TEXT    NOT NULL DEFAULT '',
	scope        TEXT    NOT NULL DEFAULT '',
	secret_hash  TEXT    NOT NULL DEFAULT '',
	owner_id     TEXT    NOT NULL DEFAULT '',
	product_id   INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX oauth_clients_owner ON oauth_clients (owner_id, created_at);
CREATE INDEX oauth_clients_product ON oauth_clients (product_id, created_at);

CREATE TABLE access_tokens (
	hash        TEXT    NOT NULL PRIMARY KEY,
	kind        TEXT    NOT NULL,
	user_id     TEXT    NOT NULL DEFAULT '',
	customer_id TEXT    NOT NULL DEFAULT '',
	product_id  INTEGER NOT NULL DEFAULT 0,
	client_id   TEXT    NOT NULL DEFAULT '',
	scope       TEXT    NOT NULL DEFAULT '',
	expires_at  INTEGER,
	created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX access_tokens_user ON access_tokens (user_id, created_at);
CREATE INDEX access_tokens_customer ON access_tokens (customer_id);
CREATE INDEX access_tokens_client ON access_tokens (client_id);
CREATE INDEX access_tokens_expires ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
	hash        TEXT    NOT NULL PRIMARY KEY,
	access_hash TEXT    NOT NULL DEFAULT '',
	kind        TEXT    NOT NULL,
	user_id     TEXT    NOT NULL DEFAULT '',
	customer_id TEXT    NOT NULL DEFAULT '',
	product_id  INTEGER NOT NULL DEFAULT 0,
	client_id   TEXT    NOT NULL DEFAULT '',
	scope       TEXT    NOT NULL DEFAULT '',
	expires_at  INTEGER NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX refresh_tokens_access ON refresh_tokens (access_hash);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_customer ON refresh_tokens (customer_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE challenges (
	hash       TEXT    NOT NULL PRIMARY KEY,
	purpose    TEXT    NOT NULL,
	user_id    TEXT    NOT NULL DEFAULT '',
	data       BLOB,
	expires_at INTEGER NOT NULL,
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX challenges_user ON challenges (user_id);
CREATE INDEX challenges_expires ON challenges (expires_at);
