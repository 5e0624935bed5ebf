-- 0001: dead letters recorded by the Levee DLQ monitor.
CREATE TABLE IF NOT EXISTS {{schema}}.dead_letters (
    -- "C" collation: ids order bytewise, as the replay cursor compares them in Go
    id             text COLLATE "C" PRIMARY KEY,
    uuid           text        NOT NULL DEFAULT '',
    original_uuid  text        NOT NULL DEFAULT '',
    dlq_topic      text        NOT NULL DEFAULT '',
    original_topic text        NOT NULL DEFAULT '',
    handler        text        NOT NULL DEFAULT '',
    consumer_group text        NOT NULL DEFAULT '',
    fingerprint    text        NOT NULL,
    error_class    text        NOT NULL DEFAULT '',
    error_type     text        NOT NULL DEFAULT '',
    error          text        NOT NULL DEFAULT '',
    attempts       integer     NOT NULL DEFAULT 0,
    replay_count   integer     NOT NULL DEFAULT 0,
    failed_at      timestamptz NOT NULL,
    received_at    timestamptz NOT NULL,
    -- metadata is the JSON object of the message metadata, kept as bytes so
    -- that any value (NUL included) round-trips.
    metadata       bytea       NOT NULL DEFAULT '\x7b7d',
    payload        bytea       NOT NULL DEFAULT '\x',
    status         text        NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'replayed', 'archived')),
    reason         text        NOT NULL DEFAULT '',
    claim_owner    text,
    claim_until    timestamptz,
    replayed_at    timestamptz,
    replay_uuid    text        NOT NULL DEFAULT ''
);

-- groups, their sample error and group-scoped replays
CREATE INDEX IF NOT EXISTS dead_letters_fingerprint_idx ON {{schema}}.dead_letters (fingerprint, failed_at);
-- selection by original topic and handler
CREATE INDEX IF NOT EXISTS dead_letters_topic_idx ON {{schema}}.dead_letters (original_topic, failed_at);
CREATE INDEX IF NOT EXISTS dead_letters_handler_idx ON {{schema}}.dead_letters (handler, failed_at);
-- time ranges, listing order and retention
CREATE INDEX IF NOT EXISTS dead_letters_failed_at_idx ON {{schema}}.dead_letters (failed_at, id);
-- replay claims walk the letters still dead
CREATE INDEX IF NOT EXISTS dead_letters_new_idx ON {{schema}}.dead_letters (failed_at, id) WHERE status = 'new';
