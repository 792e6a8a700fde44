-- Design L4: one hold into the holds table without the partial index on state.
\set n random(1, 50)
\set amount random(1, 5)
\set key random(1, 9000000000000000000)
SELECT organisation_id AS org FROM bench_orgs WHERE n = :n \gset
SELECT l4_hold(:org::uuid, :amount::bigint, 'video', :key::text, now()) AS h;
