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

-- Before this step an invitation was a membership at once. Memberships of
-- addresses that no account holds were never accepted by anyone: they
-- become pending invitations whose token nobody has (the team invites
-- again, or the operator runs `wick team accept`), so that whoever
-- registers such an address first does not join the team. Memberships of
-- existing accounts, owners and API users stay.
INSERT INTO team_invites (product_id, username, role, invited_by, token_hash, expires_at, created_at)
	SELECT m.product_id, m.username, m.role, '', 'legacy:' || m.product_id || ':' || m.username,
		(EXTRACT(EPOCH FROM now()) * 1000)::BIGINT + 604800000, m.created_at
	FROM team_members m
	WHERE m.role <> 'Owner' AND NOT m.programmatic
		AND NOT EXISTS (SELECT 1 FROM users u WHERE u.username = m.username);
DELETE FROM team_members
	WHERE role <> 'Owner' AND NOT programmatic
		AND NOT EXISTS (SELECT 1 FROM users u WHERE u.username = team_members.username);
