#!/usr/bin/env python3
"""The floor of bench/api-floor.sql behind the portal's two function signatures
(`generation_launch_fast`, `generation_report`), with some of the portal's real pieces put back:
what a launch and its report cost through the portal (bench/README.md, « Nested calls, and the
floor through the portal »). Measurement only: load it into a COPY of the API scenario's kept
database, never into a portal's database.

    python3 bench/api-floor-variants.py FLAGS | psql -v ON_ERROR_STOP=1 -d COPY

FLAGS, letters (none: the floor alone):
  G  the portal's `generations` table instead of a bare one
  L  the portal's `credit_ledger` (its indexes and triggers) instead of a bare one
  H  the table of open holds (the account locked, the holds counted, inserted, deleted)
     instead of two counters on a bare account row
  K  the Idempotency-Key by `idempotency_key_open` (a nested call) and the portal's table
  k  the same written in the launch (no nested call); j: the lock alone, no stored-answer read
  B  the portal's buckets: read in one aggregate, the first one drawn
  b  the portal's buckets, the first one drawn without the aggregate read
  C  the organisation's context (`organisation_launch_context`) read with the account's lock
  U  the day's launches and the month's captures in the portal's two day tables
  R  the portal's own `generation_report` (needs G, L and H)
"""
import sys
f = set(sys.argv[1] if len(sys.argv) > 1 else "")
TABLES = """DROP TABLE IF EXISTS f_acc, f_bucket, f_ledger, f_gen, f_idem, f_usage;
CREATE TABLE f_acc (org uuid PRIMARY KEY, held bigint NOT NULL DEFAULT 0, running int NOT NULL DEFAULT 0);
CREATE TABLE f_bucket (org uuid PRIMARY KEY, bucket_id bigint NOT NULL, remaining bigint NOT NULL);
CREATE TABLE f_ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, org uuid NOT NULL, kind text NOT NULL,
  delta bigint NOT NULL, amount bigint NOT NULL, hold_id uuid, actor text NOT NULL, reference text NOT NULL,
  created_at timestamptz NOT NULL, operation_key text);
CREATE INDEX ON f_ledger (org, id DESC);
CREATE UNIQUE INDEX ON f_ledger (org, operation_key) WHERE operation_key IS NOT NULL;
CREATE TABLE f_gen (id uuid PRIMARY KEY, org uuid NOT NULL, hold_id uuid UNIQUE, creation_type text NOT NULL,
  request text NOT NULL, prompt text, status text NOT NULL, credits_held bigint NOT NULL,
  credits_charged bigint NOT NULL DEFAULT 0, via text, created_at timestamptz NOT NULL, finished_at timestamptz)
  WITH (fillfactor=90);
CREATE INDEX ON f_gen (org, created_at DESC);
CREATE TABLE f_idem (org uuid NOT NULL, key text NOT NULL, fingerprint text NOT NULL, status int, body text,
  created_at timestamptz NOT NULL, PRIMARY KEY (org, key));
CREATE TABLE f_usage (org uuid, day date, launches bigint NOT NULL, credits bigint NOT NULL, PRIMARY KEY (org, day));
INSERT INTO f_acc (org) SELECT organisation_id FROM credit_accounts;
INSERT INTO f_bucket SELECT DISTINCT ON (organisation_id) organisation_id, id, 1000000000 FROM credit_buckets
 ORDER BY organisation_id, remaining DESC;

"""
sig_l = """CREATE OR REPLACE FUNCTION generation_launch_fast(
    p_organisation uuid, p_key text, p_fingerprint text, p_now timestamptz,
    p_plan_id text, p_raise_daily integer, p_raise_monthly bigint, p_raise_concurrent integer,
    p_max_running bigint, p_max_today bigint, p_max_month bigint,
    p_amount bigint, p_type text, p_reference text, p_actor text, p_expires_at timestamptz,
    p_generation uuid, p_request text, p_prompt text, p_via text,
    p_body_head text, p_body_tail text,
    OUT outcome text, OUT answer_status integer, OUT answer_body text,
    OUT hold_id uuid, OUT available bigint)
LANGUAGE plpgsql SET nanoclip.ledger = 'counted' AS $$
DECLARE r bigint; l bigint; c bigint; today date := (p_now AT TIME ZONE 'Europe/Paris')::date; cx record; ub record; bid bigint;
BEGIN
"""
body = []
if 'k' in f or 'j' in f:
    body.append("""IF NOT pg_try_advisory_xact_lock(hashtextextended(p_organisation::text || ' ' || p_key, 0)) THEN outcome := 'in_progress'; RETURN; END IF;""")
if 'k' in f:
    body.append("""PERFORM 1 FROM idempotency_keys k WHERE k.organisation_id = p_organisation AND k.key = p_key;
IF FOUND THEN outcome := 'slow'; RETURN; END IF;""")
if 'K' in f:
    body.append("""SELECT k.outcome, k.answer_status, k.answer_body INTO outcome, answer_status, answer_body
  FROM idempotency_key_open(p_organisation, p_key, p_fingerprint) k;
IF outcome IS NOT NULL THEN RETURN; END IF;""")
if 'C' in f:
    body.append("""SELECT x.plan_id, x.suspended INTO cx FROM credit_accounts a
  CROSS JOIN LATERAL organisation_launch_context(a.organisation_id, p_now) x
  WHERE a.organisation_id = p_organisation FOR UPDATE OF a;
IF cx.plan_id IS DISTINCT FROM p_plan_id THEN outcome := 'slow'; RETURN; END IF;""")
if 'H' in f:
    if 'C' not in f:
        body.append("PERFORM 1 FROM credit_accounts a WHERE a.organisation_id = p_organisation FOR UPDATE;")
    body.append("SELECT count(*), coalesce(sum(h.amount), 0) INTO r, c FROM credit_holds_open h WHERE h.organisation_id = p_organisation;")
else:
    body.append("SELECT a.running INTO r FROM f_acc a WHERE a.org = p_organisation FOR UPDATE;")
if 'U' in f:
    body.append("""SELECT coalesce(sum(d.launches), 0) INTO l FROM credit_usage_days d WHERE d.organisation_id = p_organisation AND d.day >= today;
SELECT coalesce(sum(k.credits), 0) INTO c FROM credit_capture_days k WHERE k.organisation_id = p_organisation
   AND k.day >= date_trunc('month', p_now AT TIME ZONE 'Europe/Paris')::date;""")
else:
    body.append("SELECT u.launches INTO l FROM f_usage u WHERE u.org = p_organisation AND u.day = today;")
body.append("IF r >= p_max_running OR coalesce(l, 0) >= p_max_today THEN outcome := 'slow'; RETURN; END IF;")
body.append("hold_id := gen_random_uuid();")
if 'B' in f:
    body.append("""SELECT (array_agg(q.id ORDER BY q.restricted_to IS NULL, q.expires_at, q.id) FILTER (WHERE q.usable))[1] AS first_id,
       (array_agg(q.remaining ORDER BY q.restricted_to IS NULL, q.expires_at, q.id) FILTER (WHERE q.usable))[1] AS first_left,
       coalesce(sum(q.remaining) FILTER (WHERE q.expires_at > p_now), 0)::bigint AS available
  INTO ub
  FROM (SELECT id, remaining, restricted_to, expires_at,
               expires_at > p_now AND (restricted_to IS NULL OR restricted_to = p_type) AS usable
          FROM credit_buckets WHERE organisation_id = p_organisation AND remaining > 0) q;
bid := ub.first_id; available := ub.available - p_amount;
UPDATE credit_buckets SET remaining = remaining - p_amount WHERE id = bid;""")
elif 'b' in f:
    body.append("""SELECT bucket_id INTO bid FROM f_bucket WHERE org = p_organisation;
UPDATE credit_buckets SET remaining = remaining - p_amount WHERE id = bid RETURNING remaining INTO available;""")
else:
    body.append("UPDATE f_bucket SET remaining = remaining - p_amount WHERE org = p_organisation RETURNING remaining, bucket_id INTO available, bid;")
if 'L' in f:
    body.append("""INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason,
                           reference, created_at, operation_key, creation_type, expires_at)
VALUES (p_organisation, bid, 'hold', -p_amount, p_amount, hold_id, p_actor, 'generation',
        p_reference, p_now, p_reference, p_type, p_expires_at);""")
else:
    body.append("""INSERT INTO f_ledger (org, kind, delta, amount, hold_id, actor, reference, created_at, operation_key)
VALUES (p_organisation, 'hold', 0, p_amount, hold_id, p_actor, p_reference, p_now, p_reference);""")
if 'H' in f:
    body.append("INSERT INTO credit_holds_open (hold_id, organisation_id, amount, expires_at) VALUES (hold_id, p_organisation, p_amount, p_expires_at);")
else:
    body.append("UPDATE f_acc SET held = held + p_amount, running = running + 1 WHERE org = p_organisation;")
if 'G' in f:
    body.append("""INSERT INTO generations (id, organisation_id, hold_id, creation_type, request, prompt, status,
                         credits_held, via, launched_by, created_at)
VALUES (p_generation, p_organisation, hold_id, p_type, p_request, p_prompt, 'running',
        p_amount, p_via, p_actor, p_now);""")
else:
    body.append("""INSERT INTO f_gen (id, org, hold_id, creation_type, request, prompt, status, credits_held, via, created_at)
VALUES (p_generation, p_organisation, hold_id, p_type, p_request, p_prompt, 'running', p_amount, p_via, p_now);""")
if 'U' in f:
    body.append("""INSERT INTO credit_usage_days AS d (organisation_id, day, launches) VALUES (p_organisation, today, 1)
ON CONFLICT (organisation_id, day) DO UPDATE SET launches = d.launches + 1;""")
else:
    body.append("""INSERT INTO f_usage VALUES (p_organisation, today, 1, 0)
  ON CONFLICT (org, day) DO UPDATE SET launches = f_usage.launches + 1;""")
body.append("answer_status := 201; answer_body := p_body_head || available::text || p_body_tail;")
if 'K' in f or 'k' in f or 'j' in f:
    body.append("""INSERT INTO idempotency_keys (organisation_id, key, fingerprint, status, body, created_at)
VALUES (p_organisation, p_key, p_fingerprint, answer_status, answer_body, p_now)
ON CONFLICT (organisation_id, key) DO UPDATE
   SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, body = EXCLUDED.body, created_at = EXCLUDED.created_at
 WHERE idempotency_keys.status IS NULL;""")
else:
    body.append("INSERT INTO f_idem VALUES (p_organisation, p_key, p_fingerprint, answer_status, answer_body, p_now);")
body.append("outcome := 'launched';\nEND $$;")
print(TABLES)
print(sig_l + "\n".join(body))

gt = "generations" if 'G' in f else "f_gen"
oc = "organisation_id" if 'G' in f else "org"
rep = [f"""CREATE OR REPLACE FUNCTION generation_report(
    p_generation uuid, p_status text, p_now timestamptz, p_timeout interval,
    OUT outcome text, OUT id uuid, OUT organisation_id uuid, OUT hold_id uuid,
    OUT creation_type text, OUT request text, OUT prompt text, OUT status text,
    OUT refusal_rule text, OUT refusal jsonb, OUT credits_held bigint, OUT credits_charged bigint,
    OUT via text, OUT created_at timestamptz, OUT finished_at timestamptz)
LANGUAGE plpgsql SET nanoclip.ledger = 'counted' AS $$
#variable_conflict use_column
DECLARE g {gt}%ROWTYPE; o uuid; bid bigint; amt bigint;
BEGIN
UPDATE {gt} x SET status = p_status, credits_charged = x.credits_held, finished_at = p_now
 WHERE x.id = p_generation AND x.status = 'running' RETURNING x.* INTO g;
IF NOT FOUND THEN outcome := 'not_found'; RETURN; END IF;
o := g.{oc}; amt := g.credits_held;"""]
if 'H' in f:
    rep.append("DELETE FROM credit_holds_open h WHERE h.hold_id = g.hold_id;")
else:
    rep.append("UPDATE f_acc SET held = held - amt, running = running - 1 WHERE org = o;")
if 'L' in f:
    rep.append("""SELECT d.bucket_id INTO bid FROM credit_ledger d WHERE d.hold_id = g.hold_id AND d.kind = 'hold';
INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at)
VALUES (o, bid, 'capture', 0, amt, g.hold_id, 'engine', p_status, 'generation', p_now);""")
else:
    rep.append("""INSERT INTO f_ledger (org, kind, delta, amount, hold_id, actor, reference, created_at)
VALUES (o, 'capture', -amt, amt, g.hold_id, 'engine', 'generation', p_now);""")
if 'U' in f:
    rep.append("""INSERT INTO credit_capture_days AS k (organisation_id, day, credits) VALUES (o, (p_now AT TIME ZONE 'Europe/Paris')::date, amt)
ON CONFLICT (organisation_id, day) DO UPDATE SET credits = k.credits + EXCLUDED.credits;""")
else:
    rep.append("""INSERT INTO f_usage VALUES (o, (p_now AT TIME ZONE 'Europe/Paris')::date, 0, amt)
  ON CONFLICT (org, day) DO UPDATE SET credits = f_usage.credits + EXCLUDED.credits;""")
rep.append(f"""outcome := 'done'; id := g.id; organisation_id := o; hold_id := g.hold_id; creation_type := g.creation_type;
request := g.request; prompt := g.prompt; status := g.status; credits_held := g.credits_held;
credits_charged := g.credits_charged; via := g.via; created_at := g.created_at; finished_at := g.finished_at;
END $$;""")
if "R" not in f:
    print("\n".join(rep))
