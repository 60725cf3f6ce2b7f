-- 0004_device_names: owned devices get generated names (docs/api.md,
-- Device names). This partial index holds only owned devices without a
-- name, so the store finds the ones claimed before naming existed (and
-- names them at start) without scanning every device.

CREATE INDEX devices_unnamed ON devices (id)
	WHERE name_key = '' AND (owner_id <> '' OR customer_id <> '');
