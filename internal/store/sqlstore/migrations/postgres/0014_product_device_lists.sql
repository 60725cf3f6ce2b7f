-- 0014_product_device_lists: what GET /v1/products/:p/devices needs to
-- page through a large product without counting and sorting it per page.
--
-- product_device_lists holds, per product, how many devices it has and an
-- order version. A trigger moves the version whenever a device joins or
-- leaves the product or changes a column the list sorts or filters on
-- (last handshake, product firmware version, quarantined, name). Presence
-- (online, offline, last heard), describes and notes leave it alone. The
-- row is updated in the device's own transaction, and its row lock orders
-- the writers of one product, so a version read in a snapshot matches the
-- devices that snapshot sees.
CREATE TABLE product_device_lists (
	product_id BIGINT NOT NULL PRIMARY KEY,
	devices    BIGINT NOT NULL DEFAULT 0,
	version    BIGINT NOT NULL DEFAULT 0
);
INSERT INTO product_device_lists (product_id, devices, version)
	SELECT product_id, COUNT(*), 1 FROM devices WHERE product_id <> 0 GROUP BY product_id;

CREATE FUNCTION devices_product_list() RETURNS trigger AS $$
BEGIN
	IF TG_OP <> 'INSERT' THEN
		IF OLD.product_id <> 0 AND (TG_OP = 'DELETE' OR OLD.product_id <> NEW.product_id) THEN
			UPDATE product_device_lists SET devices = devices - 1, version = version + 1
				WHERE product_id = OLD.product_id;
		END IF;
	END IF;
	IF TG_OP = 'DELETE' THEN
		RETURN NULL;
	END IF;
	IF NEW.product_id = 0 THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' THEN
		INSERT INTO product_device_lists (product_id, devices, version) VALUES (NEW.product_id, 1, 1)
			ON CONFLICT (product_id) DO UPDATE SET devices = product_device_lists.devices + 1,
				version = product_device_lists.version + 1;
	ELSIF OLD.product_id <> NEW.product_id THEN
		INSERT INTO product_device_lists (product_id, devices, version) VALUES (NEW.product_id, 1, 1)
			ON CONFLICT (product_id) DO UPDATE SET devices = product_device_lists.devices + 1,
				version = product_device_lists.version + 1;
	ELSIF OLD.last_handshake_at IS DISTINCT FROM NEW.last_handshake_at
		OR OLD.product_version <> NEW.product_version
		OR OLD.quarantined <> NEW.quarantined
		OR OLD.name_key <> NEW.name_key THEN
		UPDATE product_device_lists SET version = version + 1 WHERE product_id = NEW.product_id;
	END IF;
	RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER devices_product_list
	AFTER INSERT OR DELETE OR UPDATE OF product_id, last_handshake_at, product_version, quarantined, name_key
	ON devices FOR EACH ROW EXECUTE FUNCTION devices_product_list();

-- The list reads a product's sort and filter keys from this index alone
-- (it replaces devices_product, whose column it starts with).
CREATE INDEX devices_product_keys ON devices
	(product_id, id, last_handshake_at, product_version, quarantined, name_key);
DROP INDEX devices_product;
