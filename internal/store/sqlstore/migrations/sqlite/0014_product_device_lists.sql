-- 0014_product_device_lists: what GET /v1/products/:p/devices needs to
-- page through a large product without counting and sorting it per page.
--
-- product_device_lists holds, per product, how many devices it has and an
-- order version. Triggers move the version whenever a device joins or
-- leaves the product or changes a column the list sorts or filters on
-- (last handshake, product firmware version, quarantined, name). Presence
-- (online, offline, last heard), describes and notes leave it alone, so an
-- idle fleet's order stays cached however often its devices are heard.
-- A version never goes back: the list caches a product's order under it.
CREATE TABLE product_device_lists (
	product_id INTEGER NOT NULL PRIMARY KEY,
	devices    INTEGER NOT NULL DEFAULT 0,
	version    INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO product_device_lists (product_id, devices, version)
	SELECT product_id, COUNT(*), 1 FROM devices WHERE product_id <> 0 GROUP BY product_id;

CREATE TRIGGER devices_product_list_insert AFTER INSERT ON devices FOR EACH ROW
WHEN NEW.product_id <> 0
BEGIN
	INSERT INTO product_device_lists (product_id, devices, version) VALUES (NEW.product_id, 1, 1)
		ON CONFLICT (product_id) DO UPDATE SET devices = devices + 1, version = version + 1;
END;

CREATE TRIGGER devices_product_list_delete AFTER DELETE ON devices FOR EACH ROW
WHEN OLD.product_id <> 0
BEGIN
	UPDATE product_device_lists SET devices = devices - 1, version = version + 1
		WHERE product_id = OLD.product_id;
END;

CREATE TRIGGER devices_product_list_update
AFTER UPDATE OF product_id, last_handshake_at, product_version, quarantined, name_key ON devices FOR EACH ROW
WHEN OLD.product_id <> NEW.product_id OR (NEW.product_id <> 0 AND (
	OLD.last_handshake_at IS NOT NEW.last_handshake_at OR OLD.product_version <> NEW.product_version OR
	OLD.quarantined <> NEW.quarantined OR OLD.name_key <> NEW.name_key))
BEGIN
	UPDATE product_device_lists SET devices = devices - 1, version = version + 1
		WHERE product_id = OLD.product_id AND OLD.product_id <> NEW.product_id;
	INSERT INTO product_device_lists (product_id, devices, version)
		SELECT NEW.product_id, 1, 1 WHERE NEW.product_id <> 0 AND OLD.product_id <> NEW.product_id
		ON CONFLICT (product_id) DO UPDATE SET devices = devices + 1, version = version + 1;
	UPDATE product_device_lists SET version = version + 1
		WHERE product_id = NEW.product_id AND OLD.product_id = NEW.product_id;
END;

-- The list reads a product's sort and filter keys from this index alone
-- (it replaces devices_product, whose column it starts with).
CREATE INDEX devices_product_keys ON devices
	(product_id, id, last_handshake_at, product_version, quarantined, name_key);
DROP INDEX devices_product;
