-- A launch and a report without nested calls (bench/README.md, « Nested calls, and the floor
-- through the portal »). Same rules, same answers, same signatures. Measured through the portal
-- on the floor's statements, the Idempotency-Key read by `idempotency_key_open` (a nested call)
-- cost about a tenth of the launches against the same two statements written in the launch.
-- In the portal's whole functions the two changes together measured +1 to +6 %, within the
-- noise of the whole scenario.

-- 1. The API's launch in one statement: the Idempotency-Key's lock and answer written in it
--    (`idempotency_key_open` stays, for `generation_launch_open`, the portal's transaction).
CREATE OR REPLACE FUNCTION generation_launch_fast(
    p_organisation uuid, p_key text, p_fingerprint text, p_now timestamptz,
    p_plan_id text, p_raise_daily integer, p_raise_monthly bigint, p_raise_concurrent integer,
    p_max_running bigint, p_max_today bigint, p_max_month bigint,
    p_amount bigint, p_type text, p_reference text, p_actor text, p_expires_at timestamptz,
    p_generation uuid, p_request text, p_prompt text, p_via text,
    p_body_head text, p_body_tail text,
    OUT outcome text, OUT answer_status integer, OUT answer_body text,
    OUT hold_id uuid, OUT available bigint)
LANGUAGE plpgsql SET nanoclip.ledger = 'counted' SET enable_bitmapscan = off AS $$
DECLARE
    c record;
    u record;
    stored record;
    today date := (p_now AT TIME ZONE 'Europe/Paris')::date;
    total bigint;
BEGIN
    -- The Idempotency-Key's lock and stored answer, as `idempotency_key_open` (section 3 of
    -- migration `lean_launch_and_report`) does them, written here: the nested call cost more
    -- than its two statements.
    IF p_key IS NOT NULL THEN
        IF NOT pg_try_advisory_xact_lock(hashtextextended(p_organisation::text || ' ' || p_key, 0)) THEN
            outcome := 'in_progress';
            RETURN;
        END IF;
        SELECT k.fingerprint, k.status, k.body INTO stored
          FROM idempotency_keys k WHERE k.organisation_id = p_organisation AND k.key = p_key;
        IF FOUND THEN
            IF stored.fingerprint IS DISTINCT FROM p_fingerprint THEN
                outcome := 'conflict';
                RETURN;
            ELSIF stored.status IS NOT NULL AND stored.body IS NOT NULL THEN
                outcome := 'answer';
                answer_status := stored.status;
                answer_body := stored.body;
                RETURN;
            END IF;
        END IF;
    END IF;
    SELECT a.low_balance_since, x.low_balance_threshold, x.plan_id, x.suspended,
           x.raise_daily, x.raise_monthly, x.raise_concurrent
      INTO c
      FROM credit_accounts a CROSS JOIN LATERAL organisation_launch_context(a.organisation_id, p_now) x
     WHERE a.organisation_id = p_organisation
       FOR UPDATE OF a;
    -- Written to fail safe: a NULL anywhere leaves the launch to the transaction.
    IF NOT FOUND
       OR p_amount IS NULL OR p_amount <= 0 OR p_reference IS NULL
       OR c.suspended IS NOT FALSE
       OR c.plan_id IS DISTINCT FROM p_plan_id
       OR c.raise_daily IS DISTINCT FROM p_raise_daily
       OR c.raise_monthly IS DISTINCT FROM p_raise_monthly
       OR c.raise_concurrent IS DISTINCT FROM p_raise_concurrent THEN
        outcome := 'slow';
        RETURN;
    END IF;
    SELECT (SELECT coalesce(sum(d.launches), 0) FROM credit_usage_days d
             WHERE d.organisation_id = p_organisation AND d.day >= today) AS today,
           o.running, o.held,
           (SELECT coalesce(sum(k.credits), 0) FROM credit_capture_days k
             WHERE k.organisation_id = p_organisation
               AND k.day >= date_trunc('month', p_now AT TIME ZONE 'Europe/Paris')::date) AS captured,
           b.first_id, b.first_left, b.usable, b.available, b.total
      INTO u
      FROM (SELECT count(*) AS running, coalesce(sum(h.amount), 0) AS held
              FROM credit_holds_open h WHERE h.organisation_id = p_organisation) o,
           (SELECT (array_agg(q.id ORDER BY q.restricted_to IS NULL, q.expires_at, q.id) FILTER (WHERE q.usable))[1] AS first_id,
                   (array_agg(q.remaining ORDER BY q.restricted_to IS NULL, q.expires_at, q.id) FILTER (WHERE q.usable))[1] AS first_left,
                   coalesce(sum(q.remaining) FILTER (WHERE q.usable), 0)::bigint AS usable,
                   coalesce(sum(q.remaining) FILTER (WHERE q.expires_at > p_now), 0)::bigint AS available,
                   coalesce(sum(q.remaining), 0)::bigint AS total
              FROM (SELECT id, remaining, restricted_to, expires_at,
                           expires_at > p_now AND (restricted_to IS NULL OR restricted_to = p_type) AS usable
                      FROM credit_buckets WHERE organisation_id = p_organisation AND remaining > 0) q) b;
    IF (u.running <= p_max_running) IS NOT TRUE
       OR (u.today <= p_max_today) IS NOT TRUE
       OR (u.held + u.captured <= p_max_month) IS NOT TRUE
       OR (u.first_left >= p_amount) IS NOT TRUE THEN
        outcome := 'slow';
        RETURN;
    END IF;
    hold_id := gen_random_uuid();
    UPDATE credit_buckets SET remaining = remaining - p_amount WHERE id = u.first_id;
    INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason,
                               reference, created_at, operation_key, creation_type, expires_at)
    VALUES (p_organisation, u.first_id, 'hold', -p_amount, p_amount, hold_id, p_actor, 'generation',
            p_reference, p_now, p_reference, p_type, p_expires_at);
    INSERT INTO credit_usage_days AS d (organisation_id, day, launches)
    VALUES (p_organisation, today, 1)
    ON CONFLICT (organisation_id, day) DO UPDATE SET launches = d.launches + 1;
    INSERT INTO credit_holds_open (hold_id, organisation_id, amount, expires_at)
    VALUES (hold_id, p_organisation, p_amount, p_expires_at);
    total := u.total - p_amount;
    IF (c.low_balance_since IS NULL) = (total < c.low_balance_threshold) THEN
        PERFORM credit_low_balance_note(p_organisation, total, p_now);
    END IF;
    INSERT INTO generations (id, organisation_id, hold_id, creation_type, request, prompt, status,
                             credits_held, via, launched_by, created_at)
    VALUES (p_generation, p_organisation, hold_id, p_type, p_request, p_prompt, 'running',
            p_amount, p_via, p_actor, p_now);
    available := u.available - p_amount;
    answer_status := 201;
    answer_body := p_body_head || available::text || p_body_tail;
    INSERT INTO idempotency_keys (organisation_id, key, fingerprint, status, body, created_at)
    VALUES (p_organisation, p_key, p_fingerprint, answer_status, answer_body, p_now)
    ON CONFLICT (organisation_id, key) DO UPDATE
       SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, body = EXCLUDED.body,
           created_at = EXCLUDED.created_at
     WHERE idempotency_keys.status IS NULL;
    outcome := 'launched';
END $$;

-- 2. An engine's report in one statement: what `credit_hold_resolve` does for a hold, written
--    in it as the same one statement (the open hold deleted, a resolution row per bucket the
--    hold drew from, a capture's credits counted on its day: the function counts them,
--    `nanoclip.ledger = 'counted'`; a release is counted by the ledger's trigger; a change to
--    one of the two is a change to both), then the generation's outcome. The generation
--    is read first (the report's rules: the 30 minutes, a failure on an expired bucket go to the
--    portal's transaction); the row as it then stands comes from the UPDATE itself (read again
--    only when someone else wrote it). `credit_hold_resolve` stays, for the portal's
--    transaction, the expiry job and the holds of `credits::hold`.
CREATE OR REPLACE FUNCTION generation_report(
    p_generation uuid, p_status text, p_now timestamptz, p_timeout interval,
    OUT outcome text, OUT id uuid, OUT organisation_id uuid, OUT hold_id uuid,
    OUT creation_type text, OUT request text, OUT prompt text, OUT status text,
    OUT refusal_rule text, OUT refusal jsonb, OUT credits_held bigint, OUT credits_charged bigint,
    OUT via text, OUT created_at timestamptz, OUT finished_at timestamptz)
LANGUAGE plpgsql SET nanoclip.ledger = 'counted' AS $$
#variable_conflict use_column
DECLARE
    g generations%ROWTYPE;
    held_amount bigint;
    written boolean := false;
BEGIN
    SELECT * INTO g FROM generations x WHERE x.id = p_generation;
    IF NOT FOUND OR g.hold_id IS NULL THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    IF g.status = 'running' THEN
        IF p_now >= g.created_at + p_timeout
           OR (p_status = 'failed' AND EXISTS (
                   SELECT 1 FROM credit_ledger d JOIN credit_buckets b ON b.id = d.bucket_id
                    WHERE d.hold_id = g.hold_id AND d.kind = 'hold'
                      AND b.expires_at <= greatest(p_now, d.created_at))) THEN
            outcome := 'slow';
            RETURN;
        END IF;
        WITH h AS (
               DELETE FROM credit_holds_open o WHERE o.hold_id = g.hold_id
               RETURNING o.hold_id, o.organisation_id, o.amount),
             l AS (
               INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor,
                                          reason, reference, created_at)
               SELECT h.organisation_id, d.bucket_id,
                      CASE WHEN p_status = 'succeeded' THEN 'capture' ELSE 'release' END,
                      CASE WHEN p_status = 'succeeded' THEN 0 ELSE d.amount END,
                      d.amount, h.hold_id, 'engine', p_status, d.reference, greatest(p_now, d.created_at)
                 FROM h JOIN credit_ledger d ON d.hold_id = g.hold_id AND d.kind = 'hold'
                ORDER BY d.bucket_id
               RETURNING organisation_id, amount, created_at),
             c AS (
               INSERT INTO credit_capture_days AS k (organisation_id, day, credits)
               SELECT l.organisation_id, (l.created_at AT TIME ZONE 'Europe/Paris')::date, sum(l.amount)
                 FROM l WHERE p_status = 'succeeded' GROUP BY 1, 2
               ON CONFLICT (organisation_id, day) DO UPDATE SET credits = k.credits + EXCLUDED.credits)
        SELECT h.amount INTO held_amount FROM h;
        IF FOUND THEN
            UPDATE generations x
               SET status = p_status,
                   credits_charged = CASE WHEN p_status = 'succeeded' THEN held_amount ELSE 0 END,
                   finished_at = p_now
             WHERE x.id = p_generation AND x.status = 'running'
            RETURNING x.* INTO g;
            written := FOUND;
        END IF;
        -- Written here, or (a race with another report or the timeout job) by someone else.
        IF NOT written THEN
            SELECT * INTO g FROM generations x WHERE x.id = p_generation;
        END IF;
    END IF;
    outcome := 'done';
    id := g.id;
    organisation_id := g.organisation_id;
    hold_id := g.hold_id;
    creation_type := g.creation_type;
    request := g.request;
    prompt := g.prompt;
    status := g.status;
    refusal_rule := g.refusal_rule;
    refusal := g.refusal;
    credits_held := g.credits_held;
    credits_charged := g.credits_charged;
    via := g.via;
    created_at := g.created_at;
    finished_at := g.finished_at;
END $$;
