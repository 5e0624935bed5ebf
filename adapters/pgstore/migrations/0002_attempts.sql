-- 0002: failed attempts of messages, shared by every process (dlq.AttemptStore).
CREATE TABLE IF NOT EXISTS {{schema}}.attempts (
    handler    text COLLATE "C" NOT NULL,
    uuid       text COLLATE "C" NOT NULL,
    attempts   integer     NOT NULL,
    first_at   timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (handler, uuid)
);

-- purging expired records
CREATE INDEX IF NOT EXISTS attempts_expires_idx ON {{schema}}.attempts (expires_at);
