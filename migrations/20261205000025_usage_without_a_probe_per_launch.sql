-- The fair-use limits' day read without a probe per launch (bench/README.md, « The launch's
-- usage »).
--
-- `credit_usage` counted today's launches that are running or succeeded by looking up, for each
-- of them, whether its hold had been released: an index probe and a heap visit per launch of the
-- day, under the account's lock, on every launch. At 166 launches of an organisation in a day it
-- took 1 ms of the 1.6 ms the function took, and it grew with each launch.
--
-- Now the day is the launches' count (the launches' index alone) less the holds of the day's
-- launches released since (released today: a hold is resolved at or after its placement, which
-- `check-ledger` verifies), found through an index of the releases of a day: a probe per release,
-- and releases are the failed or timed-out renders. Same answer, same signature.
--
-- And its plan is made once per connection: PostgreSQL judged the generic plan of this query
-- (its bounds unknown) dearer than one made for each call's bounds, so it planned it again on
-- every call, 1.1 ms of the 1.5 ms the dashboard spent in it (pg_stat_statements,
-- track_planning). The generic plan reads the same index ranges. (The SET clause belongs to the
-- definition: a later CREATE OR REPLACE must repeat it.)

CREATE INDEX credit_ledger_releases_by_day ON credit_ledger (organisation_id, created_at) INCLUDE (hold_id)
    WHERE kind = 'release';

CREATE OR REPLACE FUNCTION credit_usage(
    p_organisation uuid, p_now timestamptz, p_lock boolean,
    OUT has_account boolean, OUT today bigint, OUT month bigint, OUT running bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
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
    -- Each release of the day is matched with its hold's first row by a probe (in a FILTER, so a
    -- subplan per release, never a join that a plan made without statistics could run over
    -- every hold); a hold released from several buckets counts once.
    SELECT (SELECT count(*) FROM credit_ledger h
             WHERE h.organisation_id = p_organisation AND h.operation_key IS NOT NULL
               AND h.created_at >= b.day_start)
         - (SELECT count(DISTINCT r.hold_id) FILTER (WHERE EXISTS (
                       SELECT 1 FROM credit_ledger h
                        WHERE h.hold_id = r.hold_id AND h.kind = 'hold' AND h.organisation_id = p_organisation
                          AND h.operation_key IS NOT NULL AND h.created_at >= b.day_start))
              FROM credit_ledger r
             WHERE r.organisation_id = p_organisation AND r.kind = 'release'
               AND r.created_at >= b.day_start),
           ((SELECT coalesce(sum(o.amount), 0) FROM credit_holds_open o WHERE o.organisation_id = p_organisation)
          + (SELECT coalesce(sum(c.amount), 0) FROM credit_ledger c
              WHERE c.organisation_id = p_organisation AND c.kind = 'capture' AND c.created_at >= b.month_start))::bigint,
           (SELECT count(*) FROM credit_holds_open o WHERE o.organisation_id = p_organisation)
      INTO today, month, running
      FROM bounds b;
END $$;
