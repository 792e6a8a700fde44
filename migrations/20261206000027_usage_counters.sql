-- The fair-use usage read in constant time (bench/README.md, « Usage counters »).
--
-- `credit_usage` counted the day's launches and summed the month's captures from the ledger
-- under the account's lock, on every launch: as many index entries (and fresh heap rows) as the
-- organisation launched that day and captured that month. With an event's raised caps (or the
-- benchmark's) that is hundreds of rows a launch, and it grows through the day. Two counters
-- now keep those figures, written in the same transactions as the ledger rows they count, by
-- the only two writers of holds and their resolutions:
--   * `credit_usage_days`: per organisation and Europe/Paris day, the launches placed that day
--     and not released (since). `credit_hold_place` adds one, under the account's lock;
--     `credit_hold_resolve` takes one off the hold's own day when it releases it, after its
--     ledger row took the account's lock (the ledger's trigger): every writer holds that lock,
--     so a launch reads an exact count under it.
--   * `credit_capture_days`: per organisation and Paris day, the credits captured that day
--     (`credit_hold_resolve`, in the transaction that deletes the open hold: a capture moves a
--     hold's credits from « held » to « captured », and a launch's one statement reads both).
--     Captures do not take the account's lock; concurrent captures of an organisation wait for
--     each other on the day's row, for the length of their statement.
-- `check-ledger` recomputes both from the ledger. Same answers as before, same signature.

CREATE TABLE credit_usage_days (
    organisation_id uuid NOT NULL,
    day             date NOT NULL,
    launches        bigint NOT NULL,
    PRIMARY KEY (organisation_id, day)
);
CREATE TABLE credit_capture_days (
    organisation_id uuid NOT NULL,
    day             date NOT NULL,
    credits         bigint NOT NULL,
    PRIMARY KEY (organisation_id, day)
);

-- 1. From the ledger as it stands (the first row of each hold carries its key).
INSERT INTO credit_usage_days (organisation_id, day, launches)
SELECT h.organisation_id, (h.created_at AT TIME ZONE 'Europe/Paris')::date, count(*)
  FROM credit_ledger h
 WHERE h.operation_key IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM credit_ledger r WHERE r.hold_id = h.hold_id AND r.kind = 'release')
 GROUP BY 1, 2;
INSERT INTO credit_capture_days (organisation_id, day, credits)
SELECT organisation_id, (created_at AT TIME ZONE 'Europe/Paris')::date, sum(amount)
  FROM credit_ledger WHERE kind = 'capture'
 GROUP BY 1, 2;

-- 2. A hold counts its launch (the function of migration `holds_in_the_ledger`, unchanged but
--    for its last statement).
CREATE OR REPLACE FUNCTION credit_hold_place(
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
    -- The day's launches (section 2), under the account's lock like every writer of it.
    INSERT INTO credit_usage_days AS u (organisation_id, day, launches)
    VALUES (p_organisation, (p_now AT TIME ZONE 'Europe/Paris')::date, 1)
    ON CONFLICT (organisation_id, day) DO UPDATE SET launches = u.launches + 1;
    outcome := 'placed';
END $$;

-- 3. A resolution counts its capture, or takes its release off its launch's day.
CREATE OR REPLACE FUNCTION credit_hold_resolve(
    p_hold uuid, p_kind text, p_actor text, p_reason text, p_now timestamptz,
    OUT organisation_id uuid, OUT amount bigint, OUT expired boolean)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    WITH h AS (
           DELETE FROM credit_holds_open WHERE hold_id = p_hold
           RETURNING hold_id, organisation_id, amount),
       l AS (
           INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at)
           SELECT h.organisation_id, d.bucket_id, p_kind, CASE WHEN p_kind = 'capture' THEN 0 ELSE d.amount END,
                  d.amount, h.hold_id, p_actor, p_reason, d.reference, greatest(p_now, d.created_at)
             FROM h JOIN credit_ledger d ON d.hold_id = p_hold AND d.kind = 'hold'
            ORDER BY d.bucket_id
           RETURNING bucket_id, created_at)
    SELECT h.organisation_id AS organisation_id, h.amount AS amount,
           (SELECT min(l.created_at) FROM l) AS resolved_at,
           EXISTS (SELECT 1 FROM l JOIN credit_buckets b ON b.id = l.bucket_id
                    WHERE p_kind = 'release' AND b.expires_at <= l.created_at) AS expired
      INTO r
      FROM h;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF p_kind = 'capture' THEN
        INSERT INTO credit_capture_days AS c (organisation_id, day, credits)
        VALUES (r.organisation_id, (r.resolved_at AT TIME ZONE 'Europe/Paris')::date, r.amount)
        ON CONFLICT (organisation_id, day) DO UPDATE SET credits = c.credits + EXCLUDED.credits;
    ELSE
        UPDATE credit_usage_days u SET launches = u.launches - 1
         WHERE u.organisation_id = r.organisation_id
           AND u.day = (SELECT (d.created_at AT TIME ZONE 'Europe/Paris')::date FROM credit_ledger d
                         WHERE d.hold_id = p_hold AND d.kind = 'hold' AND d.operation_key IS NOT NULL);
    END IF;
    organisation_id := r.organisation_id;
    amount := r.amount;
    expired := r.expired;
    RETURN NEXT;
END $$;

-- 4. The usage from the counters: the launches of `p_now`'s Paris day (and of any later day:
--    a hold dated ahead by an instance whose clock is ahead counted today, as before), the
--    credits held by running renders plus those captured since the first of the month, the
--    running renders. Read after the account's lock when `p_lock` (a launch).
CREATE OR REPLACE FUNCTION credit_usage(
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
    SELECT (SELECT coalesce(sum(u.launches), 0) FROM credit_usage_days u
             WHERE u.organisation_id = p_organisation AND u.day >= (p_now AT TIME ZONE 'Europe/Paris')::date),
           (SELECT coalesce(sum(o.amount), 0) FROM credit_holds_open o WHERE o.organisation_id = p_organisation)
         + (SELECT coalesce(sum(c.credits), 0) FROM credit_capture_days c
             WHERE c.organisation_id = p_organisation
               AND c.day >= date_trunc('month', p_now AT TIME ZONE 'Europe/Paris')::date),
           (SELECT count(*) FROM credit_holds_open o WHERE o.organisation_id = p_organisation)
      INTO today, month, running;
END $$;
-- (Without the SET clause of migration `usage_without_a_probe_per_launch`, which CREATE OR
-- REPLACE drops: the counters' reads are planned alike for any bounds.)
