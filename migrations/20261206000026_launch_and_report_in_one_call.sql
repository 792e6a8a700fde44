-- A launch and an engine's report in fewer round trips (bench/README.md, « Fewer round trips
-- per launch »).
--
-- An API launch and its report took 15 round trips between the portal and PostgreSQL: the key's
-- lock, its stored answer, the organisation's plan and raise, the account's lock with the
-- usage, the hold, the generation, the answer, BEGIN and COMMIT; the report read the
-- generation, resolved its hold and wrote its outcome between its own BEGIN and COMMIT. On two
-- cores each round trip costs about 0.3 ms of CPU, whatever the statement: the launches ran at
-- 0.18x pgbench's TPC-B. The same statements now run inside three functions, in the same
-- order, under the same locks; the rules do not change.

-- 1. The organisation's plan, whether it may launch (staff's suspension; its subscription
--    unpaid past its retries, or a sign-up not paid yet: no subscription), its low-balance
--    threshold and the temporary raise in force on `p_now`'s Paris day (the latest granted):
--    what `db::generations::launch_context` read, now one definition for it and the launch.
CREATE FUNCTION organisation_launch_context(
    p_organisation uuid, p_now timestamptz,
    OUT plan_id text, OUT suspended boolean, OUT low_balance_threshold bigint,
    OUT raise_daily integer, OUT raise_monthly bigint, OUT raise_concurrent integer,
    OUT raise_first_day date, OUT raise_last_day date, OUT raise_reason text)
RETURNS SETOF record
LANGUAGE sql STABLE AS $$
    SELECT o.plan_id,
           (o.suspended_at IS NOT NULL
            OR coalesce((SELECT s.status FROM subscriptions s WHERE s.organisation_id = o.id), 'suspended') = 'suspended'),
           o.low_balance_threshold,
           r.daily, r.monthly, r.concurrent, r.first_day, r.last_day, r.reason
      FROM organisations o
      LEFT JOIN LATERAL (
          SELECT * FROM limit_raises r
           WHERE r.organisation_id = o.id AND r.replaced_at IS NULL
             AND (p_now AT TIME ZONE 'Europe/Paris')::date BETWEEN r.first_day AND r.last_day
           ORDER BY r.created_at DESC LIMIT 1) r ON true
     WHERE o.id = p_organisation
$$;

-- 2. A launch's first call, inside its transaction. With an Idempotency-Key (`p_key`, the API):
--    the key's advisory lock, taken without waiting (`in_progress` when another transaction
--    holds it: the same key still being answered), then the answer stored with it, read after
--    the lock (a statement of its own: its snapshot includes the answer of a transaction that
--    held the lock before): `conflict` when stored with another fingerprint, `answer` with its
--    status and body. Then the organisation's context (`unknown` without it or its account),
--    and the account's lock with the usage read under it (`credit_usage`): `open`. The lock is
--    held to the commit, so the usage stays true until the hold.
CREATE FUNCTION generation_launch_open(
    p_organisation uuid, p_key text, p_fingerprint text, p_now timestamptz,
    OUT outcome text, OUT answer_status integer, OUT answer_body text,
    OUT plan_id text, OUT suspended boolean, OUT low_balance_threshold bigint,
    OUT raise_daily integer, OUT raise_monthly bigint, OUT raise_concurrent integer,
    OUT raise_first_day date, OUT raise_last_day date, OUT raise_reason text,
    OUT today bigint, OUT month bigint, OUT running bigint)
LANGUAGE plpgsql AS $$
DECLARE
    stored record;
    has_account boolean;
BEGIN
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
            END IF;
            -- Without a status: a claim left by an earlier version of the portal (launched anew).
            IF stored.status IS NOT NULL AND stored.body IS NOT NULL THEN
                outcome := 'answer';
                answer_status := stored.status;
                answer_body := stored.body;
                RETURN;
            END IF;
        END IF;
    END IF;
    SELECT c.plan_id, c.suspended, c.low_balance_threshold, c.raise_daily, c.raise_monthly,
           c.raise_concurrent, c.raise_first_day, c.raise_last_day, c.raise_reason
      INTO plan_id, suspended, low_balance_threshold, raise_daily, raise_monthly,
           raise_concurrent, raise_first_day, raise_last_day, raise_reason
      FROM organisation_launch_context(p_organisation, p_now) c;
    IF NOT FOUND THEN
        outcome := 'unknown';
        RETURN;
    END IF;
    SELECT u.has_account, u.today, u.month, u.running INTO has_account, today, month, running
      FROM credit_usage(p_organisation, p_now, true) u;
    outcome := CASE WHEN has_account THEN 'open' ELSE 'unknown' END;
END $$;

-- 3. A launch's hold and its generation, under the lock taken by `generation_launch_open`:
--    `credit_hold_place` (`placed`, `existing` or `short`, as it answers), and the running
--    generation when placed. A refused launch, or a hold found with its key, is written by the
--    portal's own statements (they are the rare cases).
CREATE FUNCTION generation_launch_hold(
    p_organisation uuid, p_amount bigint, p_type text, p_key text, p_reference text,
    p_actor text, p_now timestamptz, p_expires_at timestamptz,
    p_generation uuid, p_request text, p_prompt text, p_via text,
    OUT outcome text, OUT hold_id uuid, OUT available bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT h.outcome, h.hold_id, h.available INTO outcome, hold_id, available
      FROM credit_hold_place(p_organisation, p_amount, p_type, p_key, p_reference, p_actor,
                             'generation', p_now, p_expires_at) h;
    IF outcome = 'placed' THEN
        INSERT INTO generations (id, organisation_id, hold_id, creation_type, request, prompt, status,
                                 credits_held, via, launched_by, created_at)
        VALUES (p_generation, p_organisation, hold_id, p_type, p_request, p_prompt, 'running',
                p_amount, p_via, p_actor, p_now);
    END IF;
END $$;

-- 4. A hold's resolution, once: its open row deleted, then one capture or release row per
--    ledger row of the hold, dated `p_now` or the hold's own moment when `p_now` is earlier
--    (an instance whose clock is behind the one that placed it); a release moves the credits
--    back through the ledger's trigger, a capture moves nothing. Nothing when the hold is not
--    open (resolved, or unknown). `expired`: a released credit went back to a bucket whose
--    expiry had passed. What `db::credits::resolve_hold` ran as one statement (in PL/pgSQL, so
--    that its plan is kept by the connection).
CREATE FUNCTION credit_hold_resolve(
    p_hold uuid, p_kind text, p_actor text, p_reason text, p_now timestamptz,
    OUT organisation_id uuid, OUT amount bigint, OUT expired boolean)
RETURNS SETOF record
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
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
    SELECT h.organisation_id, h.amount,
           EXISTS (SELECT 1 FROM l JOIN credit_buckets b ON b.id = l.bucket_id
                    WHERE p_kind = 'release' AND b.expires_at <= l.created_at)
      FROM h;
END $$;

-- 5. An engine's report in one statement, in the usual case: the generation read, its hold
--    captured (`succeeded`) or released (`failed`), its outcome written; the generation as it
--    then stands (`done`), or `not_found` (none, or refused: the engine never saw it). Another
--    report after the first finds it finished and changes nothing. Left to the portal's own
--    transaction (`slow`), before anything is written: a generation past its timeout
--    (`p_timeout` after its launch: it expires, whatever arrives), and a release that would put
--    credits back into a bucket whose expiry has passed (they are expired at once, and carried
--    into a rollover when its period was renewed since).
CREATE FUNCTION generation_report(
    p_generation uuid, p_status text, p_now timestamptz, p_timeout interval,
    OUT outcome text, OUT id uuid, OUT organisation_id uuid, OUT hold_id uuid,
    OUT creation_type text, OUT request text, OUT prompt text, OUT status text,
    OUT refusal_rule text, OUT refusal jsonb, OUT credits_held bigint, OUT credits_charged bigint,
    OUT via text, OUT created_at timestamptz, OUT finished_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    g generations%ROWTYPE;
    resolved record;
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
        SELECT * INTO resolved
          FROM credit_hold_resolve(g.hold_id, CASE WHEN p_status = 'succeeded' THEN 'capture' ELSE 'release' END,
                                   'engine', p_status, p_now);
        IF FOUND THEN
            UPDATE generations x
               SET status = p_status,
                   credits_charged = CASE WHEN p_status = 'succeeded' THEN resolved.amount ELSE 0 END,
                   finished_at = p_now
             WHERE x.id = p_generation AND x.status = 'running';
        END IF;
        -- Written here, or (a race with another report or the timeout job) by someone else.
        SELECT * INTO g FROM generations x WHERE x.id = p_generation;
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
