-- Design L1 (bench/README.md, « Designs measured »): a hold is a ledger row; no holds table, no
-- account row, no trigger, no foreign key. Run on a database made by `ledger_bench setup` with
-- its `bench_orgs` table (bench/ledger-hold.sql says how). Prototype tables l_*: not the portal's.
DROP TABLE IF EXISTS l_ledger, l_buckets CASCADE;
CREATE TABLE l_buckets (id bigint PRIMARY KEY, org uuid NOT NULL, restricted_to text, amount bigint NOT NULL, remaining bigint NOT NULL, expires_at timestamptz NOT NULL) WITH (fillfactor=50);
CREATE INDEX ON l_buckets (org, expires_at);
CREATE TABLE l_ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, org uuid NOT NULL, bucket_id bigint NOT NULL, kind text NOT NULL, delta bigint NOT NULL, amount bigint NOT NULL, hold_id bigint, op_key text, actor text NOT NULL, reason text NOT NULL, reference text NOT NULL, created_at timestamptz NOT NULL, expires_at timestamptz);
CREATE INDEX ON l_ledger (org, id DESC);
CREATE UNIQUE INDEX l_ledger_hold_key ON l_ledger (org, op_key) WHERE kind = 'hold';
CREATE UNIQUE INDEX l_ledger_resolved ON l_ledger (hold_id) WHERE kind IN ('capture','release');
CREATE INDEX ON l_ledger (org, created_at) WHERE kind = 'capture';
INSERT INTO l_buckets SELECT n, organisation_id, NULL, 10000000, 10000000, now() + interval '1 year' FROM bench_orgs;
CREATE OR REPLACE FUNCTION l_hold(p_org uuid, p_amount bigint, p_type text, p_key text, p_now timestamptz) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE b bigint; h bigint;
BEGIN
  SELECT id INTO h FROM l_ledger WHERE org = p_org AND op_key = p_key AND kind = 'hold';
  IF FOUND THEN RETURN h; END IF;
  UPDATE l_buckets SET remaining = remaining - p_amount
   WHERE id = (SELECT id FROM l_buckets WHERE org = p_org AND remaining >= p_amount AND expires_at > p_now
                 AND (restricted_to IS NULL OR restricted_to = p_type)
               ORDER BY restricted_to IS NULL, expires_at, id LIMIT 1)
     AND remaining >= p_amount
  RETURNING id INTO b;
  IF b IS NULL THEN RETURN NULL; END IF;
  INSERT INTO l_ledger (org, bucket_id, kind, delta, amount, op_key, actor, reason, reference, created_at, expires_at)
  VALUES (p_org, b, 'hold', -p_amount, p_amount, p_key, 'user:x', 'generation', 'generation:x', p_now, p_now + interval '30 min')
  RETURNING id INTO h;
  RETURN h;
END $$;
VACUUM ANALYZE l_buckets;
