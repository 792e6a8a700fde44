-- Design L4: a hold, then its capture (a HOT update of the hold's state, its capture rows).
\set n random(1, 50)
\set amount random(1, 5)
\set key random(1, 9000000000000000000)
SELECT organisation_id AS org FROM bench_orgs WHERE n = :n \gset
SELECT l4_hold(:org::uuid, :amount::bigint, 'video', :key::text, now()) AS h \gset
WITH h AS (UPDATE l4_holds SET state = 'captured', resolved_at = now(), resolved_by = 'engine' WHERE id = :h::uuid AND state = 'held' RETURNING id, org, amount, reference) INSERT INTO l2_ledger (org, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at) SELECT h.org, d.bucket_id, 'capture', 0, d.amount, h.id, 'engine', 'succeeded', h.reference, now() FROM h JOIN l2_ledger d ON d.hold_id = :h::uuid AND d.kind = 'hold';
