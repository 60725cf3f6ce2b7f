-- 0003_webhooks: webhooks and integrations (docs/particle-api.md#webhooks), and
-- their per-hook delivery logs.
--
-- settings is the JSON text of store.WebhookSettings, so new request
-- options need no migration. product_id is 0 for a user's (sandbox) hook.
-- webhook_deliveries.event_id holds the bus event ID's 64 bits as a
-- signed integer; latency_ns is nanoseconds. Delivery rows go with their
-- hook in the transaction that deletes it.

CREATE TABLE webhooks (
	id               TEXT    NOT NULL PRIMARY KEY,
	user_id          TEXT    NOT NULL DEFAULT '',
	product_id       INTEGER NOT NULL DEFAULT 0,
	integration_type TEXT    NOT NULL,
	name             TEXT    NOT NULL DEFAULT '',
	event            TEXT    NOT NULL,
	device_id        TEXT    NOT NULL DEFAULT '',
	disabled         INTEGER NOT NULL DEFAULT 0,
	settings         TEXT    NOT NULL DEFAULT '{}',
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX webhooks_user ON webhooks (user_id, product_id);
CREATE INDEX webhooks_product ON webhooks (product_id);

CREATE TABLE webhook_deliveries (
	id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	webhook_id TEXT    NOT NULL,
	event_id   INTEGER NOT NULL DEFAULT 0,
	event_name TEXT    NOT NULL DEFAULT '',
	device_id  TEXT    NOT NULL DEFAULT '',
	attempt    INTEGER NOT NULL DEFAULT 0,
	at         INTEGER NOT NULL,
	method     TEXT    NOT NULL DEFAULT '',
	url        TEXT    NOT NULL DEFAULT '',
	status     INTEGER NOT NULL DEFAULT 0,
	latency_ns INTEGER NOT NULL DEFAULT 0,
	error      TEXT    NOT NULL DEFAULT '',
	response   TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);
