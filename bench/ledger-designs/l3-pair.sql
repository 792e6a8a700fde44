-- Design L3: a hold (L2's), then its capture by its capture rows alone.
\set n random(1, 50)
\set amount random(1, 5)
\set key random(1, 9000000000000000000)
SELECT organisation_id AS org FROM bench_orgs WHERE n = :n \gset
SELECT l2_hold(:org::uuid, :amount::bigint, 'video', :key::text, now()) AS h \gset
INSERT INTO l2_ledger (org, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at) SELECT d.org, d.bucket_id, 'capture', 0, d.amount, d.hold_id, 'engine', 'succeeded', d.reference, now() FROM l2_ledger d WHERE d.hold_id = :h::uuid AND d.kind = 'hold' ORDER BY d.bucket_id ON CONFLICT (hold_id, bucket_id) WHERE kind IN ('capture', 'release') DO NOTHING;
