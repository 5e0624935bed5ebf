-- 0005: the letters per group, and per group and hour, kept by statement
-- triggers, so Groups without a filter (the console's first page) and the
-- hourly trend read counters instead of aggregating letters: O(groups),
-- not O(letters).
CREATE TABLE IF NOT EXISTS {{schema}}.group_counts (
    dim     text NOT NULL,             -- f (fingerprint), t (original topic), h (handler)
    key     text COLLATE "C" NOT NULL,
    topic   text COLLATE "C" NOT NULL,
    handler text COLLATE "C" NOT NULL,
    status  text NOT NULL,
    n       bigint NOT NULL,
    PRIMARY KEY (dim, key, topic, handler, status)
);

-- the letters per group and hour of failure (any status), for the
-- console's hourly trend (Browser.Hourly)
CREATE TABLE IF NOT EXISTS {{schema}}.group_hours (
    dim  text NOT NULL,
    key  text COLLATE "C" NOT NULL,
    hour timestamptz NOT NULL,
    n    bigint NOT NULL,
    PRIMARY KEY (dim, key, hour)
);

-- the oldest new letter of a group (its age gauge and alert)
CREATE INDEX IF NOT EXISTS dead_letters_fingerprint_new_idx ON {{schema}}.dead_letters (fingerprint, failed_at) WHERE status = 'new';
CREATE INDEX IF NOT EXISTS dead_letters_topic_new_idx ON {{schema}}.dead_letters (original_topic, failed_at) WHERE status = 'new';
CREATE INDEX IF NOT EXISTS dead_letters_handler_new_idx ON {{schema}}.dead_letters (handler, failed_at) WHERE status = 'new';

-- One upsert per statement of the net change per counter, in key order so
-- that concurrent writers lock counters in the same order (no deadlock).
CREATE OR REPLACE FUNCTION {{schema}}.levee_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {{schema}}.group_counts AS g (dim, key, topic, handler, status, n)
    SELECT d.dim, d.key, r.original_topic, r.handler, r.status, count(*)
    FROM new_rows r CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (dim, key, topic, handler, status) DO UPDATE SET n = g.n + excluded.n;
    INSERT INTO {{schema}}.group_hours AS g (dim, key, hour, n)
    SELECT d.dim, d.key, date_trunc('hour', r.failed_at, 'UTC'), count(*)
    FROM new_rows r CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (dim, key, hour) DO UPDATE SET n = g.n + excluded.n;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {{schema}}.levee_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {{schema}}.group_counts AS g (dim, key, topic, handler, status, n)
    SELECT d.dim, d.key, r.original_topic, r.handler, r.status, -count(*)
    FROM old_rows r CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (dim, key, topic, handler, status) DO UPDATE SET n = g.n + excluded.n;
    DELETE FROM {{schema}}.group_counts WHERE n <= 0;
    WITH gone AS (
        INSERT INTO {{schema}}.group_hours AS g (dim, key, hour, n)
        SELECT d.dim, d.key, date_trunc('hour', r.failed_at, 'UTC'), -count(*)
        FROM old_rows r CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (dim, key, hour) DO UPDATE SET n = g.n + excluded.n
        RETURNING g.dim, g.key, g.hour, g.n)
    DELETE FROM {{schema}}.group_hours h USING gone
        WHERE gone.n <= 0 AND h.dim = gone.dim AND h.key = gone.key AND h.hour = gone.hour;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {{schema}}.levee_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {{schema}}.group_counts AS g (dim, key, topic, handler, status, n)
    SELECT d.dim, d.key, r.original_topic, r.handler, r.status, sum(r.delta)
    FROM (SELECT fingerprint, original_topic, handler, status, -1 AS delta FROM old_rows
          UNION ALL
          SELECT fingerprint, original_topic, handler, status, 1 FROM new_rows) r
    CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(r.delta) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (dim, key, topic, handler, status) DO UPDATE SET n = g.n + excluded.n;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS levee_count_insert ON {{schema}}.dead_letters;
CREATE TRIGGER levee_count_insert AFTER INSERT ON {{schema}}.dead_letters
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.levee_count_insert();
DROP TRIGGER IF EXISTS levee_count_delete ON {{schema}}.dead_letters;
CREATE TRIGGER levee_count_delete AFTER DELETE ON {{schema}}.dead_letters
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.levee_count_delete();
DROP TRIGGER IF EXISTS levee_count_update ON {{schema}}.dead_letters;
CREATE TRIGGER levee_count_update AFTER UPDATE ON {{schema}}.dead_letters
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.levee_count_update();

-- the letters stored before this migration (the triggers lock the table
-- with the migration's transaction, so none is counted twice or missed)
INSERT INTO {{schema}}.group_counts (dim, key, topic, handler, status, n)
SELECT d.dim, d.key, r.original_topic, r.handler, r.status, count(*)
FROM {{schema}}.dead_letters r CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)
GROUP BY 1, 2, 3, 4, 5
ON CONFLICT (dim, key, topic, handler, status) DO UPDATE SET n = excluded.n;
INSERT INTO {{schema}}.group_hours (dim, key, hour, n)
SELECT d.dim, d.key, date_trunc('hour', r.failed_at, 'UTC'), count(*)
FROM {{schema}}.dead_letters r CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)
GROUP BY 1, 2, 3
ON CONFLICT (dim, key, hour) DO UPDATE SET n = excluded.n;
