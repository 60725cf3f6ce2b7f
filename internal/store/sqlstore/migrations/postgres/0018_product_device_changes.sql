-- 0018_product_device_changes: which device moved a product's order
-- version, so that a node that keeps the product's order in memory (GET
-- /v1/products/:p/devices) brings it up to date by rereading the devices
-- that changed instead of the whole product.
--
-- Each move of product_device_lists.version (migration 0014) writes one
-- row here in the same transaction: the product, the new version and the
-- device whose insert, delete or change moved it. The product's row lock
-- orders its writers, so its versions are logged without a gap, in commit
-- order, from the first write after this migration on, and a snapshot
-- that sees a version sees every row up to it. Each write also drops the
-- row 4,096 versions below the new one, so a product keeps its last 4,096
-- changes; a node whose order is older than that finds the row after its
-- version missing and rereads the whole product.
CREATE TABLE product_device_changes (
	product_id BIGINT NOT NULL,
	version    BIGINT NOT NULL,
	device_id  TEXT   NOT NULL,
	PRIMARY KEY (product_id, version)
);

-- product_device_changed logs that device dev moved product p to version v.
CREATE FUNCTION product_device_changed(p BIGINT, v BIGINT, dev TEXT) RETURNS void AS $$
BEGIN
	INSERT INTO product_device_changes (product_id, version, device_id) VALUES (p, v, dev);
	DELETE FROM product_device_changes WHERE product_id = p AND version = v - 4096;
END
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION devices_product_list() RETURNS trigger AS $$
DECLARE
	v BIGINT;
BEGIN
	IF TG_OP <> 'INSERT' THEN
		IF OLD.product_id <> 0 AND (TG_OP = 'DELETE' OR OLD.product_id <> NEW.product_id) THEN
			UPDATE product_device_lists SET devices = devices - 1, version = version + 1
				WHERE product_id = OLD.product_id RETURNING version INTO v;
			IF FOUND THEN
				PERFORM product_device_changed(OLD.product_id, v, OLD.id);
			END IF;
		END IF;
	END IF;
	IF TG_OP = 'DELETE' THEN
		RETURN NULL;
	END IF;
	IF NEW.product_id = 0 THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'INSERT' OR OLD.product_id <> NEW.product_id THEN
		INSERT INTO product_device_lists (product_id, devices, version) VALUES (NEW.product_id, 1, 1)
			ON CONFLICT (product_id) DO UPDATE SET devices = product_device_lists.devices + 1,
				version = product_device_lists.version + 1
			RETURNING version INTO v;
		PERFORM product_device_changed(NEW.product_id, v, NEW.id);
	ELSIF OLD.last_handshake_at IS DISTINCT FROM NEW.last_handshake_at
		OR OLD.product_version <> NEW.product_version
		OR OLD.quarantined <> NEW.quarantined
		OR OLD.name_key <> NEW.name_key THEN
		UPDATE product_device_lists SET version = version + 1 WHERE product_id = NEW.product_id
			RETURNING version INTO v;
		IF FOUND THEN
			PERFORM product_device_changed(NEW.product_id, v, NEW.id);
		END IF;
	END IF;
	RETURN NULL;
END
$$ LANGUAGE plpgsql;
