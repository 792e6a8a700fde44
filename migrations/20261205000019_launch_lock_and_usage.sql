-- A launch reads the organisation's use of its fair-use limits under the organisation's lock:
-- the lock, then the use, in one call (one round trip instead of two, while every other launch
-- of the organisation waits). The use is read by a statement of its own after the lock, so with
-- what the launches it waited for committed (READ COMMITTED takes a snapshot per statement in a
-- function; one statement that locked and read would read from before its wait). Without the
-- lock, the same reading serves the dashboard and the API's balance.
--
-- The use at `p_now` (Europe/Paris days and months): generations launched today that are
-- running or succeeded, credits held by running ones plus those captured this month, and the
-- running ones. `has_account` is false (the rest null) when the organisation has no account.
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
    SELECT (SELECT count(*) FROM credit_holds h
             WHERE h.organisation_id = p_organisation AND h.created_at >= b.day_start AND h.state <> 'released'),
           ((SELECT coalesce(sum(h.amount), 0) FROM credit_holds h
              WHERE h.organisation_id = p_organisation AND h.state = 'held')
          + (SELECT coalesce(sum(h.amount), 0) FROM credit_holds h
              WHERE h.organisation_id = p_organisation AND h.state = 'captured' AND h.resolved_at >= b.month_start))::bigint,
           (SELECT count(*) FROM credit_holds h
             WHERE h.organisation_id = p_organisation AND h.state = 'held')
      INTO today, month, running
      FROM bounds b;
END $$;
