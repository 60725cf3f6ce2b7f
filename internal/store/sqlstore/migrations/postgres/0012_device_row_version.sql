-- 0012_device_row_version: a row version per device, for the device list's
-- cache of rendered devices. Every insert or update of a device takes the
-- next value of one sequence, so a device's version changes on any write,
-- from any node, and never repeats for a device ID (not even after a
-- delete and a new provisioning). The list reads (id, row_version) and
-- rerenders only the devices whose version moved.
ALTER TABLE devices ADD COLUMN row_version BIGINT NOT NULL DEFAULT 0;

CREATE SEQUENCE device_row_version_seq;

CREATE FUNCTION devices_next_row_version() RETURNS trigger AS $$
BEGIN
    NEW.row_version := nextval('device_row_version_seq');
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER devices_row_version BEFORE INSERT OR UPDATE ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_next_row_version();

CREATE INDEX devices_owner_list ON devices (owner_id, last_handshake_at);
CREATE INDEX devices_customer_list ON devices (customer_id, last_handshake_at);
