-- Design L2: the holds table kept (its CHECKs, its unique key, its index of unresolved holds),
-- the ledger's CHECKs kept; no account row, no trigger, no foreign key. Prototype tables l2_*.
DROP TABLE IF EXISTS l2_ledger, l2_holds, l2_buckets CASCADE;
CREATE TABLE l2_buckets (id bigint PRIMARY KEY, org uuid NOT NULL, restricted_to text, amount bigint NOT NULL CHECK (amount > 0), remaining bigint NOT NULL, expires_at timestamptz NOT NULL, CHECK (remaining BETWEEN 0 AND amount)) WITH (fillfactor=50);
CREATE INDEX ON l2_buckets (org, expires_at);
CREATE TABLE l2_holds (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), org uuid NOT NULL, amount bigint NOT NULL CHECK (amount > 0),
    creation_type text NOT NULL, operation_key text NOT NULL CHECK (length(operation_key) BETWEEN 1 AND 255),
    reference text NOT NULL, actor text NOT NULL,
    state text NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'captured', 'released')),
    created_at timestamptz NOT NULL, expires_at timestamptz NOT NULL CHECK (expires_at > created_at),
    resolved_at timestamptz, resolved_by text, CHECK ((state = 'held') = (resolved_at IS NULL)),
    UNIQUE (org, operation_key)) WITH (fillfactor=70);
CREATE INDEX ON l2_holds (expires_at) WHERE state = 'held';
CREATE INDEX ON l2_holds (org, created_at);
CREATE TABLE l2_ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, org uuid NOT NULL, bucket_id bigint NOT NULL, kind text NOT NULL CHECK (kind IN ('grant', 'hold', 'capture', 'release', 'expiry', 'adjustment', 'refund')), delta bigint NOT NULL, amount bigint NOT NULL CHECK (amount > 0), hold_id uuid, actor text NOT NULL, reason text NOT NULL, reference text NOT NULL, created_at timestamptz NOT NULL,
    CHECK (CASE kind WHEN 'grant' THEN delta = amount WHEN 'release' THEN delta = amount WHEN 'hold' THEN delta = -amount WHEN 'expiry' THEN delta = -amount WHEN 'refund' THEN delta = -amount WHEN 'capture' THEN delta = 0 ELSE abs(delta) = amount END),
    CHECK ((kind IN ('hold', 'capture', 'release')) = (hold_id IS NOT NULL)));
CREATE INDEX ON l2_ledger (org, id DESC);
CREATE INDEX ON l2_ledger (org, created_at) WHERE kind = 'capture';
CREATE INDEX ON l2_ledger (hold_id) WHERE hold_id IS NOT NULL;
INSERT INTO l2_buckets SELECT n, organisation_id, NULL, 100000000, 100000000, now() + interval '1 year' FROM bench_orgs;
CREATE OR REPLACE FUNCTION l2_hold(p_org uuid, p_amount bigint, p_type text, p_key text, p_now timestamptz) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE b bigint; h uuid;
BEGIN
  SELECT id INTO h FROM l2_holds WHERE org = p_org AND operation_key = p_key;
  IF FOUND THEN RETURN h; END IF;
  UPDATE l2_buckets SET remaining = remaining - p_amount
   WHERE id = (SELECT id FROM l2_buckets WHERE org = p_org AND remaining >= p_amount AND expires_at > p_now
                 AND (restricted_to IS NULL OR restricted_to = p_type)
               ORDER BY restricted_to IS NULL, expires_at, id LIMIT 1)
     AND remaining >= p_amount
  RETURNING id INTO b;
  IF b IS NULL THEN RETURN NULL; END IF;
  INSERT INTO l2_holds (org, amount, creation_type, operation_key, reference, actor, created_at, expires_at)
  VALUES (p_org, p_amount, p_type, p_key, 'generation:x', 'user:x', p_now, p_now + interval '30 min') RETURNING id INTO h;
  INSERT INTO l2_ledger (org, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at)
  VALUES (p_org, b, 'hold', -p_amount, p_amount, h, 'user:x', 'generation', 'generation:x', p_now);
  RETURN h;
END $$;
VACUUM ANALYZE l2_buckets;
