-- The running generations and their held credits read in constant time (bench/README.md,
-- « Open holds counted »).
--
-- `credit_usage` counted an organisation's open holds (`credit_holds_open`: its running renders,
-- and the credits they hold for the month's usage) under the account's lock, on every launch.
-- Each hold inserts a row there and its resolution deletes it, so the organisation's index
-- entries point at every row it opened since the table was last vacuumed, dead or alive, and
-- the launch visited them all: under the API benchmark about 90 heap pages a launch, growing by
-- the second (0.6 ms of the database's 3.1 ms per launch and report). Two counters now keep
-- those figures, written by a trigger of `credit_holds_open` in the transaction of the row they
-- count, whoever writes it:
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
-- otherwise open or close holds that neither the filling nor the trigger counts). SHARE ROW
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

-- 2. Kept by every writer. An update counts as a closing of the old row and an opening of the
--    new one (nothing updates an open hold today). TRUNCATE is refused: it would empty the
--    table behind the counters' back.
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
    FOR EACH ROW EXECUTE FUNCTION credit_holds_open_count();
CREATE FUNCTION credit_holds_open_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'open holds are resolved through the ledger, not truncated';
END $$;
CREATE TRIGGER credit_holds_open_no_truncate BEFORE TRUNCATE ON credit_holds_open
    FOR EACH STATEMENT EXECUTE FUNCTION credit_holds_open_no_truncate();

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
