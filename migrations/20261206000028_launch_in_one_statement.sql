-- A launch in one statement, and fewer index entries per launch and report (bench/README.md,
-- « A launch in one statement »).

-- 1. An API launch whose checks the portal could make before reaching the database, in one
--    statement (no BEGIN and COMMIT around it): what `generation_launch_open`,
--    `generation_launch_hold` and the stored answer did in three round trips of one
--    transaction, under the same locks, in the same order. The portal brings what it expects of
--    the organisation (its plan and its raise, as the organisation's last launch found them)
--    and the largest usage its rules let through (`domain::limits::UsageBounds`); the context
--    and the usage are read here, under the account's lock. Nothing is written (`slow`) when
--    the context differs from what the portal expected, when a cap or the balance would refuse,
--    or when the organisation is unknown: the portal then launches in its own transaction, where
--    the rules decide and name the refusal. Otherwise as `generation_launch_open` answers
--    (`in_progress`, `conflict`, `answer`), or `launched`: the hold placed, the generation
--    running, and the answer stored with the Idempotency-Key, its body being
--    `p_body_head || available || p_body_tail` (the balance after the hold).
CREATE FUNCTION generation_launch_fast(
    p_organisation uuid, p_key text, p_fingerprint text, p_now timestamptz,
    p_plan_id text, p_raise_daily integer, p_raise_monthly bigint, p_raise_concurrent integer,
    p_max_running bigint, p_max_today bigint, p_max_month bigint,
    p_amount bigint, p_type text, p_reference text, p_actor text, p_expires_at timestamptz,
    p_generation uuid, p_request text, p_prompt text, p_via text,
    p_body_head text, p_body_tail text,
    OUT outcome text, OUT answer_status integer, OUT answer_body text,
    OUT hold_id uuid, OUT available bigint)
LANGUAGE plpgsql AS $$
DECLARE
    o record;
    h record;
BEGIN
    SELECT * INTO o FROM generation_launch_open(p_organisation, p_key, p_fingerprint, p_now);
    IF o.outcome IN ('in_progress', 'conflict', 'answer') THEN
        outcome := o.outcome;
        answer_status := o.answer_status;
        answer_body := o.answer_body;
        RETURN;
    END IF;
    -- Written to fail safe: a NULL anywhere leaves the launch to the transaction.
    IF o.outcome IS DISTINCT FROM 'open'
       OR o.suspended IS NOT FALSE
       OR o.plan_id IS DISTINCT FROM p_plan_id
       OR o.raise_daily IS DISTINCT FROM p_raise_daily
       OR o.raise_monthly IS DISTINCT FROM p_raise_monthly
       OR o.raise_concurrent IS DISTINCT FROM p_raise_concurrent
       OR (o.running <= p_max_running) IS NOT TRUE
       OR (o.today <= p_max_today) IS NOT TRUE
       OR (o.month <= p_max_month) IS NOT TRUE THEN
        outcome := 'slow';
        RETURN;
    END IF;
    SELECT * INTO h
      FROM generation_launch_hold(p_organisation, p_amount, p_type, p_reference, p_reference, p_actor,
                                  p_now, p_expires_at, p_generation, p_request, p_prompt, p_via);
    IF h.outcome IS DISTINCT FROM 'placed' THEN
        -- `short` wrote nothing; `existing` cannot happen (the key is the new generation's).
        outcome := 'slow';
        RETURN;
    END IF;
    answer_status := 201;
    answer_body := p_body_head || h.available::text || p_body_tail;
    INSERT INTO idempotency_keys (organisation_id, key, fingerprint, status, body, created_at)
    VALUES (p_organisation, p_key, p_fingerprint, answer_status, answer_body, p_now)
    ON CONFLICT (organisation_id, key) DO UPDATE
       SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, body = EXCLUDED.body,
           created_at = EXCLUDED.created_at
     WHERE idempotency_keys.status IS NULL;
    outcome := 'launched';
    hold_id := h.hold_id;
    available := h.available;
END $$;

-- 2. Indexes no reader uses since the usage counters (migration 27): the day's launches, its
--    releases and the month's captures are counted in `credit_usage_days` and
--    `credit_capture_days`; the dashboard's spending per day reads the latter; `check-ledger`
--    reads the whole ledger. Each hold and each capture wrote one entry in them.
DROP INDEX credit_ledger_launches_by_day;
DROP INDEX credit_ledger_releases_by_day;
DROP INDEX credit_ledger_captures_by_day;

-- 3. A report rewrites its generation's status: with a partial index on `status`, every
--    report wrote a new entry in each of the four indexes of `generations`. The test engine's
--    reading of running generations goes through the open holds (`credit_holds_open_due`)
--    instead, and the report's update can stay on its page (HOT) when the page has room.
DROP INDEX generations_running;
ALTER TABLE generations SET (fillfactor = 90);
