-- 0007_team_invites: pending team invitations. An invitation grants
-- nothing until the invited address accepts it (docs/api.md, Team
-- invitations); its secret is kept as a SHA-256 hex hash.
CREATE TABLE team_invites (
	product_id BIGINT NOT NULL,
	username   TEXT   NOT NULL,
	role       TEXT   NOT NULL,
	invited_by TEXT   NOT NULL DEFAULT '',
	token_hash TEXT   NOT NULL,
	expires_at BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (product_id, username)
);
CREATE UNIQUE INDEX team_invites_token_hash ON team_invites (token_hash);
CREATE INDEX team_invites_username ON team_invites (username);
