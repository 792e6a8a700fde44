-- Design L1: a hold, then its capture (one INSERT of the capture row; a second resolution of
-- the hold finds the unique index's row and inserts nothing).
\set n random(1, 50)
\set amount random(1, 5)
\set key random(1, 9000000000000000000)
SELECT organisation_id AS org FROM bench_orgs WHERE n = :n \gset
SELECT l_hold(:org::uuid, :amount::bigint, 'video', :key::text, now()) AS h \gset
INSERT INTO l_ledger (org, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at) SELECT org, bucket_id, 'capture', 0, amount, id, 'engine', 'succeeded', reference, now() FROM l_ledger WHERE id = :h AND kind = 'hold' ON CONFLICT (hold_id) WHERE kind IN ('capture','release') DO NOTHING;
