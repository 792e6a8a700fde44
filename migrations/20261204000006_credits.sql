-- Credits: buckets, an append-only ledger, holds, plan periods and the alerts they raise.
--
-- The ledger is the only writer of balances. Inserting a ledger row moves the credits (its
-- trigger updates the organisation's account, then the bucket), so that:
--   * a bucket's `remaining` stays between 0 and its `amount` (CHECK): a hold or a negative
--     adjustment on credits that do not exist fails;
--   * an account's `available` is the sum of its ledger's `delta`s and never goes below 0 (CHECK);
--   * `held` is what unresolved holds keep aside;
--   * ledger rows are never updated or deleted (trigger), and balances change only through it
--     (trigger: `remaining`, `available` and `held` are written by the ledger's trigger alone).
-- `nanoclip check-ledger` recomputes every balance from the ledger and compares.
--
-- Writers of one organisation are serialised by its `credit_accounts` row: a hold takes it
-- FOR UPDATE before reading the buckets; the ledger trigger updates the account row before the
-- bucket row, so every transaction locks in the same order (account, then buckets).

-- Days, months and periods are those of Europe/Paris: period `n` of a subscription anchored on
-- `anchor` ends at midnight (Paris) of the anchor date plus `n` months (31 January + 1 month is
-- 28 February; anchor + 2 months is 31 March again).
CREATE FUNCTION paris_period_bound(anchor date, n integer) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN ((anchor + make_interval(months => n))::timestamp AT TIME ZONE 'Europe/Paris');

-- One row per organisation: the lock that serialises its credit movements, and running totals.
CREATE TABLE credit_accounts (
    organisation_id   uuid PRIMARY KEY REFERENCES organisations ON DELETE CASCADE,
    available         bigint NOT NULL DEFAULT 0 CHECK (available >= 0),
    held              bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
    -- Set when the available balance crossed below the organisation's threshold; cleared when it
    -- goes back to it or above. One alert per crossing.
    low_balance_since timestamptz
);

CREATE TABLE credit_buckets (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id uuid NOT NULL REFERENCES credit_accounts ON DELETE CASCADE,
    source          text NOT NULL CHECK (source IN ('allotment', 'rollover', 'purchase', 'adjustment')),
    restricted_to   text REFERENCES creation_types,
    amount          bigint NOT NULL CHECK (amount > 0),
    remaining       bigint NOT NULL DEFAULT 0,
    expires_at      timestamptz NOT NULL,
    -- What granted it, unique per organisation: `period:3`, `rollover:3`, `order:…`,
    -- `adjustment:…`. Granting the same key twice gives the first bucket.
    grant_key       text NOT NULL,
    created_at      timestamptz NOT NULL,
    CONSTRAINT remaining_within_amount CHECK (remaining BETWEEN 0 AND amount),
    UNIQUE (organisation_id, grant_key)
);
-- The buckets a hold may draw from (the consumption order is applied on these few rows).
CREATE INDEX credit_buckets_with_credits ON credit_buckets (organisation_id, expires_at) WHERE remaining > 0;

-- A hold sets credits aside for one generation until it is captured (success) or released
-- (failure, or no outcome within its timeout). It is resolved exactly once: `state` leaves
-- `held` once, by an UPDATE … WHERE state = 'held'.
CREATE TABLE credit_holds (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id uuid NOT NULL REFERENCES credit_accounts ON DELETE CASCADE,
    amount          bigint NOT NULL CHECK (amount > 0),
    creation_type   text NOT NULL REFERENCES creation_types,
    -- The caller's idempotency key: the same key twice gives the first hold.
    operation_key   text NOT NULL CHECK (length(operation_key) BETWEEN 1 AND 255),
    reference       text NOT NULL,
    actor           text NOT NULL,
    state           text NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'captured', 'released')),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL CHECK (expires_at > created_at),
    resolved_at     timestamptz,
    resolved_by     text,
    CHECK ((state = 'held') = (resolved_at IS NULL)),
    UNIQUE (organisation_id, operation_key)
);
CREATE INDEX credit_holds_unresolved ON credit_holds (expires_at) WHERE state = 'held';
CREATE INDEX credit_holds_by_organisation ON credit_holds (organisation_id, created_at);

-- Staff adjustments (back office and `nanoclip credits adjust`), idempotent by key.
CREATE TABLE credit_adjustments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id uuid NOT NULL REFERENCES credit_accounts ON DELETE CASCADE,
    operation_key   text NOT NULL,
    credits         bigint NOT NULL CHECK (credits <> 0),
    reason          text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    actor           text NOT NULL,
    expires_at      timestamptz,
    available_after bigint NOT NULL,
    created_at      timestamptz NOT NULL,
    UNIQUE (organisation_id, operation_key)
);

CREATE TABLE credit_ledger (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id uuid NOT NULL REFERENCES credit_accounts,
    bucket_id       bigint NOT NULL REFERENCES credit_buckets,
    kind            text NOT NULL CHECK (kind IN ('grant', 'hold', 'capture', 'release', 'expiry', 'adjustment', 'refund')),
    -- The change to the available balance (a capture changes only what is held: 0).
    delta           bigint NOT NULL,
    -- The credits concerned (positive): for a capture, those taken from the hold.
    amount          bigint NOT NULL CHECK (amount > 0),
    hold_id         uuid REFERENCES credit_holds,
    actor           text NOT NULL,   -- `system`, `cli`, `user:…`, `staff:…`, `engine`, `migration`
    reason          text NOT NULL,   -- a word of the vocabulary below, or staff's text
    reference       text NOT NULL,   -- `period:3`, `order:…`, `generation:…`, `adjustment:…`
    created_at      timestamptz NOT NULL,
    CHECK (CASE kind
        WHEN 'grant' THEN delta = amount
        WHEN 'release' THEN delta = amount
        WHEN 'hold' THEN delta = -amount
        WHEN 'expiry' THEN delta = -amount
        WHEN 'refund' THEN delta = -amount
        WHEN 'capture' THEN delta = 0
        ELSE abs(delta) = amount END),
    CHECK ((kind IN ('hold', 'capture', 'release')) = (hold_id IS NOT NULL))
);
-- The history, newest first: the ledger's order of insertion.
CREATE INDEX credit_ledger_history ON credit_ledger (organisation_id, id DESC);
-- Credits used per day (the dashboard's chart): captures only.
CREATE INDEX credit_ledger_captures_by_day ON credit_ledger (organisation_id, created_at) WHERE kind = 'capture';
CREATE INDEX credit_ledger_by_hold ON credit_ledger (hold_id) WHERE hold_id IS NOT NULL;

-- Moves the credits of a new ledger row: the account first, then the bucket (lock order).
CREATE FUNCTION credit_ledger_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE credit_accounts
       SET available = available + NEW.delta,
           held = held + CASE NEW.kind WHEN 'hold' THEN NEW.amount
                                       WHEN 'capture' THEN -NEW.amount
                                       WHEN 'release' THEN -NEW.amount
                                       ELSE 0 END
     WHERE organisation_id = NEW.organisation_id;
    IF NEW.delta <> 0 THEN
        UPDATE credit_buckets SET remaining = remaining + NEW.delta
         WHERE id = NEW.bucket_id AND organisation_id = NEW.organisation_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'bucket % is not one of organisation %', NEW.bucket_id, NEW.organisation_id;
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER credit_ledger_apply AFTER INSERT ON credit_ledger
    FOR EACH ROW EXECUTE FUNCTION credit_ledger_apply();

CREATE FUNCTION credit_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the credit ledger is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER credit_ledger_no_update BEFORE UPDATE OR DELETE ON credit_ledger
    FOR EACH ROW EXECUTE FUNCTION credit_ledger_append_only();
CREATE TRIGGER credit_ledger_no_truncate BEFORE TRUNCATE ON credit_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION credit_ledger_append_only();

-- Balances change only through the ledger's trigger (nested: pg_trigger_depth() > 1 there).
CREATE FUNCTION credit_bucket_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 AND NEW.remaining IS DISTINCT FROM OLD.remaining THEN
        RAISE EXCEPTION 'balances change only through the credit ledger'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER credit_buckets_guard BEFORE UPDATE ON credit_buckets
    FOR EACH ROW EXECUTE FUNCTION credit_bucket_guard();
CREATE FUNCTION credit_account_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 AND (NEW.available, NEW.held) IS DISTINCT FROM (OLD.available, OLD.held) THEN
        RAISE EXCEPTION 'balances change only through the credit ledger'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER credit_accounts_guard BEFORE UPDATE ON credit_accounts
    FOR EACH ROW EXECUTE FUNCTION credit_account_guard();

-- A new bucket starts empty; its grant row fills it. Inserting a filled one is refused.
CREATE FUNCTION credit_bucket_starts_empty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.remaining <> 0 THEN
        RAISE EXCEPTION 'a bucket is filled by its grant in the ledger';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER credit_buckets_start_empty BEFORE INSERT ON credit_buckets
    FOR EACH ROW EXECUTE FUNCTION credit_bucket_starts_empty();
CREATE FUNCTION credit_account_starts_empty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.available <> 0 OR NEW.held <> 0 THEN
        RAISE EXCEPTION 'an account is filled by the ledger';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER credit_accounts_start_empty BEFORE INSERT ON credit_accounts
    FOR EACH ROW EXECUTE FUNCTION credit_account_starts_empty();

-- Alerts to send (low balance), written when the transaction that caused them commits and sent
-- by the `send-credit-alerts` job through the outbox (templates hold their words).
CREATE TABLE credit_alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id uuid NOT NULL REFERENCES credit_accounts ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('low_balance', 'expiry_14', 'expiry_3')),
    available       bigint NOT NULL,
    -- For expiry notices: the bucket, at most one notice of each kind per bucket.
    bucket_id       bigint REFERENCES credit_buckets,
    credits         bigint,
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    CHECK ((kind = 'low_balance') = (bucket_id IS NULL))
);
CREATE UNIQUE INDEX credit_alerts_one_per_bucket ON credit_alerts (bucket_id, kind) WHERE bucket_id IS NOT NULL;
CREATE INDEX credit_alerts_unsent ON credit_alerts (id) WHERE sent_at IS NULL;

-- At commit, once the balance is final (a renewal expires then grants within one transaction),
-- compare it with the threshold: crossing below raises one alert; going back up re-arms it.
CREATE FUNCTION credit_low_balance_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    crossed record;
BEGIN
    UPDATE credit_accounts a
       SET low_balance_since = CASE WHEN a.available < o.low_balance_threshold
                                    THEN coalesce(a.low_balance_since, NEW.created_at) END
      FROM organisations o
     WHERE a.organisation_id = NEW.organisation_id AND o.id = a.organisation_id
       AND (a.low_balance_since IS NULL) = (a.available < o.low_balance_threshold)
    RETURNING a.available, a.low_balance_since INTO crossed;
    IF FOUND AND crossed.low_balance_since IS NOT NULL THEN
        INSERT INTO credit_alerts (organisation_id, kind, available, created_at)
        VALUES (NEW.organisation_id, 'low_balance', crossed.available, NEW.created_at);
    END IF;
    RETURN NULL;
END $$;
-- A capture changes only what is held (delta 0): it cannot cross the threshold.
CREATE CONSTRAINT TRIGGER credit_low_balance_check AFTER INSERT ON credit_ledger
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.delta <> 0)
    EXECUTE FUNCTION credit_low_balance_check();

-- Plan periods. `subscriptions` keeps the current one (period_start, period_end) and gains its
-- anchor and number; each period is a row, closed once by its renewal.
ALTER TABLE subscriptions
    ADD COLUMN anchor_date date,
    ADD COLUMN period_number integer NOT NULL DEFAULT 1 CHECK (period_number >= 1);
UPDATE subscriptions SET anchor_date = (period_start AT TIME ZONE 'Europe/Paris')::date;
UPDATE subscriptions
   SET period_start = paris_period_bound(anchor_date, 0),
       period_end = paris_period_bound(anchor_date, 1);
ALTER TABLE subscriptions ALTER COLUMN anchor_date SET NOT NULL;
CREATE INDEX subscriptions_due ON subscriptions (period_end);

CREATE TABLE subscription_periods (
    organisation_id uuid NOT NULL REFERENCES subscriptions ON DELETE CASCADE,
    number          integer NOT NULL CHECK (number >= 1),
    plan_id         text NOT NULL REFERENCES plans,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL CHECK (ends_at > starts_at),
    -- Set by the renewal that closed it: what expired, what carried over.
    renewed_at      timestamptz,
    expired         bigint,
    carried         bigint,
    PRIMARY KEY (organisation_id, number)
);

-- Existing organisations get their account, their first period and its allotment.
INSERT INTO credit_accounts (organisation_id) SELECT id FROM organisations;
INSERT INTO subscription_periods (organisation_id, number, plan_id, starts_at, ends_at)
SELECT organisation_id, 1, plan_id, period_start, period_end FROM subscriptions;
WITH b AS (
    INSERT INTO credit_buckets (organisation_id, source, amount, expires_at, grant_key, created_at)
    SELECT s.organisation_id, 'allotment', p.credits_per_period, s.period_end, 'period:1', now()
      FROM subscriptions s JOIN plans p ON p.id = s.plan_id
     WHERE p.credits_per_period > 0
    RETURNING id, organisation_id, amount
)
INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, actor, reason, reference, created_at)
SELECT organisation_id, id, 'grant', amount, amount, 'migration', 'allotment', 'period:1', now() FROM b;

-- Every organisation has its account from its first moment.
CREATE FUNCTION credit_account_for_organisation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO credit_accounts (organisation_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER organisations_credit_account AFTER INSERT ON organisations
    FOR EACH ROW EXECUTE FUNCTION credit_account_for_organisation();
