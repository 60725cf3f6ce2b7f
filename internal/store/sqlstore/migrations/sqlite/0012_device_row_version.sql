-- 0012_device_row_version: a row version per device, for the device list's
-- cache of rendered devices. Every insert or update of a device takes the
-- next value of one counter, so a device's version changes on any write,
-- whatever statement makes it, and never repeats for a device ID (not even
-- after a delete and a new provisioning). The list reads (id, row_version)
-- and rerenders only the devices whose version moved.
ALTER TABLE devices ADD COLUMN row_version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE device_row_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO device_row_clock (id, n) VALUES (1, 0);

CREATE TRIGGER devices_row_version_insert AFTER INSERT ON devices FOR EACH ROW
BEGIN
    UPDATE device_row_clock SET n = n + 1 WHERE id = 1;
    UPDATE devices SET row_version = (SELECT n FROM device_row_clock WHERE id = 1) WHERE id = NEW.id;
END;

-- The WHEN clause skips the trigger's own update of row_version.
CREATE TRIGGER devices_row_version_update AFTER UPDATE ON devices FOR EACH ROW
WHEN NEW.row_version = OLD.row_version
BEGIN
    UPDATE device_row_clock SET n = n + 1 WHERE id = 1;
    UPDATE devices SET row_version = (SELECT n FROM device_row_clock WHERE id = 1) WHERE id = NEW.id;
END;

CREATE INDEX devices_owner_list ON devices (owner_id, last_handshake_at);
CREATE INDEX devices_customer_list ON devices (customer_id, last_handshake_at);
-- A list's stamp (count and highest version) from the index alone.
CREATE INDEX devices_owner_version ON devices (owner_id, row_version);
CREATE INDEX devices_customer_version ON devices (customer_id, row_version);
