-- havipd's database: instance config, its audit trail, the state transition log and the
-- event log that WatchEvents replays. Times are unix microseconds. Written by one writer
-- task only (server/src/store/writer.rs); see server/src/store/mod.rs for the rules.

-- The current config: one row per instance. spec_json is the proto3 JSON of
-- havip.v1.InstanceSpec (pbjson), with every field filled in. interface/vrid/family are
-- copied out of it so that SQLite itself refuses two instances that would be the same
-- virtual router (the manager checks first; this is the backstop).
CREATE TABLE instances (
    name       TEXT    NOT NULL PRIMARY KEY,
    spec_json  TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    interface  TEXT    NOT NULL,
    vrid       INTEGER NOT NULL CHECK (vrid BETWEEN 1 AND 255),
    family     INTEGER NOT NULL CHECK (family IN (4, 6)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (interface, vrid, family)
);

-- The audit trail of config changes. Never pruned. Specs are stored with the PASS password
-- removed (password_set kept), so the history holds no secret.
CREATE TABLE config_changes (
    id             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    instance       TEXT    NOT NULL,
    revision       INTEGER NOT NULL,
    kind           INTEGER NOT NULL,  -- havip.v1.ChangeKind
    actor          TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    old_spec_json  TEXT,
    new_spec_json  TEXT,
    changed_fields TEXT    NOT NULL,  -- JSON array of field paths
    comment        TEXT    NOT NULL,
    seq            INTEGER NOT NULL   -- the event that announced it
);
CREATE INDEX config_changes_instance_at ON config_changes (instance, at);
CREATE INDEX config_changes_at ON config_changes (at);

-- State transitions, for history queries. seq is the seq of the STATE_CHANGED event that
-- carried the transition; body is the protobuf-encoded havip.v1.Transition with seq set.
CREATE TABLE transitions (
    seq      INTEGER NOT NULL PRIMARY KEY,
    instance TEXT    NOT NULL,
    at       INTEGER NOT NULL,  -- the transition's own time (history filters by it)
    body     BLOB    NOT NULL
);
-- An index on (instance) also orders by the rowid (seq), which is what history pages on.
CREATE INDEX transitions_instance ON transitions (instance);
CREATE INDEX transitions_at ON transitions (at);

-- Every event, in seq order, for WatchEvents replay. body is the protobuf-encoded
-- havip.v1.Event. kind and instance are copied out so replay can filter in SQL. Pruning
-- always removes a prefix (lowest seqs first), so the seqs kept are contiguous.
CREATE TABLE events (
    seq      INTEGER NOT NULL PRIMARY KEY,
    at       INTEGER NOT NULL,  -- when havipd recorded it (retention goes by this)
    kind     INTEGER NOT NULL,  -- havip.v1.EventKind
    instance TEXT    NOT NULL,  -- '' for daemon events
    body     BLOB    NOT NULL
);
CREATE INDEX events_at ON events (at);

-- Counters that must survive pruning: last_seq (so a seq is never reused even after every
-- event was pruned) and last_revision (the manager's global revision counter).
CREATE TABLE meta (
    key   TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('last_seq', 0), ('last_revision', 0);
