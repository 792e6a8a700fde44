-- Help-centre quality for staff: searches that found nothing, counted per week, and the
-- synonyms staff add to the search lexicon (`content/synonymes.toml` stays the seed).

-- A missed search is now counted per (week, query), the week starting on Monday (Europe/Paris);
-- the rows so far go to the week of their last search. Only the query (folded) is kept: no
-- address, session or account. `id` names a row for the back office's one-click synonym.
ALTER TABLE search_misses ADD COLUMN week date;
UPDATE search_misses SET week = date_trunc('week', last_at AT TIME ZONE 'Europe/Paris')::date;
ALTER TABLE search_misses ALTER COLUMN week SET NOT NULL;
ALTER TABLE search_misses DROP CONSTRAINT search_misses_pkey;
ALTER TABLE search_misses ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
ALTER TABLE search_misses ADD CONSTRAINT search_misses_week_query UNIQUE (week, query);

-- A query staff turned into a synonym of a word: the search treats it as one more word of that
-- word's lexicon group (or of a new group with the word). Every instance polls
-- `count(*), max(id)` and rebuilds its index when they change.
CREATE TABLE search_synonyms (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    query      text NOT NULL UNIQUE CHECK (length(query) BETWEEN 1 AND 200),
    word       text NOT NULL CHECK (length(word) BETWEEN 1 AND 80),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL
);

-- Guide feedback by week.
CREATE INDEX guide_feedback_by_date ON guide_feedback (created_at);

-- The outbox's failures, for the back office.
CREATE INDEX outbox_failed ON outbox (id) WHERE sent_at IS NULL AND last_error IS NOT NULL;
