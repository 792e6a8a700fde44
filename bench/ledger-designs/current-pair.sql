-- The portal's schema as it is (migration 24, `holds_in_the_ledger`): a hold (credit_hold_place),
-- then its capture (the statement of db::credits::resolve_hold), as pgbench scripts. Before
-- migration 24 the capture updated the hold's row in `credit_holds` (see bench/README.md).
\set n random(1, 50)
\set amount random(1, 5)
\set key random(1, 9000000000000000000)
SELECT organisation_id AS org FROM bench_orgs WHERE n = :n \gset
SELECT hold_id AS h FROM credit_hold_place(:org::uuid, :amount::bigint, 'video', :key::text, 'generation-bench', 'user-bench', 'generation', now(), now() + interval '30 minutes') \gset
WITH h AS (DELETE FROM credit_holds_open WHERE hold_id = :h::uuid RETURNING hold_id, organisation_id, amount), l AS (INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at) SELECT h.organisation_id, d.bucket_id, 'capture', 0, d.amount, h.hold_id, 'engine', 'succeeded', d.reference, now() FROM h JOIN credit_ledger d ON d.hold_id = :h::uuid AND d.kind = 'hold' ORDER BY d.bucket_id RETURNING bucket_id) SELECT h.organisation_id, h.amount, EXISTS (SELECT 1 FROM l JOIN credit_buckets b ON b.id = l.bucket_id WHERE 'capture' = 'release' AND b.expires_at <= now()) FROM h;
