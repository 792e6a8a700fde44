-- Help centre: guide views (written in batches from memory), feedback on guides, searches that
-- found nothing, contact messages, and a rate-limit counter shared by every portal instance.

CREATE TABLE guide_views (
    slug  text PRIMARY KEY,
    views bigint NOT NULL DEFAULT 0 CHECK (views >= 0)
);

CREATE TABLE guide_feedback (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug       text NOT NULL,
    helpful    boolean NOT NULL,
    comment    text CHECK (length(comment) <= 2000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX guide_feedback_by_slug ON guide_feedback (slug, created_at DESC);

-- Queries without results, for staff to write the missing answers.
CREATE TABLE search_misses (
    query      text PRIMARY KEY CHECK (length(query) <= 200),
    count      bigint NOT NULL DEFAULT 1,
    last_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contact_messages (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    email        text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    organisation text NOT NULL DEFAULT '' CHECK (length(organisation) <= 160),
    subject      text NOT NULL CHECK (subject IN ('question', 'facturation', 'technique', 'evenement')),
    event_start  date,
    event_end    date,
    event_volume text CHECK (length(event_volume) <= 200),
    page         text CHECK (length(page) <= 200),
    message      text NOT NULL CHECK (length(message) BETWEEN 1 AND 5000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (subject <> 'evenement' OR (event_start IS NOT NULL AND event_end IS NOT NULL AND event_end >= event_start))
);

-- Fixed-window counters: one row per (key, window); old windows are purged as they expire.
CREATE TABLE rate_limits (
    key          text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL,
    PRIMARY KEY (key, window_start)
);
