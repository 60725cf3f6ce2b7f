-- 0010_cluster_keys: values every server of a cluster shares, written once
-- by the first server to start (docs/scaling.md). A single server on SQLite
-- keeps its keys in the data directory and leaves this table empty.
CREATE TABLE cluster_keys (
	name       TEXT    NOT NULL PRIMARY KEY,
	value      BLOB    NOT NULL,
	created_at INTEGER NOT NULL
);
