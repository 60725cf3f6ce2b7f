-- 0019_presence_indexes: devices_node finds the devices a node holds
-- (ResetNodeBatch), and only online devices have a node. Without the
-- offline ones an offline or an online moves one entry at most instead
-- of two, and the index is as small as the node's sessions. The query
-- says node <> '' as the index does. (SQLite's 0019 also narrows its
-- list-stamp indexes, which PostgreSQL does not have.)
DROP INDEX devices_node;
CREATE INDEX devices_node ON devices (node) WHERE node <> '';
