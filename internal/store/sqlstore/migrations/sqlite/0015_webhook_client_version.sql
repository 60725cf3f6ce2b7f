-- 0015_webhook_client_version: a row version for webhooks and OAuth
-- clients, so that an update based on a stale read (two servers of a
-- cluster changing one hook or client at once) fails instead of undoing
-- the other write (docs/scaling.md).
ALTER TABLE webhooks ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE oauth_clients ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
