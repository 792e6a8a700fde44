-- The statement of one hold (services::credits::hold: db::credits::place_hold, the SQL function
-- credit_hold_place of migration `holds_in_the_ledger`, called outside a transaction, so one by
-- itself), as a pgbench script: the hold's SQL with pgbench's C client instead of the portal's,
-- to tell the database's share of a hold from the client's (see bench/README.md).
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
SELECT outcome, hold_id, available FROM credit_hold_place(:org::uuid, :amount::bigint, 'video', :key::text, 'generation-bench', 'user-bench', 'generation', now(), now() + interval '30 minutes');
