-- 0010_cluster_keys: values every server of a cluster shares, written once
-- by the first server to start (docs/scaling.md): the device server keys,
-- sealed under the secret key, and a check value of the secret key itself.
CREATE TABLE cluster_keys (
	name       TEXT   NOT NULL PRIMARY KEY,
	value      BYTEA  NOT NULL,
	created_at BIGINT NOT NULL
);
