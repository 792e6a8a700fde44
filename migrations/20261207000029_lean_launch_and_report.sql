-- A launch and its report with fewer statements, triggers and checks (bench/README.md, « A
-- lean launch and report »). Same rules, same answers, same signatures; measured with the API
-- scenario's statements (pgbench, 32 clients): the functions' own reads, the ledger's counting
-- trigger and the foreign keys of `generations` and `idempotency_keys` made up about half of a
-- launch and its report.

-- 1. The ledger's usage counters, written by the statements of the functions that write holds
--    and captures (`generation_launch_fast`, `credit_hold_place`, `credit_hold_resolve`). A
--    function that counts its holds' and captures' rows itself runs with `nanoclip.ledger` set to
--    `counted` (a SET clause, restored when it returns); the trigger skips those two kinds of row
--    then, and counts every other writer's rows as before (an operator's SQL, the tests' naive
--    control). Releases are always counted by the trigger. Like `hold`, it is a tripwire against
--    mistakes, not a barrier.
DROP TRIGGER credit_usage_count ON credit_ledger;
CREATE TRIGGER credit_usage_count AFTER INSERT ON credit_ledger
    FOR EACH ROW WHEN (NEW.kind = 'release'
                       OR ((NEW.kind = 'capture' OR (NEW.kind = 'hold' AND NEW.operation_key IS NOT NULL))
                           AND current_setting('nanoclip.ledger', true) IS DISTINCT FROM 'counted'))
    EXECUTE FUNCTION credit_usage_count();

-- A function that counts its rows also writes its bucket, as a hold's function does.
DROP TRIGGER credit_buckets_guard ON credit_buckets;
CREATE TRIGGER credit_buckets_guard BEFORE UPDATE ON credit_buckets
    FOR EACH ROW WHEN (pg_trigger_depth() < 1 AND NEW.remaining IS DISTINCT FROM OLD.remaining
                       AND coalesce(current_setting('nanoclip.ledger', true), '') NOT IN ('hold', 'counted'))
    EXECUTE FUNCTION credit_bucket_guard();

-- 2. No foreign keys on `generations` and `idempotency_keys`: each one checked its parent row
--    with a query of its own and locked it (KEY SHARE) at every launch, the `creation_types` row
--    by every launch of every organisation. Their writers are the launch's functions (under the
--    account's lock: the organisation exists) and `db::generations` (a refusal, after the
--    organisation's context was read); `check-ledger` verifies that each generation's
--    organisation and type exist. What the foreign keys did on the parents' side is kept: an
--    organisation's deletion deletes its generations and keys, a type still used is kept.
ALTER TABLE generations
    DROP CONSTRAINT generations_organisation_id_fkey,
    DROP CONSTRAINT generations_creation_type_fkey;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_organisation_id_fkey;

CREATE FUNCTION organisation_deletes_its_generations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM generations WHERE organisation_id = OLD.id;
    DELETE FROM idempotency_keys WHERE organisation_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER organisations_delete_their_generations BEFORE DELETE ON organisations
    FOR EACH ROW EXECUTE FUNCTION organisation_deletes_its_generations();

CREATE FUNCTION creation_type_keeps_its_generations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM generations WHERE creation_type = OLD.id) THEN
        RAISE EXCEPTION 'the creation type % has generations: it is kept', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER creation_types_keep_their_generations BEFORE DELETE OR UPDATE ON creation_types
    FOR EACH ROW EXECUTE FUNCTION creation_type_keeps_its_generations();

-- 3. An Idempotency-Key's lock and stored answer, for the two launches that take one (the one
--    statement below, and `generation_launch_open` in the portal's transaction): the key's
--    advisory lock, taken without waiting (`in_progress` when another transaction holds it: the
--    same key still being answered), then the answer stored with it, read after the lock (a
--    statement of its own: its snapshot includes the answer of a transaction that held the lock
--    before): `conflict` when stored with another fingerprint, `answer` with its status and
--    body. NULL: the launch goes on (a new key, or a claim left by an earlier version of the
--    portal, without a status: launched anew).
CREATE FUNCTION idempotency_key_open(
    p_organisation uuid, p_key text, p_fingerprint text,
    OUT outcome text, OUT answer_status integer, OUT answer_body text)
LANGUAGE plpgsql AS $$
DECLARE
    stored record;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended(p_organisation::text || ' ' || p_key, 0)) THEN
        outcome := 'in_progress';
        RETURN;
    END IF;
    SELECT k.fingerprint, k.status, k.body INTO stored
      FROM idempotency_keys k WHERE k.organisation_id = p_organisation AND k.key = p_key;
    IF FOUND THEN
        IF stored.fingerprint IS DISTINCT FROM p_fingerprint THEN
            outcome := 'conflict';
        ELSIF stored.status IS NOT NULL AND stored.body IS NOT NULL THEN
            outcome := 'answer';
            answer_status := stored.status;
            answer_body := stored.body;
        END IF;
    END IF;
END $$;

-- 4. An API launch in one statement, flat: what `generation_launch_open`,
--    `generation_launch_hold` and `credit_hold_place` did for it, without their nested calls and
--    without what a launch in one statement cannot meet. In order: the Idempotency-Key's lock and
--    stored answer (as `generation_launch_open`); the account's lock, with the organisation's
--    context read in the same statement (`organisation_launch_context`; the context was read
--    before the lock, as before); then, by a statement of its own after the lock (its snapshot
--    sees what the launches it waited for committed), the usage and the buckets in one reading;
--    then the hold from the first bucket in the consumption order, its ledger row, the day's
--    launch counted, the open hold, the low-balance rule, the running generation and the stored
--    answer. `slow`, nothing written, when the context or the usage is not what the portal
--    expected, when the first bucket alone cannot pay (the portal's transaction draws from
--    several, or refuses), when the organisation is unknown, or without a reference. The
--    hold's key is the new generation's reference (a hold without a key is not a launch the
--    counters count): the ledger's unique index refuses a second hold with it.
--    Without bitmap scans: the organisation's open holds are counted by an index scan, which
--    marks the entries of the holds resolved since (deleted rows) as dead, so that the next
--    launch skips them; a bitmap scan visited every one of them on its heap page until the
--    table's next vacuum (66 of a launch and report's 165 buffers in the API scenario).
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
    today date := (p_now AT TIME ZONE 'Europe/Paris')::date;
    total bigint;
BEGIN
    IF p_key IS NOT NULL THEN
        SELECT k.outcome, k.answer_status, k.answer_body INTO outcome, answer_status, answer_body
          FROM idempotency_key_open(p_organisation, p_key, p_fingerprint) k;
        IF outcome IS NOT NULL THEN
            RETURN;
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

-- 5. An engine's report in one statement, as before: the hold resolved by `credit_hold_resolve`
--    (which counts a capture's credits itself, section 6), the generation's outcome and its row
--    as it then stands, from the UPDATE itself (read again only when someone else wrote it).
CREATE OR REPLACE FUNCTION generation_report(
    p_generation uuid, p_status text, p_now timestamptz, p_timeout interval,
    OUT outcome text, OUT id uuid, OUT organisation_id uuid, OUT hold_id uuid,
    OUT creation_type text, OUT request text, OUT prompt text, OUT status text,
    OUT refusal_rule text, OUT refusal jsonb, OUT credits_held bigint, OUT credits_charged bigint,
    OUT via text, OUT created_at timestamptz, OUT finished_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    g generations%ROWTYPE;
    resolved record;
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
        SELECT * INTO resolved
          FROM credit_hold_resolve(g.hold_id, CASE WHEN p_status = 'succeeded' THEN 'capture' ELSE 'release' END,
                                   'engine', p_status, p_now);
        IF FOUND THEN
            UPDATE generations x
               SET status = p_status,
                   credits_charged = CASE WHEN p_status = 'succeeded' THEN resolved.amount ELSE 0 END,
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

-- 6. A hold and a resolution count their own rows too (section 1): `credit_hold_place` the
--    launch of its first row, `credit_hold_resolve` the credits of a capture. Same bodies as in
--    migrations `holds_in_the_ledger` and `launch_and_report_in_one_call` otherwise.
CREATE OR REPLACE FUNCTION credit_hold_place(
    p_organisation uuid, p_amount bigint, p_type text, p_key text, p_reference text,
    p_actor text, p_reason text, p_now timestamptz, p_expires_at timestamptz,
    OUT outcome text, OUT hold_id uuid, OUT available bigint)
LANGUAGE plpgsql SET nanoclip.ledger = 'counted' AS $$
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
    -- The launch counted on its day (the first row carries the key: what the trigger counted).
    IF p_key IS NOT NULL THEN
        INSERT INTO credit_usage_days AS d (organisation_id, day, launches)
        VALUES (p_organisation, (p_now AT TIME ZONE 'Europe/Paris')::date, 1)
        ON CONFLICT (organisation_id, day) DO UPDATE SET launches = d.launches + 1;
    END IF;
    INSERT INTO credit_holds_open (hold_id, organisation_id, amount, expires_at)
    VALUES (hold_id, p_organisation, p_amount, p_expires_at);
    available := available - p_amount;
    total := total - p_amount;
    -- The low-balance rule (migration `holds_in_the_ledger`, section 7), called only when the flag is to change (it was read
    -- under the lock above): most holds leave it as it is.
    IF (flagged IS NULL) = (total < threshold) THEN
        PERFORM credit_low_balance_note(p_organisation, total, p_now);
    END IF;
    outcome := 'placed';
END $$;

CREATE OR REPLACE FUNCTION credit_hold_resolve(
    p_hold uuid, p_kind text, p_actor text, p_reason text, p_now timestamptz,
    OUT organisation_id uuid, OUT amount bigint, OUT expired boolean)
RETURNS SETOF record
LANGUAGE plpgsql SET nanoclip.ledger = 'counted' AS $$
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
           RETURNING organisation_id, bucket_id, amount, created_at),
       -- A capture's credits counted on their day (a release is counted by the ledger's trigger).
       c AS (
           INSERT INTO credit_capture_days AS k (organisation_id, day, credits)
           SELECT l.organisation_id, (l.created_at AT TIME ZONE 'Europe/Paris')::date, sum(l.amount)
             FROM l WHERE p_kind = 'capture' GROUP BY 1, 2
           ON CONFLICT (organisation_id, day) DO UPDATE SET credits = k.credits + EXCLUDED.credits)
    SELECT h.organisation_id, h.amount,
           EXISTS (SELECT 1 FROM l JOIN credit_buckets b ON b.id = l.bucket_id
                    WHERE p_kind = 'release' AND b.expires_at <= l.created_at)
      FROM h;
END $$;

-- 7. The usage read by the portal's transaction (a launch the one statement left to it, the
--    dashboard, the balance's JSON) counts the open holds by an index scan too (section 4).
ALTER FUNCTION credit_usage(uuid, timestamptz, boolean) SET enable_bitmapscan = off;

-- 8. The portal's transaction takes the Idempotency-Key's lock and answer from section 3 too.
--    Same body as in migration `launch_and_report_in_one_call` otherwise.
CREATE OR REPLACE FUNCTION generation_launch_open(
    p_organisation uuid, p_key text, p_fingerprint text, p_now timestamptz,
    OUT outcome text, OUT answer_status integer, OUT answer_body text,
    OUT plan_id text, OUT suspended boolean, OUT low_balance_threshold bigint,
    OUT raise_daily integer, OUT raise_monthly bigint, OUT raise_concurrent integer,
    OUT raise_first_day date, OUT raise_last_day date, OUT raise_reason text,
    OUT today bigint, OUT month bigint, OUT running bigint)
LANGUAGE plpgsql AS $$
DECLARE
    has_account boolean;
BEGIN
    IF p_key IS NOT NULL THEN
        SELECT k.outcome, k.answer_status, k.answer_body INTO outcome, answer_status, answer_body
          FROM idempotency_key_open(p_organisation, p_key, p_fingerprint) k;
        IF outcome IS NOT NULL THEN
            RETURN;
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
