-- 0016_oauth_grants: consents remembered by the browser sign-in
-- (GET /oauth/authorize, docs/authentication.md, Remembered consent). One row
-- per subject (a user, or a customer of a product) and client: the scopes
-- the subject allowed that client, space-separated and sorted. A later
-- sign-in to the same client that asks for no more skips the consent page.
-- Deleting the client deletes its grants.
CREATE TABLE oauth_grants (
	kind       TEXT    NOT NULL,
	subject_id TEXT    NOT NULL,
	client_id  TEXT    NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
	scope      TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (kind, subject_id, client_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX oauth_grants_client ON oauth_grants (client_id);
