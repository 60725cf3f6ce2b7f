-- 0008_auth_codes: OAuth 2.0 authorization codes of the browser sign-in
-- (GET /oauth/authorize, docs/authentication.md, Browser sign-in). A code is
-- kept only as the SHA-256 hex hash of its value, bound to its client, its
-- exact redirect URI and its PKCE challenge. used_at marks a code that was
-- presented once; access_hash names the token it was exchanged for, so
-- that a replay can revoke it. Rows go AuthCodeRetention after expiry.
CREATE TABLE auth_codes (
	hash           TEXT    NOT NULL PRIMARY KEY,
	client_id      TEXT    NOT NULL,
	redirect_uri   TEXT    NOT NULL,
	code_challenge TEXT    NOT NULL,
	kind           TEXT    NOT NULL,
	user_id        TEXT    NOT NULL DEFAULT '',
	customer_id    TEXT    NOT NULL DEFAULT '',
	product_id     INTEGER NOT NULL DEFAULT 0,
	scope          TEXT    NOT NULL DEFAULT '',
	access_hash    TEXT    NOT NULL DEFAULT '',
	used_at        INTEGER,
	expires_at     INTEGER NOT NULL,
	created_at     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);
