-- 0011_user_version: a row version for users, so that an update based on
-- a stale read (two servers of a cluster changing one account at once)
-- fails instead of undoing the other write (docs/scaling.md).
ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
