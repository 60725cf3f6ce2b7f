-- 0018_product_device_changes: which device moved a product's order
-- version, so that a node that keeps the product's order in memory (GET
-- /v1/products/:p/devices) brings it up to date by rereading the devices
-- that changed instead of the whole product.
--
-- Each move of product_device_lists.version (migration 0014) writes one
-- row here in the same transaction: the product, the new version and the
-- device whose insert, delete or change moved it. A product's versions
-- are therefore logged without a gap from the first write after this
-- migration on. Each write also drops the row 4,096 versions below the
-- new one, so a product keeps its last 4,096 changes; a node whose order
-- is older than that finds the row after its version missing and rereads
-- the whole product.
CREATE TABLE product_device_changes (
	product_id INTEGER NOT NULL,
	version    INTEGER NOT NULL,
	device_id  TEXT    NOT NULL,
	PRIMARY KEY (product_id, version)
) STRICT, WITHOUT ROWID;

DROP TRIGGER devices_product_list_insert;
DROP TRIGGER devices_product_list_delete;
DROP TRIGGER devices_product_list_update;

CREATE TRIGGER devices_product_list_insert AFTER INSERT ON devices FOR EACH ROW
WHEN NEW.product_id <> 0
BEGIN
	INSERT INTO product_device_lists (product_id, devices, version) VALUES (NEW.product_id, 1, 1)
		ON CONFLICT (product_id) DO UPDATE SET devices = devices + 1, version = version + 1;
	INSERT INTO product_device_changes (product_id, version, device_id)
		SELECT product_id, version, NEW.id FROM product_device_lists WHERE product_id = NEW.product_id;
	DELETE FROM product_device_changes WHERE product_id = NEW.product_id
		AND version = (SELECT version - 4096 FROM product_device_lists WHERE product_id = NEW.product_id);
END;

CREATE TRIGGER devices_product_list_delete AFTER DELETE ON devices FOR EACH ROW
WHEN OLD.product_id <> 0
BEGIN
	UPDATE product_device_lists SET devices = devices - 1, version = version + 1
		WHERE product_id = OLD.product_id;
	INSERT INTO product_device_changes (product_id, version, device_id)
		SELECT product_id, version, OLD.id FROM product_device_lists WHERE product_id = OLD.product_id;
	DELETE FROM product_device_changes WHERE product_id = OLD.product_id
		AND version = (SELECT version - 4096 FROM product_device_lists WHERE product_id = OLD.product_id);
END;

-- The old product is logged when the device leaves it, the new one when
-- the device joins it or changes in it (the WHEN clause admits an update
-- on the new side only when NEW.product_id is not 0).
CREATE TRIGGER devices_product_list_update
AFTER UPDATE OF product_id, last_handshake_at, product_version, quarantined, name_key ON devices FOR EACH ROW
WHEN OLD.product_id <> NEW.product_id OR (NEW.product_id <> 0 AND (
	OLD.last_handshake_at IS NOT NEW.last_handshake_at OR OLD.product_version <> NEW.product_version OR
	OLD.quarantined <> NEW.quarantined OR OLD.name_key <> NEW.name_key))
BEGIN
	UPDATE product_device_lists SET devices = devices - 1, version = version + 1
		WHERE product_id = OLD.product_id AND OLD.product_id <> NEW.product_id;
	INSERT INTO product_device_changes (product_id, version, device_id)
		SELECT product_id, version, OLD.id FROM product_device_lists
		WHERE product_id = OLD.product_id AND OLD.product_id <> NEW.product_id;
	DELETE FROM product_device_changes WHERE product_id = OLD.product_id AND OLD.product_id <> NEW.product_id
		AND version = (SELECT version - 4096 FROM product_device_lists WHERE product_id = OLD.product_id);
	INSERT INTO product_device_lists (product_id, devices, version)
		SELECT NEW.product_id, 1, 1 WHERE NEW.product_id <> 0 AND OLD.product_id <> NEW.product_id
		ON CONFLICT (product_id) DO UPDATE SET devices = devices + 1, version = version + 1;
	UPDATE product_device_lists SET version = version + 1
		WHERE product_id = NEW.product_id AND OLD.product_id = NEW.product_id;
	INSERT INTO product_device_changes (product_id, version, device_id)
		SELECT product_id, version, NEW.id FROM product_device_lists
		WHERE product_id = NEW.product_id AND NEW.product_id <> 0;
	DELETE FROM product_device_changes WHERE product_id = NEW.product_id AND NEW.product_id <> 0
		AND version = (SELECT version - 4096 FROM product_device_lists WHERE product_id = NEW.product_id);
END;
