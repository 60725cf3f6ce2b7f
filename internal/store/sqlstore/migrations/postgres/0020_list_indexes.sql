-- 0020_list_indexes: devices_owner_list and devices_customer_list (0012)
-- without the devices that have no owner or no customer, as 0019 did for
-- the version indexes. Every device lacks one of the two (most devices of
-- a product lack both), and every online moves its last handshake: the
-- entry of the '' owner or customer moved from a random page to the end of
-- the run, one or two more pages written per online. Queries that use
-- them say owner_id <> '' (or customer_id <> '') as the indexes do.
DROP INDEX devices_owner_list;
CREATE INDEX devices_owner_list ON devices (owner_id, last_handshake_at) WHERE owner_id <> '';
DROP INDEX devices_customer_list;
CREATE INDEX devices_customer_list ON devices (customer_id, last_handshake_at) WHERE customer_id <> '';
