-- 0013_cluster_counters: expiring counters that the servers of a cluster
-- share (docs/scaling.md). A single server on SQLite keeps its limits in
-- memory and leaves this table empty.
CREATE TABLE cluster_counters (
	key        TEXT    NOT NULL PRIMARY KEY,
	count      INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX cluster_counters_expires ON cluster_counters (expires_at);
