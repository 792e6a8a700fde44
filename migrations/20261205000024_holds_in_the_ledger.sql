-- Holds in the ledger (bench/README.md, « The port: holds as ledger rows »).
--
-- A hold is its ledger rows (kind `hold`, one per bucket drawn), no longer a row of a table of
-- its own that every capture updated; and no movement writes running totals on the account row
-- any more. What a hold writes while its organisation's row is locked comes down to one bucket
-- (in the usual case), its ledger row and a narrow row of the open holds; a capture writes its
-- ledger rows and deletes that open row. Same rules as before:
--   * the first hold row carries the caller's key (unique per organisation), the creation type
--     and the timeout; every row of a hold carries its `hold_id`;
--   * a hold is resolved exactly once: its open row is deleted once (the resolver that deletes
--     it writes the capture or release rows), and a unique index refuses a second resolution
--     of any of its rows;
--   * a bucket's `remaining` stays between 0 and its `amount` (CHECK), so a hold never takes
--     credits that do not exist; a hold is of 1 credit or more (its function refuses others);
--   * the balance is the sum of the buckets, each the sum of its ledger rows: `check-ledger`
--     recomputes both; the ledger stays append-only (trigger);
--   * every writer of an organisation's credits still takes its account row first (FOR UPDATE),
--     then the buckets: holds in their SQL function, the other movements in the ledger's trigger.

-- 1. The hold's own facts move onto its ledger rows.
ALTER TABLE credit_ledger
    ADD COLUMN operation_key text,
    ADD COLUMN creation_type text,
    ADD COLUMN expires_at    timestamptz;

ALTER TABLE credit_ledger DISABLE TRIGGER credit_ledger_no_update;
UPDATE credit_ledger l
   SET creation_type = h.creation_type,
       expires_at = h.expires_at,
       operation_key = CASE WHEN l.id = (SELECT min(x.id) FROM credit_ledger x
                                          WHERE x.hold_id = h.id AND x.kind = 'hold')
                            THEN h.operation_key END
  FROM credit_holds h
 WHERE l.hold_id = h.id AND l.kind = 'hold';
ALTER TABLE credit_ledger ENABLE TRIGGER credit_ledger_no_update;

-- 2. The holds not resolved yet: what the timeout job, the running renders and the credits
--    held read. A row per hold, deleted by its capture or release.
CREATE TABLE credit_holds_open (
    hold_id         uuid PRIMARY KEY,
    organisation_id uuid NOT NULL,
    amount          bigint NOT NULL,
    expires_at      timestamptz NOT NULL
);
INSERT INTO credit_holds_open (hold_id, organisation_id, amount, expires_at)
SELECT id, organisation_id, amount, expires_at FROM credit_holds WHERE state = 'held';
CREATE INDEX credit_holds_open_due ON credit_holds_open (expires_at);
CREATE INDEX credit_holds_open_by_organisation ON credit_holds_open (organisation_id) INCLUDE (amount);

-- 3. The ledger's indexes for holds: the key (first row of a hold), a hold's rows, a resolution
--    once per hold row (and found by its hold), the launches of a day, and the captures of a
--    month with their credits.
CREATE UNIQUE INDEX credit_ledger_hold_key ON credit_ledger (organisation_id, operation_key)
    WHERE operation_key IS NOT NULL;
CREATE UNIQUE INDEX credit_ledger_resolved_once ON credit_ledger (hold_id, bucket_id)
    WHERE kind IN ('capture', 'release');
CREATE INDEX credit_ledger_launches_by_day ON credit_ledger (organisation_id, created_at)
    WHERE operation_key IS NOT NULL;
DROP INDEX credit_ledger_by_hold;
CREATE INDEX credit_ledger_by_hold ON credit_ledger (hold_id) WHERE kind = 'hold';
DROP INDEX credit_ledger_captures_by_day;
CREATE INDEX credit_ledger_captures_by_day ON credit_ledger (organisation_id, created_at) INCLUDE (amount)
    WHERE kind = 'capture';

-- 4. No foreign keys and no CHECKs on the ledger: its writers are the functions and queries of
--    `db::credits`, and `check-ledger` verifies each row (its kind, the sign of its delta, its
--    hold). PostgreSQL 15 parses each CHECK again at every statement that writes the table, and
--    checks each foreign key with a query of its own: together a third of a hold's time.
ALTER TABLE generations DROP CONSTRAINT generations_hold_id_fkey;
ALTER TABLE credit_ledger
    DROP CONSTRAINT credit_ledger_hold_id_fkey,
    DROP CONSTRAINT credit_ledger_bucket_id_fkey,
    DROP CONSTRAINT credit_ledger_organisation_id_fkey,
    DROP CONSTRAINT credit_ledger_check,
    DROP CONSTRAINT credit_ledger_check1,
    DROP CONSTRAINT credit_ledger_kind_check,
    DROP CONSTRAINT credit_ledger_amount_check;
DROP FUNCTION credit_hold_place(uuid, bigint, text, text, text, text, text, timestamptz, timestamptz);
DROP FUNCTION credit_usage(uuid, timestamptz, boolean);
DROP TABLE credit_holds;

-- 5. The account row is the organisation's lock and its low-balance flag; its totals are
--    derived (the buckets' sum; the open holds' sum). Without the ledger's foreign key, an
--    account with ledger rows (and so its organisation) could be deleted, leaving its rows and
--    open holds behind: a trigger refuses it, as the foreign key did.
CREATE FUNCTION credit_account_keeps_its_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM credit_ledger WHERE organisation_id = OLD.organisation_id) THEN
        RAISE EXCEPTION 'the credit account of organisation % has a ledger: it is kept', OLD.organisation_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER credit_accounts_keep_their_ledger BEFORE DELETE ON credit_accounts
    FOR EACH ROW EXECUTE FUNCTION credit_account_keeps_its_ledger();
DROP TRIGGER credit_accounts_guard ON credit_accounts;
DROP FUNCTION credit_account_guard();
DROP TRIGGER credit_accounts_start_empty ON credit_accounts;
DROP FUNCTION credit_account_starts_empty();
ALTER TABLE credit_accounts DROP COLUMN available, DROP COLUMN held;

-- A hold writes its bucket itself, in its function, which runs with `nanoclip.ledger` set to
-- `hold` (a SET clause: restored when it returns). The guard still refuses any other change of
-- a bucket's `remaining` outside the ledger's trigger (its test in WHEN costs no call). It is a
-- tripwire against mistakes, not a barrier: any session can set the same variable.
DROP TRIGGER credit_buckets_guard ON credit_buckets;
CREATE TRIGGER credit_buckets_guard BEFORE UPDATE ON credit_buckets
    FOR EACH ROW WHEN (pg_trigger_depth() < 1 AND NEW.remaining IS DISTINCT FROM OLD.remaining
                       AND current_setting('nanoclip.ledger', true) IS DISTINCT FROM 'hold')
    EXECUTE FUNCTION credit_bucket_guard();

-- 6. The ledger's trigger: the other movements (grants, expiries, adjustments, refunds,
--    releases) take the account's lock, then move their bucket. A hold row is applied by the
--    hold's function; a capture moves nothing (delta 0).
CREATE OR REPLACE FUNCTION credit_ledger_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM credit_accounts WHERE organisation_id = NEW.organisation_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'organisation % has no credit account', NEW.organisation_id;
    END IF;
    UPDATE credit_buckets SET remaining = remaining + NEW.delta
     WHERE id = NEW.bucket_id AND organisation_id = NEW.organisation_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'bucket % is not one of organisation %', NEW.bucket_id, NEW.organisation_id;
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER credit_ledger_apply ON credit_ledger;
CREATE TRIGGER credit_ledger_apply AFTER INSERT ON credit_ledger
    FOR EACH ROW WHEN (NEW.delta <> 0 AND NEW.kind <> 'hold')
    EXECUTE FUNCTION credit_ledger_apply();

-- 7. The low-balance flag: one alert per crossing below the organisation's threshold; at it or
--    above, the flag is cleared, so the next crossing alerts again. One rule, called with the
--    account locked and the balance after the movement (the buckets' sum): by the deferred
--    trigger at commit for the other movements, by a hold's function (it holds the lock and
--    knows the balance after it), so the deferred trigger skips holds.
CREATE FUNCTION credit_low_balance_note(p_organisation uuid, p_balance bigint, p_at timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    since timestamptz;
BEGIN
    UPDATE credit_accounts a
       SET low_balance_since = CASE WHEN p_balance < o.low_balance_threshold
                                    THEN coalesce(a.low_balance_since, p_at) END
      FROM organisations o
     WHERE a.organisation_id = p_organisation AND o.id = p_organisation
       AND (a.low_balance_since IS NULL) = (p_balance < o.low_balance_threshold)
    RETURNING a.low_balance_since INTO since;
    IF FOUND AND since IS NOT NULL THEN
        INSERT INTO credit_alerts (organisation_id, kind, available, created_at)
        VALUES (p_organisation, 'low_balance', p_balance, p_at);
    END IF;
END $$;
CREATE OR REPLACE FUNCTION credit_low_balance_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM credit_low_balance_note(
        NEW.organisation_id,
        (SELECT coalesce(sum(b.remaining), 0) FROM credit_buckets b
          WHERE b.organisation_id = NEW.organisation_id)::bigint,
        NEW.created_at);
    RETURN NULL;
END $$;
DROP TRIGGER credit_low_balance_check ON credit_ledger;
CREATE CONSTRAINT TRIGGER credit_low_balance_check AFTER INSERT ON credit_ledger
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.delta <> 0 AND NEW.kind <> 'hold')
    EXECUTE FUNCTION credit_low_balance_check();

-- 8. A hold in one call. Under the account's lock: the hold placed with this key, if any; then
--    the first bucket in the consumption order (restricted to the type first, then earliest
--    expiry, then oldest) if it has enough, by one conditional UPDATE; else the buckets in
--    that order, one after the other. Then the ledger rows, the open row, and the low-balance
--    flag (one alert per crossing). The buckets are read after the lock by statements of their
--    own (READ COMMITTED: a snapshot per statement), so with the latest committed balances.
--
-- `outcome`: `unknown` (no such account), `existing` (`hold_id`: the hold placed with this
-- key), `placed` (`hold_id`; `available`: the credits left usable at `p_now`, every type),
-- `short` (nothing written; `available`: the credits usable by this type).
CREATE FUNCTION credit_hold_place(
    p_organisation uuid, p_amount bigint, p_type text, p_key text, p_reference text,
    p_actor text, p_reason text, p_now timestamptz, p_expires_at timestamptz,
    OUT outcome text, OUT hold_id uuid, OUT available bigint)
LANGUAGE plpgsql SET nanoclip.ledger = 'hold' AS $$
DECLARE
    flagged timestamptz;
    threshold bigint;
    first_id bigint;
    first_left bigint;
    b record;
    n bigint;
    wanted bigint;
    usable_total bigint;
    total bigint;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 THEN
        RAISE EXCEPTION 'a hold is of 1 credit or more (asked: %)', p_amount
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT a.low_balance_since, o.low_balance_threshold INTO flagged, threshold
      FROM credit_accounts a JOIN organisations o ON o.id = a.organisation_id
     WHERE a.organisation_id = p_organisation
       FOR UPDATE OF a;
    IF NOT FOUND THEN
        outcome := 'unknown';
        RETURN;
    END IF;
    SELECT l.hold_id INTO hold_id FROM credit_ledger l
     WHERE l.organisation_id = p_organisation AND l.operation_key = p_key;
    IF FOUND THEN
        outcome := 'existing';
        RETURN;
    END IF;
    hold_id := gen_random_uuid();
    -- One reading of the buckets: the first in the consumption order for this type and its
    -- credits, the credits this type can use, those every type can use, and all (unexpired or
    -- not yet expired by the job: the low-balance flag's balance).
    SELECT (array_agg(id ORDER BY restricted_to IS NULL, expires_at, id) FILTER (WHERE usable))[1],
           (array_agg(remaining ORDER BY restricted_to IS NULL, expires_at, id) FILTER (WHERE usable))[1],
           coalesce(sum(remaining) FILTER (WHERE usable), 0)::bigint,
           coalesce(sum(remaining) FILTER (WHERE expires_at > p_now), 0)::bigint,
           coalesce(sum(remaining), 0)::bigint
      INTO first_id, first_left, usable_total, available, total
      FROM (SELECT id, remaining, restricted_to, expires_at,
                   expires_at > p_now AND (restricted_to IS NULL OR restricted_to = p_type) AS usable
              FROM credit_buckets WHERE organisation_id = p_organisation AND remaining > 0) u;
    IF usable_total < p_amount THEN
        outcome := 'short';
        available := usable_total;
        hold_id := NULL;
        RETURN;
    END IF;
    IF first_left >= p_amount THEN
        UPDATE credit_buckets SET remaining = remaining - p_amount WHERE id = first_id;
        INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason,
                                   reference, created_at, operation_key, creation_type, expires_at)
        VALUES (p_organisation, first_id, 'hold', -p_amount, p_amount, hold_id, p_actor, p_reason,
                p_reference, p_now, p_key, p_type, p_expires_at);
    ELSE
        wanted := p_amount;
        FOR b IN SELECT id, remaining FROM credit_buckets
                  WHERE organisation_id = p_organisation AND remaining > 0 AND expires_at > p_now
                    AND (restricted_to IS NULL OR restricted_to = p_type)
                  ORDER BY restricted_to IS NULL, expires_at, id LOOP
            n := least(b.remaining, wanted);
            UPDATE credit_buckets SET remaining = remaining - n WHERE id = b.id;
            -- The key on the first row only (unique per organisation).
            INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason,
                                       reference, created_at, operation_key, creation_type, expires_at)
            VALUES (p_organisation, b.id, 'hold', -n, n, hold_id, p_actor, p_reason,
                    p_reference, p_now, CASE WHEN wanted = p_amount THEN p_key END, p_type, p_expires_at);
            wanted := wanted - n;
            EXIT WHEN wanted = 0;
        END LOOP;
    END IF;
    INSERT INTO credit_holds_open (hold_id, organisation_id, amount, expires_at)
    VALUES (hold_id, p_organisation, p_amount, p_expires_at);
    available := available - p_amount;
    total := total - p_amount;
    -- The low-balance rule (section 7), called only when the flag is to change (it was read
    -- under the lock above): most holds leave it as it is.
    IF (flagged IS NULL) = (total < threshold) THEN
        PERFORM credit_low_balance_note(p_organisation, total, p_now);
    END IF;
    outcome := 'placed';
END $$;

-- 9. The use of the fair-use limits at `p_now` (Europe/Paris days and months), after the
--    account's lock when `p_lock` (a launch; the use is read by a statement of its own after
--    the lock, so with what the launches it waited for committed): generations launched today
--    that are running or succeeded (their holds not released), credits held by running ones plus
--    those captured this month, and the running ones.
CREATE FUNCTION credit_usage(
    p_organisation uuid, p_now timestamptz, p_lock boolean,
    OUT has_account boolean, OUT today bigint, OUT month bigint, OUT running bigint)
LANGUAGE plpgsql AS $$
BEGIN
    IF p_lock THEN
        PERFORM 1 FROM credit_accounts WHERE organisation_id = p_organisation FOR UPDATE;
        has_account := FOUND;
        IF NOT has_account THEN
            RETURN;
        END IF;
    ELSE
        has_account := true;
    END IF;
    WITH bounds AS (
           SELECT (date_trunc('day', p_now AT TIME ZONE 'Europe/Paris') AT TIME ZONE 'Europe/Paris') AS day_start,
                  (date_trunc('month', p_now AT TIME ZONE 'Europe/Paris') AT TIME ZONE 'Europe/Paris') AS month_start)
    -- The release of each of today's holds is looked up by its hold (an index probe each: the
    -- test is in a FILTER, so a subplan, never an anti-join that a plan made without statistics
    -- could run over the whole ledger).
    SELECT (SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM credit_ledger r
                                                       WHERE r.hold_id = h.hold_id AND r.kind = 'release'))
              FROM credit_ledger h
             WHERE h.organisation_id = p_organisation AND h.operation_key IS NOT NULL
               AND h.created_at >= b.day_start),
           ((SELECT coalesce(sum(o.amount), 0) FROM credit_holds_open o WHERE o.organisation_id = p_organisation)
          + (SELECT coalesce(sum(c.amount), 0) FROM credit_ledger c
              WHERE c.organisation_id = p_organisation AND c.kind = 'capture' AND c.created_at >= b.month_start))::bigint,
           (SELECT count(*) FROM credit_holds_open o WHERE o.organisation_id = p_organisation)
      INTO today, month, running
      FROM bounds b;
END $$;
