-- 0019_presence_indexes: indexes that presence writes do not have to
-- touch for devices they do not serve.
--
-- devices_node finds the devices a node holds (ResetNodeBatch), and only
-- online devices have a node: without the offline ones, an offline moves
-- no entry into a run of '' keys and an online takes none out of it.
-- devices_owner_version and devices_customer_version give a user's or a
-- customer's list stamp (count and highest row version); every write of
-- a device moves its row version, and without the devices that have no
-- owner or no customer (most devices of a product have neither) a write
-- updates one of these indexes at most instead of both. The queries that
-- use them say owner_id <> '' (or customer_id <> '') as the indexes do.
-- At a shutdown of 100,000 devices this saves about 15% of the pages each
-- chunk of offlines writes (BenchmarkSetDevicesOffline).
DROP INDEX devices_node;
CREATE INDEX devices_node ON devices (node) WHERE node <> '';
DROP INDEX devices_owner_version;
CREATE INDEX devices_owner_version ON devices (owner_id, row_version) WHERE owner_id <> '';
DROP INDEX devices_customer_version;
CREATE INDEX devices_customer_version ON devices (customer_id, row_version) WHERE customer_id <> '';
