-- Designs L3 and L4, on L2's tables (run l2-schema.sql first): L3 resolves a hold by its
-- capture rows alone (unique per hold and bucket), L4 keeps the holds' state without the
-- partial index on it (HOT updates).
-- L3: on L2's tables, a hold is resolved by its ledger rows only (unique per hold and bucket)
CREATE UNIQUE INDEX IF NOT EXISTS l2_ledger_resolved ON l2_ledger (hold_id, bucket_id) WHERE kind IN ('capture', 'release');
-- L4: holds without the partial index on their state (HOT updates)
DROP TABLE IF EXISTS l4_holds;
CREATE TABLE l4_holds (LIKE l2_holds INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH (fillfactor=70);
ALTER TABLE l4_holds ADD PRIMARY KEY (id), ADD UNIQUE (org, operation_key);
CREATE INDEX ON l4_holds (org, created_at);
CREATE INDEX ON l4_holds (expires_at);
CREATE OR REPLACE FUNCTION l4_hold(p_org uuid, p_amount bigint, p_type text, p_key text, p_now timestamptz) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE b bigint; h uuid;
BEGIN
  SELECT id INTO h FROM l4_holds WHERE org = p_org AND operation_key = p_key;
  IF FOUND THEN RETURN h; END IF;
  UPDATE l2_buckets SET remaining = remaining - p_amount
   WHERE id = (SELECT id FROM l2_buckets WHERE org = p_org AND remaining >= p_amount AND expires_at > p_now
                 AND (restricted_to IS NULL OR restricted_to = p_type)
               ORDER BY restricted_to IS NULL, expires_at, id LIMIT 1)
     AND remaining >= p_amount
  RETURNING id INTO b;
  IF b IS NULL THEN RETURN NULL; END IF;
  INSERT INTO l4_holds (org, amount, creation_type, operation_key, reference, actor, created_at, expires_at)
  VALUES (p_org, p_amount, p_type, p_key, 'generation:x', 'user:x', p_now, p_now + interval '30 min') RETURNING id INTO h;
  INSERT INTO l2_ledger (org, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at)
  VALUES (p_org, b, 'hold', -p_amount, p_amount, h, 'user:x', 'generation', 'generation:x', p_now);
  RETURN h;
END $$;
