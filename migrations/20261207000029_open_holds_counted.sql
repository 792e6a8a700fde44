-- The running generations and their held credits read in constant time (bench/README.md,
-- « Open holds counted »).
--
-- `credit_usage` counted an organisation's open holds (`credit_holds_open`: its running renders,
-- and the credits they hold for the month's usage) under the account's lock, on every launch.
-- Each hold inserts a row there and its resolution deletes it, so the organisation's index
-- entries point at every row it opened since the table was last vacuumed, dead or alive, and
-- the launch visited them all: under the API benchmark about 90 heap pages a launch, growing by
-- the second (0.6 ms of the database's 3.1 ms per launch and report). Two counters now keep
-- those figures, written in the transaction of the row they count:
--   * on `credit_accounts`, the holds opened and their credits (`holds_opened`,
--     `credits_opened`). Only `credit_hold_place` opens a hold, under the account's lock: a
--     launch reads an exact count under that lock.
--   * in `credit_holds_closed`, per organisation, the holds resolved and their credits. A
--     capture does not take the account's lock (it would wait for the organisation's launches),
--     and concurrent resolutions of an organisation wait for each other on its row until they
--     commit. A launch reads the closures committed when it took the lock: one committed later
--     only makes the count higher than the truth for a moment, never lower (a cap never lets
--     one more through).
-- Running renders: opened minus closed; held credits: the same for the credits. `check-ledger`
-- recomputes both from the open holds. Same answers as before, same signatures.

-- No open hold is written while the counters are filled (an instance still running would
-- otherwise open or close holds that neither the filling nor the counting below sees). SHARE ROW
-- EXCLUSIVE from the start: the mode CREATE TRIGGER takes, so the lock is never upgraded.
LOCK TABLE credit_holds_open IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE credit_accounts
    ADD COLUMN holds_opened bigint NOT NULL DEFAULT 0,
    ADD COLUMN credits_opened bigint NOT NULL DEFAULT 0;
CREATE TABLE credit_holds_closed (
    organisation_id uuid PRIMARY KEY,
    holds           bigint NOT NULL,
    credits         bigint NOT NULL
);

-- 1. From the open holds as they stand: every one opened, none closed.
UPDATE credit_accounts a
   SET holds_opened = o.holds, credits_opened = o.credits
  FROM (SELECT organisation_id, count(*) AS holds, sum(amount) AS credits
          FROM credit_holds_open GROUP BY organisation_id) o
 WHERE o.organisation_id = a.organisation_id;

-- 2. Kept by the one function that opens a hold and the one that closes it, in the statements
--    they already run (a trigger of `credit_holds_open` firing for them cost holds and captures
--    6 to 8 % in `bench/credits ledger`): the hold's lock of the account becomes the update of
--    its counters (taken back when no hold is placed), and the resolution's deletion of the
--    open row counts it closed. Both run with `nanoclip.holds_counted = 'on'`; any other
--    writer of an open row (an operator's SQL) is counted by a trigger that the setting skips. An update counts as a closing of the old row
--    and an opening of the new one (nothing updates an open hold today). TRUNCATE is refused:
--    it would empty the table behind the counters' back.
CREATE FUNCTION credit_holds_open_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO credit_holds_closed AS c (organisation_id, holds, credits)
        VALUES (OLD.organisation_id, 1, OLD.amount)
        ON CONFLICT (organisation_id) DO UPDATE SET holds = c.holds + 1, credits = c.credits + EXCLUDED.credits;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE credit_accounts
           SET holds_opened = holds_opened + 1, credits_opened = credits_opened + NEW.amount
         WHERE organisation_id = NEW.organisation_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'organisation % has no credit account', NEW.organisation_id;
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER credit_holds_open_count AFTER INSERT OR UPDATE OR DELETE ON credit_holds_open
    FOR EACH ROW WHEN (current_setting('nanoclip.holds_counted', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION credit_holds_open_count();
CREATE FUNCTION credit_holds_open_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'open holds are resolved through the ledger, not truncated';
END $$;
CREATE TRIGGER credit_holds_open_no_truncate BEFORE TRUNCATE ON credit_holds_open
    FOR EACH STATEMENT EXECUTE FUNCTION credit_holds_open_no_truncate();

-- 2a. As migration `holds_in_the_ledger` placed a hold, the account's lock taken by the update
--     of its counters (the trigger above skips its open row).
CREATE OR REPLACE FUNCTION credit_hold_place(
    p_organisation uuid, p_amount bigint, p_type text, p_key text, p_reference text,
    p_actor text, p_reason text, p_now timestamptz, p_expires_at timestamptz,
    OUT outcome text, OUT hold_id uuid, OUT available bigint)
LANGUAGE plpgsql SET nanoclip.ledger = 'hold' SET nanoclip.holds_counted = 'on' AS $$
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
    -- The account's lock, taken by counting the hold as opened (taken back below when none
    -- is placed, the rare case).
    UPDATE credit_accounts a
       SET holds_opened = a.holds_opened + 1, credits_opened = a.credits_opened + p_amount
      FROM organisations o
     WHERE a.organisation_id = p_organisation AND o.id = a.organisation_id
    RETURNING a.low_balance_since, o.low_balance_threshold INTO flagged, threshold;
    IF NOT FOUND THEN
        outcome := 'unknown';
        RETURN;
    END IF;
    SELECT l.hold_id INTO hold_id FROM credit_ledger l
     WHERE l.organisation_id = p_organisation AND l.operation_key = p_key;
    IF FOUND THEN
        UPDATE credit_accounts
           SET holds_opened = holds_opened - 1, credits_opened = credits_opened - p_amount
         WHERE organisation_id = p_organisation;
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
        UPDATE credit_accounts
           SET holds_opened = holds_opened - 1, credits_opened = credits_opened - p_amount
         WHERE organisation_id = p_organisation;
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

-- 2b. As migration `launch_and_report_in_one_call` resolved a hold, its closing counted (the
--     trigger above skips it).
CREATE OR REPLACE FUNCTION credit_hold_resolve(
    p_hold uuid, p_kind text, p_actor text, p_reason text, p_now timestamptz,
    OUT organisation_id uuid, OUT amount bigint, OUT expired boolean)
RETURNS SETOF record
LANGUAGE plpgsql SET nanoclip.holds_counted = 'on' AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH h AS (
           DELETE FROM credit_holds_open WHERE hold_id = p_hold
           RETURNING hold_id, organisation_id, amount),
       c AS (
           INSERT INTO credit_holds_closed AS c (organisation_id, holds, credits)
           SELECT h.organisation_id, 1, h.amount FROM h
           ON CONFLICT (organisation_id) DO UPDATE SET holds = c.holds + 1, credits = c.credits + EXCLUDED.credits),
       l AS (
           INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at)
           SELECT h.organisation_id, d.bucket_id, p_kind, CASE WHEN p_kind = 'capture' THEN 0 ELSE d.amount END,
                  d.amount, h.hold_id, p_actor, p_reason, d.reference, greatest(p_now, d.created_at)
             FROM h JOIN credit_ledger d ON d.hold_id = p_hold AND d.kind = 'hold'
            ORDER BY d.bucket_id
           RETURNING bucket_id, created_at)
    SELECT h.organisation_id, h.amount,
           EXISTS (SELECT 1 FROM l JOIN credit_buckets b ON b.id = l.bucket_id
                    WHERE p_kind = 'release' AND b.expires_at <= l.created_at)
      FROM h;
END $$;

-- 3. The usage from the counters: as migration `usage_counters` read it, with the running
--    renders and their credits from the two counters instead of the open holds.
CREATE OR REPLACE FUNCTION credit_usage(
    p_organisation uuid, p_now timestamptz, p_lock boolean,
    OUT has_account boolean, OUT today bigint, OUT month bigint, OUT running bigint)
LANGUAGE plpgsql AS $$
DECLARE
    opened bigint;
    opened_credits bigint;
BEGIN
    IF p_lock THEN
        SELECT a.holds_opened, a.credits_opened INTO opened, opened_credits
          FROM credit_accounts a WHERE a.organisation_id = p_organisation FOR UPDATE;
        has_account := FOUND;
        IF NOT has_account THEN
            RETURN;
        END IF;
    ELSE
        SELECT a.holds_opened, a.credits_opened INTO opened, opened_credits
          FROM credit_accounts a WHERE a.organisation_id = p_organisation;
        has_account := true;
    END IF;
    SELECT (SELECT coalesce(sum(u.launches), 0) FROM credit_usage_days u
             WHERE u.organisation_id = p_organisation AND u.day >= (p_now AT TIME ZONE 'Europe/Paris')::date),
           coalesce(opened_credits, 0) - coalesce(c.credits, 0)
         + (SELECT coalesce(sum(d.credits), 0) FROM credit_capture_days d
             WHERE d.organisation_id = p_organisation
               AND d.day >= date_trunc('month', p_now AT TIME ZONE 'Europe/Paris')::date),
           coalesce(opened, 0) - coalesce(c.holds, 0)
      INTO today, month, running
      FROM (SELECT) AS one
      LEFT JOIN credit_holds_closed c ON c.organisation_id = p_organisation;
END $$;
