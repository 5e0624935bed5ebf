-- 0003: what dlq.BoundRecord cut from a letter's metadata ('' when kept whole).
ALTER TABLE {{schema}}.dead_letters ADD COLUMN IF NOT EXISTS truncated text NOT NULL DEFAULT '';
