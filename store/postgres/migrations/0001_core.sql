-- accessbot schema v1: requests with their indexes, the hash-chained audit
-- log and its head, connectors' key-value state, the installation ID.
-- Applied once, in one transaction, under the migration advisory lock.

-- meta: the installation ID (DESIGN.md §6: prefixes webhook IDs; made
-- here, once, and copied by `accessbot store migrate`).
CREATE TABLE accessbot_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO accessbot_meta (key, value) VALUES ('installation_id', gen_random_uuid()::text);

-- Human request IDs: AR-1001 is the first. A sequence never hands out a
-- number twice, so IDs may skip after a rolled-back Create.
CREATE SEQUENCE accessbot_request_seq AS bigint START WITH 1001 MINVALUE 1;

-- requests: data is the whole access.Request as JSON (the json type keeps
-- the exact bytes, so every field round-trips, including text jsonb would
-- refuse such as \u0000); the other columns are derived from it on every
-- write and exist to be indexed.
CREATE TABLE accessbot_requests (
    seq           bigint  PRIMARY KEY,
    version       bigint  NOT NULL,
    state         text    NOT NULL,
    open          boolean NOT NULL,            -- state is not terminal
    requester     text    NOT NULL,
    system        text    NOT NULL,
    entitlement   bytea   NOT NULL,            -- SHA-256 of Entitlement.Key()
    next_deadline bigint,                      -- Request.NextDeadline() in Unix ns (before 1970: 0); NULL: none
    data          json    NOT NULL
) WITH (fillfactor = 80); -- room for HOT updates: most writes change no indexed column

CREATE INDEX accessbot_requests_deadline    ON accessbot_requests (next_deadline, seq) WHERE next_deadline IS NOT NULL;
CREATE INDEX accessbot_requests_requester   ON accessbot_requests (requester, seq);
CREATE INDEX accessbot_requests_entitlement ON accessbot_requests (entitlement, seq);
CREATE INDEX accessbot_requests_system      ON accessbot_requests (system, seq);
CREATE INDEX accessbot_requests_open        ON accessbot_requests (seq) WHERE open;

-- audit: the chain, one row per record, rec holding the record's JSON line
-- exactly as sealed (the hash covers nanosecond times, which timestamptz
-- would round).
CREATE TABLE accessbot_audit (
    seq bigint PRIMARY KEY,
    rec json   NOT NULL
);

-- audit_head: the chain's last seq and hash, one row. Every append locks
-- it FOR UPDATE in the appending transaction, so appends from every
-- replica are serialised and the chain stays linear.
CREATE TABLE accessbot_audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint  NOT NULL,
    hash text    NOT NULL
);
INSERT INTO accessbot_audit_head (seq, hash) VALUES (0, '0000000000000000000000000000000000000000000000000000000000000000');

-- kv: durable key-value state per namespace (connector instances, digest
-- marks, the retention mark). Bytes, so any key bbolt held migrates.
CREATE TABLE accessbot_kv (
    ns    bytea NOT NULL,
    key   bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (ns, key)
);
