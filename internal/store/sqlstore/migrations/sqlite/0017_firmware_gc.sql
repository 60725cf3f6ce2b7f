-- 0017_firmware_gc: collecting firmware binaries nothing needs any more
-- (docs/ota.md, "Binaries"). used_at is when the binary was last stored
-- (a second upload of the same bytes renews it), so a binary just uploaded
-- and not yet named by a version or an update is never collected; the
-- hash indexes serve the collector's "is it named anywhere" checks.
ALTER TABLE firmware_binaries ADD COLUMN used_at INTEGER NOT NULL DEFAULT 0;
UPDATE firmware_binaries SET used_at = created_at;
CREATE INDEX product_firmware_hash ON product_firmware (hash);
CREATE INDEX device_firmware_hash ON device_firmware (hash);
