-- 0006: each group's letters and newest failure, kept by the statement
-- triggers of 0005, with an index in each order the console pages groups
-- in, so a page of groups is read from an index: O(page), not O(groups).
CREATE TABLE IF NOT EXISTS {{schema}}.group_totals (
    dim  text NOT NULL,                -- f (fingerprint), t (original topic), h (handler)
    key  text COLLATE "C" NOT NULL,
    n    bigint NOT NULL,              -- letters, any status
    last timestamptz NOT NULL,         -- the newest failed_at
    PRIMARY KEY (dim, key)
);
CREATE INDEX IF NOT EXISTS group_totals_count_idx ON {{schema}}.group_totals (dim, n DESC, key);
CREATE INDEX IF NOT EXISTS group_totals_last_idx ON {{schema}}.group_totals (dim, last DESC, key);

-- 0005's insert trigger, and the totals: one upsert per group, in key
-- order (after the counters, which are locked in the same order).
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
    INSERT INTO {{schema}}.group_totals AS g (dim, key, n, last)
    SELECT d.dim, d.key, count(*), max(r.failed_at)
    FROM new_rows r CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (dim, key) DO UPDATE SET n = g.n + excluded.n, last = greatest(g.last, excluded.last);
    RETURN NULL;
END $$;

-- 0005's delete trigger, and the totals: the counts go down in key order;
-- a group whose newest letter went reads its new newest from its
-- (key, failed_at) index; a group without letters goes. Only the rows the
-- first upsert locked are touched again, so no new lock is taken out of
-- order. (The UPDATE trigger leaves the totals alone: the store changes a
-- letter's status, claim, reason and replay columns, never its group or
-- failure time.)
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
    INSERT INTO {{schema}}.group_totals AS g (dim, key, n, last)
    SELECT d.dim, d.key, -count(*), max(r.failed_at)
    FROM old_rows r CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (dim, key) DO UPDATE SET n = g.n + excluded.n;
    DELETE FROM {{schema}}.group_totals g
    USING (SELECT DISTINCT d.dim, d.key FROM old_rows r
           CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)) o
    WHERE g.dim = o.dim AND g.key = o.key AND g.n <= 0;
    UPDATE {{schema}}.group_totals g SET last = CASE g.dim
        WHEN 'f' THEN (SELECT max(x.failed_at) FROM {{schema}}.dead_letters x WHERE x.fingerprint = (g.key COLLATE "default"))
        WHEN 't' THEN (SELECT max(x.failed_at) FROM {{schema}}.dead_letters x WHERE x.original_topic = (g.key COLLATE "default"))
        ELSE (SELECT max(x.failed_at) FROM {{schema}}.dead_letters x WHERE x.handler = (g.key COLLATE "default")) END
    FROM (SELECT d.dim, d.key, max(r.failed_at) AS cut FROM old_rows r
          CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)
          GROUP BY 1, 2) o
    WHERE g.dim = o.dim AND g.key = o.key AND o.cut >= g.last;
    RETURN NULL;
END $$;

-- the letters stored before this migration (the triggers lock the table
-- with the migration's transaction, so none is counted twice or missed)
INSERT INTO {{schema}}.group_totals (dim, key, n, last)
SELECT d.dim, d.key, count(*), max(r.failed_at)
FROM {{schema}}.dead_letters r CROSS JOIN LATERAL (VALUES ('f', r.fingerprint), ('t', r.original_topic), ('h', r.handler)) d(dim, key)
GROUP BY 1, 2
ON CONFLICT (dim, key) DO UPDATE SET n = excluded.n, last = excluded.last;
