-- Generations, the Plan Réseau API (keys, idempotency) and temporary raises of the fair-use
-- limits.

-- An organisation suspended by staff refuses every launch (billing suspends unpaid ones).
ALTER TABLE organisations ADD COLUMN suspended_at timestamptz;

-- A launch, from the portal or the API: running while its hold is held, then succeeded (hold
-- captured), failed or expired (hold released). A refused launch is kept too, with its rule,
-- and holds nothing.
CREATE TABLE generations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    hold_id         uuid UNIQUE REFERENCES credit_holds,
    creation_type   text NOT NULL REFERENCES creation_types,
    -- The request as the simulator's canonical query string (`type=video&duree=10…`).
    request         text NOT NULL,
    prompt          text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'expired', 'refused')),
    refusal_rule    text,
    -- The refusal with its figures (what the page explains), as the portal serialised it.
    refusal         jsonb,
    credits_held    bigint NOT NULL DEFAULT 0 CHECK (credits_held >= 0),
    credits_charged bigint NOT NULL DEFAULT 0 CHECK (credits_charged >= 0),
    via             text NOT NULL CHECK (via IN ('portal', 'api')),
    launched_by     text NOT NULL,   -- `user:…` or `api-key:…`
    created_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    CHECK ((status = 'refused') = (refusal_rule IS NOT NULL)),
    CHECK ((status = 'refused') = (hold_id IS NULL)),
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX generations_by_organisation ON generations (organisation_id, created_at DESC);
CREATE INDEX generations_running ON generations (created_at) WHERE status = 'running';

-- API keys: the secret is shown once; only its SHA-256 is kept, with a short prefix to name it.
CREATE TABLE api_keys (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    hint            text NOT NULL,   -- the key's first characters, to recognise it in a list
    secret_hash     text NOT NULL UNIQUE,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL,
    last_used_at    timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX api_keys_by_organisation ON api_keys (organisation_id, created_at);

-- The answers of `POST /api/v1/generations` by Idempotency-Key: claimed (no status yet) while
-- the first request runs, then its answer. Kept at least 24 hours.
CREATE TABLE idempotency_keys (
    organisation_id uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    key             text NOT NULL,
    fingerprint     text NOT NULL,
    status          integer,
    body            text,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (organisation_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

-- A temporary raise of the fair-use limits for an event: its caps replace the plan's from the
-- first day to the last (Europe/Paris, inclusive). A new raise replaces the one in force.
CREATE TABLE limit_raises (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    daily           integer NOT NULL CHECK (daily > 0),
    monthly         bigint NOT NULL CHECK (monthly > 0),
    concurrent      integer NOT NULL CHECK (concurrent > 0),
    first_day       date NOT NULL,
    last_day        date NOT NULL CHECK (last_day >= first_day),
    reason          text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    actor           text NOT NULL,
    created_at      timestamptz NOT NULL,
    replaced_at     timestamptz
);
CREATE INDEX limit_raises_in_force ON limit_raises (organisation_id, last_day) WHERE replaced_at IS NULL;
