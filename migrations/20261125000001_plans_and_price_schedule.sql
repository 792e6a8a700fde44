-- Plans and the price schedule (barème), seeded with PRODUCT.md's figures. These are data that
-- NanoClip staff edit; code never hard-codes a price, a cap or an allotment.

CREATE TABLE plans (
    id                  text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]*$'), -- the simulator's `plan` value
    name                text NOT NULL,
    price_cents         bigint NOT NULL CHECK (price_cents >= 0),          -- TTC, per month
    credits_per_period  bigint NOT NULL CHECK (credits_per_period >= 0),
    rollover_cap        bigint NOT NULL CHECK (rollover_cap >= 0),
    features            text[] NOT NULL,                                   -- shown as a list, in order
    allows_4k           boolean NOT NULL,
    allows_api          boolean NOT NULL,
    daily_generations   integer NOT NULL CHECK (daily_generations > 0),    -- fair use
    monthly_credits     bigint NOT NULL CHECK (monthly_credits > 0),
    concurrent_renders  integer NOT NULL CHECK (concurrent_renders > 0),
    position            integer NOT NULL UNIQUE
);

INSERT INTO plans VALUES
    ('eglise', 'Plan Église', 2900, 30, 10,
     ARRAY['Vidéos et visuels HD', 'Voix premium', 'Modèles liturgiques'],
     false, false, 15, 90, 1, 1),
    ('reseau', 'Plan Réseau', 9900, 150, 50,
     ARRAY['Tout le Plan Église', '4K', 'API', 'Branding personnalisé', 'Support prioritaire'],
     true, true, 60, 450, 4, 2);

-- What each creation type accepts: durations in seconds (video, music), pages (mini-book).
CREATE TABLE creation_types (
    id        text PRIMARY KEY CHECK (id IN ('video', 'image', 'musique', 'mini-livre')),
    name      text NOT NULL,
    min_value integer CHECK (min_value > 0),
    max_value integer CHECK (max_value >= min_value),
    position  integer NOT NULL UNIQUE
);

INSERT INTO creation_types VALUES
    ('video', 'Vidéo', 5, 15, 1),
    ('image', 'Image', NULL, NULL, 2),
    ('musique', 'Musique', 30, 90, 3),
    ('mini-livre', 'Mini-livre', 4, 20, 4);

-- A version of the schedule; the one in force is the latest whose date has come, so staff can
-- publish a new one ahead of time.
CREATE TABLE price_schedules (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    effective_from timestamptz NOT NULL UNIQUE,
    note           text NOT NULL DEFAULT ''
);

-- The rules of a version. `plan_id` NULL applies to every plan; a row for a plan overrides the
-- general row of the same (creation_type, kind, up_to, variant).
--   tier         : `credits` for a duration up to `up_to` seconds (NULL: any, e.g. images)
--   surcharge_4k : `credits` added per render in 4K (only on plans that allow 4K)
--   per_page     : `percent` of a credit per page for illustrations `variant`, rounded up per batch
CREATE TABLE price_rules (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule_id   bigint NOT NULL REFERENCES price_schedules ON DELETE CASCADE,
    plan_id       text REFERENCES plans,
    creation_type text NOT NULL REFERENCES creation_types,
    kind          text NOT NULL CHECK (kind IN ('tier', 'surcharge_4k', 'per_page')),
    up_to         integer CHECK (up_to > 0),
    variant       text CHECK (variant IN ('simples', 'riches')),
    credits       integer CHECK (credits >= 0),
    percent       integer CHECK (percent > 0),
    CHECK ((kind = 'per_page') = (percent IS NOT NULL AND variant IS NOT NULL AND credits IS NULL)),
    CHECK (kind = 'per_page' OR credits IS NOT NULL)
);

CREATE UNIQUE INDEX price_rules_one_per_key
    ON price_rules (schedule_id, coalesce(plan_id, ''), creation_type, kind, coalesce(up_to, 0), coalesce(variant, ''));

WITH v AS (
    INSERT INTO price_schedules (effective_from, note)
    VALUES ('2026-01-01T00:00:00Z', 'Barème initial')
    RETURNING id
)
INSERT INTO price_rules (schedule_id, plan_id, creation_type, kind, up_to, variant, credits, percent)
SELECT v.id, r.plan_id, r.creation_type, r.kind, r.up_to, r.variant, r.credits, r.percent
FROM v, (VALUES
    (NULL::text, 'video', 'tier', 5, NULL::text, 2, NULL::integer),
    (NULL, 'video', 'tier', 10, NULL, 3, NULL),
    (NULL, 'video', 'tier', 15, NULL, 4, NULL),
    (NULL, 'video', 'surcharge_4k', NULL, NULL, 2, NULL),
    (NULL, 'image', 'tier', NULL, NULL, 1, NULL),
    (NULL, 'image', 'surcharge_4k', NULL, NULL, 1, NULL),
    (NULL, 'musique', 'tier', 30, NULL, 1, NULL),
    (NULL, 'musique', 'tier', 60, NULL, 2, NULL),
    (NULL, 'musique', 'tier', 90, NULL, 3, NULL),
    (NULL, 'mini-livre', 'per_page', NULL, 'simples', NULL, 50),
    (NULL, 'mini-livre', 'per_page', NULL, 'riches', NULL, 100),
    ('reseau', 'mini-livre', 'per_page', NULL, 'riches', NULL, 80)
) AS r(plan_id, creation_type, kind, up_to, variant, credits, percent);

-- One-off packs (PRODUCT.md); `restricted_to` limits the credits to one creation type.
CREATE TABLE packs (
    id            text PRIMARY KEY CHECK (id ~ '^[a-z0-9-]+$'),
    name          text NOT NULL,
    credits       bigint NOT NULL CHECK (credits > 0),
    price_cents   bigint NOT NULL CHECK (price_cents > 0),
    restricted_to text REFERENCES creation_types,
    active        boolean NOT NULL DEFAULT true,
    position      integer NOT NULL UNIQUE
);

INSERT INTO packs VALUES
    ('pack-10', 'Pack 10 crédits', 10, 1200, NULL, true, 1),
    ('pack-30', 'Pack 30 crédits', 30, 3300, NULL, true, 2),
    ('pack-100', 'Pack 100 crédits', 100, 9900, NULL, true, 3),
    ('musique-unite', 'Musique à l’unité', 3, 400, 'musique', true, 4),
    ('mini-livre-unite', 'Mini-livre à l’unité', 10, 1100, 'mini-livre', true, 5);
