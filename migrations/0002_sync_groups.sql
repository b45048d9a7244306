-- Sync groups (keepalived's vrrp_sync_group): instances that change state together. Written
-- by the one writer task like everything else (server/src/store/writer.rs).

-- One row per group. revision comes from the same counter as instances' (meta.last_revision).
CREATE TABLE sync_groups (
    name       TEXT    NOT NULL PRIMARY KEY,
    revision   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- The members of each group, in the order given. The primary key is the backstop for "an
-- instance belongs to at most one group" (the manager checks first).
CREATE TABLE sync_group_members (
    instance   TEXT    NOT NULL PRIMARY KEY,
    sync_group TEXT    NOT NULL REFERENCES sync_groups (name) ON DELETE CASCADE,
    position   INTEGER NOT NULL
);
CREATE INDEX sync_group_members_group ON sync_group_members (sync_group, position);

-- Group changes are config changes too: a config_changes row with instance '' and
-- sync_group set, the group (proto3 JSON of havip.v1.SyncGroup) before and after, and a
-- SYNC_GROUP_CHANGED event. Instance rows have NULL in these columns.
ALTER TABLE config_changes ADD COLUMN sync_group TEXT;
ALTER TABLE config_changes ADD COLUMN old_group_json TEXT;
ALTER TABLE config_changes ADD COLUMN new_group_json TEXT;
