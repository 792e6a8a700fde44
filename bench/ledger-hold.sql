-- The statements of one hold (services::credits::hold: db::credits::lock_account_for_hold, then
-- place_hold), as a pgbench script: the hold's SQL with pgbench's C client instead of the
-- portal's, to tell the database's share of a hold from the client's (see bench/README.md).
-- On a database made by `ledger_bench setup` (e.g. kept with BENCH_KEEP=1):
--
--   psql "$U" -c "CREATE TABLE bench_orgs AS SELECT row_number() OVER (ORDER BY organisation_id) AS n,
--                 organisation_id FROM credit_accounts"
--   pgbench -n -M prepared -c 50 -j 2 -T 10 -f bench/ledger-hold.sql "$U"
--
-- pgbench turns every colon-prefixed word into a parameter, even inside quotes: the literals
-- have no colon.
\set n random(1, 50)
\set amount random(1, 5)
\set key random(1, 9000000000000000000)
SELECT organisation_id AS org FROM bench_orgs WHERE n = :n \gset
BEGIN;
SELECT h.id FROM credit_accounts a LEFT JOIN credit_holds h ON h.organisation_id = a.organisation_id AND h.operation_key = :key::text WHERE a.organisation_id = :org::uuid FOR UPDATE OF a;
WITH usable AS (
     SELECT id, remaining, (sum(remaining) OVER (ORDER BY restricted_to IS NULL, expires_at, id))::bigint AS upto
     FROM credit_buckets
     WHERE organisation_id = :org::uuid AND remaining > 0 AND expires_at > now() AND (restricted_to IS NULL OR restricted_to = 'video')),
 take AS (SELECT id, least(remaining, :amount::bigint - (upto - remaining)) AS n FROM usable WHERE upto - remaining < :amount::bigint),
 enough AS (SELECT coalesce(sum(n), 0) = :amount::bigint AS ok FROM take),
 h AS (INSERT INTO credit_holds (organisation_id, amount, creation_type, operation_key, reference, actor, created_at, expires_at)
       SELECT :org::uuid, :amount::bigint, 'video', :key::text, 'generation-bench', 'user-bench', now(), now() + interval '30 minutes' FROM enough WHERE ok RETURNING id),
 l AS (INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at)
       SELECT :org::uuid, take.id, 'hold', -take.n, take.n, h.id, 'user-bench', 'generation', 'generation-bench', now() FROM take, h),
 total AS (SELECT coalesce(sum(remaining), 0)::bigint AS n FROM credit_buckets WHERE organisation_id = :org::uuid AND remaining > 0 AND expires_at > now())
SELECT h.id, (total.n - :amount::bigint) FROM h, total;
COMMIT;
