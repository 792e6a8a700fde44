-- Design L1: one hold (pgbench -n -M prepared -c 50 -j 2 -T 10 -f …).
\set n random(1, 50)
\set amount random(1, 5)
\set key random(1, 9000000000000000000)
SELECT organisation_id AS org FROM bench_orgs WHERE n = :n \gset
SELECT l_hold(:org::uuid, :amount::bigint, 'video', :key::text, now()) AS h;
