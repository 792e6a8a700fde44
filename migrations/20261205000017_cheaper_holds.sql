-- Cheaper holds: the same rows and the same rules as before (migration `credits`), with less
-- work for the database per hold (bench/credits, « ledger »).
--
-- 1. A bucket's `remaining` changes at every hold, capture-less release and expiry. The index
--    `credit_buckets_with_credits` had `remaining > 0` as its predicate, so every such UPDATE was
--    a non-HOT one (a column of an index predicate changed): a new entry in each of the table's
--    three indexes. Without that predicate (an organisation has a few buckets a month: the
--    consumption order still reads only its own) and with room left on each page, the UPDATE
--    is HOT. Same for the account row, updated by every movement.
DROP INDEX credit_buckets_with_credits;
CREATE INDEX credit_buckets_by_organisation ON credit_buckets (organisation_id, expires_at);
ALTER TABLE credit_buckets SET (fillfactor = 50);
ALTER TABLE credit_accounts SET (fillfactor = 50);

-- 2. The guards that keep balances to the ledger's trigger ran a PL/pgSQL call on every
--    UPDATE of an account or a bucket, the ledger's own included, to find that it was allowed.
--    The same test as a WHEN clause costs no call: outside any trigger (pg_trigger_depth() = 0
--    in the WHEN of a row trigger fired by a top-level statement) a change of a balance is
--    refused; from the ledger's trigger (depth 1) the guard is not called. The functions stay.
DROP TRIGGER credit_buckets_guard ON credit_buckets;
CREATE TRIGGER credit_buckets_guard BEFORE UPDATE ON credit_buckets
    FOR EACH ROW WHEN (pg_trigger_depth() < 1 AND NEW.remaining IS DISTINCT FROM OLD.remaining)
    EXECUTE FUNCTION credit_bucket_guard();
DROP TRIGGER credit_accounts_guard ON credit_accounts;
CREATE TRIGGER credit_accounts_guard BEFORE UPDATE ON credit_accounts
    FOR EACH ROW WHEN (pg_trigger_depth() < 1 AND (NEW.available, NEW.held) IS DISTINCT FROM (OLD.available, OLD.held))
    EXECUTE FUNCTION credit_account_guard();

-- 3. A hold in one call, so in one round trip (and, called alone, in one transaction with no
--    BEGIN and COMMIT of its own): the account's lock, the hold already placed with this key,
--    then the hold and its ledger rows drawn in the consumption order (restricted to the type
--    first, then earliest expiry, then oldest). The buckets are read after the lock by a
--    statement of their own, so with the latest committed balances (READ COMMITTED takes a
--    snapshot per statement in a function): a CTE reading them in the locking statement
--    would see those of before the wait.
--
-- `outcome`: `unknown` (no such account; nothing else set), `existing` (`hold_id` is the hold
-- placed with this key), `placed` (`hold_id`; `available`: the credits left usable at `p_now`,
-- every type), `short` (nothing written; `available`: the credits usable by this type).
CREATE FUNCTION credit_hold_place(
    p_organisation uuid, p_amount bigint, p_type text, p_key text, p_reference text,
    p_actor text, p_reason text, p_now timestamptz, p_expires_at timestamptz,
    OUT outcome text, OUT hold_id uuid, OUT available bigint)
LANGUAGE plpgsql AS $$
DECLARE
    has_account boolean;
BEGIN
    SELECT true, h.id INTO has_account, hold_id
      FROM credit_accounts a
      LEFT JOIN credit_holds h ON h.organisation_id = a.organisation_id AND h.operation_key = p_key
     WHERE a.organisation_id = p_organisation
       FOR UPDATE OF a;
    IF has_account IS NULL THEN
        outcome := 'unknown';
        RETURN;
    END IF;
    IF hold_id IS NOT NULL THEN
        outcome := 'existing';
        RETURN;
    END IF;
    WITH usable AS (
           SELECT id, remaining,
                  (sum(remaining) OVER (ORDER BY restricted_to IS NULL, expires_at, id))::bigint AS upto
             FROM credit_buckets
            WHERE organisation_id = p_organisation AND remaining > 0 AND expires_at > p_now
              AND (restricted_to IS NULL OR restricted_to = p_type)),
         take AS (
           SELECT id, least(remaining, p_amount - (upto - remaining)) AS n
             FROM usable WHERE upto - remaining < p_amount),
         enough AS (SELECT coalesce(sum(n), 0) = p_amount AS ok FROM take),
         h AS (
           INSERT INTO credit_holds (organisation_id, amount, creation_type, operation_key, reference, actor, created_at, expires_at)
           SELECT p_organisation, p_amount, p_type, p_key, p_reference, p_actor, p_now, p_expires_at
             FROM enough WHERE ok
           RETURNING id),
         l AS (
           INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at)
           SELECT p_organisation, take.id, 'hold', -take.n, take.n, h.id, p_actor, p_reason, p_reference, p_now
             FROM take, h)
    -- The statement's snapshot is from before its own inserts: the balance before the hold.
    SELECT h.id,
           (SELECT coalesce(sum(b.remaining), 0)::bigint FROM credit_buckets b
             WHERE b.organisation_id = p_organisation AND b.remaining > 0 AND b.expires_at > p_now) - p_amount
      INTO hold_id, available
      FROM h;
    IF hold_id IS NOT NULL THEN
        outcome := 'placed';
        RETURN;
    END IF;
    outcome := 'short';
    SELECT coalesce(sum(remaining), 0)::bigint INTO available
      FROM credit_buckets
     WHERE organisation_id = p_organisation AND remaining > 0 AND expires_at > p_now
       AND (restricted_to IS NULL OR restricted_to = p_type);
END $$;
