-- 0004: what the console (levee dlq serve) pages and searches at a million
-- letters, and the letters' event logs (dlqops.Browser).

-- newest-first pages of one status (the archive) and of one class
CREATE INDEX IF NOT EXISTS dead_letters_status_idx ON {{schema}}.dead_letters (status, failed_at, id);
CREATE INDEX IF NOT EXISTS dead_letters_class_idx ON {{schema}}.dead_letters (error_class, failed_at, id);

-- what was done to each letter; they go with the letter (retention)
CREATE TABLE IF NOT EXISTS {{schema}}.letter_events (
    seq         bigserial   PRIMARY KEY,
    letter_id   text COLLATE "C" NOT NULL REFERENCES {{schema}}.dead_letters (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    actor       text        NOT NULL DEFAULT '',
    action      text        NOT NULL,
    detail      text        NOT NULL DEFAULT '',
    replay_uuid text        NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS letter_events_letter_idx ON {{schema}}.letter_events (letter_id, seq);

-- error-text search: a trigram index when the server has pg_trgm and the
-- role may create it; without it a search walks the letters newest first.
DO $$
DECLARE ns text;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'levee: pg_trgm unavailable (%), error search without an index', SQLERRM;
    END;
    SELECT n.nspname INTO ns FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    IF ns IS NOT NULL THEN
        EXECUTE format('CREATE INDEX IF NOT EXISTS dead_letters_error_trgm_idx ON {{schema}}.dead_letters USING gin (error %I.gin_trgm_ops)', ns);
    END IF;
END $$;
