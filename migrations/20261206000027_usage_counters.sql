-- The fair-use usage read in constant time (bench/README.md, « Usage counters »).
--
-- `credit_usage` counted the day's launches and summed the month's captures from the ledger
-- under the account's lock, on every launch: as many index entries (and fresh heap rows) as the
-- organisation launched that day and captured that month. With an event's raised caps (or the
-- benchmark's) that is hundreds of rows a launch, and it grows through the day. Two counters
-- now keep those figures, written by a trigger of the ledger in the transaction of the rows
-- they count, whoever writes them (the portal's functions, an operator's SQL):
--   * `credit_usage_days`: per organisation and Europe/Paris day, the launches placed that day
--     and not released since. A hold's first row (the one with its key) adds one; the release
--     of the bucket that first row drew from takes one off the hold's own day. Every writer of
--     it holds the account's lock (a hold takes it first; a release's row takes it in the
--     ledger's trigger `credit_ledger_apply`, which fires before this one by name), so a launch
--     reads an exact count under that lock.
--   * `credit_capture_days`: per organisation and Paris day, the credits captured that day. A
--     capture moves a hold's credits from « held » to « captured » in one transaction (its open
--     row deleted, its rows counted), and a launch's one statement reads both. Captures do not
--     take the account's lock; concurrent captures of an organisation wait for each other on the
--     day's row until they commit.
-- `check-ledger` recomputes both from the ledger. Same answers as before, same signature.

-- No ledger row is written while the counters are filled from it (an instance still running
-- would otherwise write rows that neither the filling nor the trigger counts). SHARE ROW
-- EXCLUSIVE from the start: the mode CREATE TRIGGER takes, so the lock is never upgraded.
LOCK TABLE credit_ledger IN SHARE ROW EXCLUSIVE MODE;

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

-- 1. From the ledger as it stands.
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

-- 2. Then kept by the ledger's rows that change them: a hold's first row, captures, releases.
CREATE FUNCTION credit_usage_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    placed timestamptz;
BEGIN
    IF NEW.kind = 'capture' THEN
        INSERT INTO credit_capture_days AS c (organisation_id, day, credits)
        VALUES (NEW.organisation_id, (NEW.created_at AT TIME ZONE 'Europe/Paris')::date, NEW.amount)
        ON CONFLICT (organisation_id, day) DO UPDATE SET credits = c.credits + EXCLUDED.credits;
    ELSIF NEW.kind = 'release' THEN
        -- Once per hold: with the release of the bucket its first row drew from.
        SELECT d.created_at INTO placed FROM credit_ledger d
         WHERE d.hold_id = NEW.hold_id AND d.kind = 'hold' AND d.operation_key IS NOT NULL
           AND d.bucket_id = NEW.bucket_id;
        IF FOUND THEN
            UPDATE credit_usage_days u SET launches = u.launches - 1
             WHERE u.organisation_id = NEW.organisation_id
               AND u.day = (placed AT TIME ZONE 'Europe/Paris')::date;
        END IF;
    ELSE
        INSERT INTO credit_usage_days AS u (organisation_id, day, launches)
        VALUES (NEW.organisation_id, (NEW.created_at AT TIME ZONE 'Europe/Paris')::date, 1)
        ON CONFLICT (organisation_id, day) DO UPDATE SET launches = u.launches + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER credit_usage_count AFTER INSERT ON credit_ledger
    FOR EACH ROW WHEN (NEW.kind IN ('capture', 'release') OR (NEW.kind = 'hold' AND NEW.operation_key IS NOT NULL))
    EXECUTE FUNCTION credit_usage_count();

-- 3. The usage from the counters: the launches of `p_now`'s Paris day (and of any later day:
--    a hold dated ahead by an instance whose clock is ahead counted today, as before), the
--    credits held by running renders plus those captured since the first of the month, the
--    running renders. Read after the account's lock when `p_lock` (a launch). (Without the SET
--    clause of migration `usage_without_a_probe_per_launch`, which CREATE OR REPLACE drops: the
--    counters' reads are planned alike for any bounds.)
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
