-- 0013_cluster_counters: expiring counters that the servers of a cluster
-- share (failed logins, lockouts, known login addresses; docs/scaling.md).
CREATE TABLE cluster_counters (
	key        TEXT   NOT NULL PRIMARY KEY,
	count      BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX cluster_counters_expires ON cluster_counters (expires_at);
