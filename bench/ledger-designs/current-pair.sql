-- The portal's schema as it is (migration 17): a hold (credit_hold_place), then its capture
-- (the statement of db::credits::resolve_hold), as pgbench scripts.
\set n random(1, 50)
\set amount random(1, 5)
\set key random(1, 9000000000000000000)
SELECT organisation_id AS org FROM bench_orgs WHERE n = :n \gset
SELECT hold_id AS h FROM credit_hold_place(:org::uuid, :amount::bigint, 'video', :key::text, 'generation-bench', 'user-bench', 'generation', now(), now() + interval '30 minutes') \gset
WITH h AS (UPDATE credit_holds SET state = 'captured', resolved_at = now(), resolved_by = 'engine' WHERE id = :h::uuid AND state = 'held' RETURNING id, organisation_id, amount, reference), l AS (INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at) SELECT h.organisation_id, d.bucket_id, 'capture', 0, d.amount, h.id, 'engine', 'succeeded', h.reference, now() FROM h JOIN credit_ledger d ON d.hold_id = :h::uuid AND d.kind = 'hold' RETURNING bucket_id) SELECT count(*) FROM l;
