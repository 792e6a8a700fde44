-- Design L2: one hold.
\set n random(1, 50)
\set amount random(1, 5)
\set key random(1, 9000000000000000000)
SELECT organisation_id AS org FROM bench_orgs WHERE n = :n \gset
SELECT l2_hold(:org::uuid, :amount::bigint, 'video', :key::text, now()) AS h;
