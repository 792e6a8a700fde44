-- A floor for the API scenario's database work (bench/README.md, « A floor for a launch and its
-- report »): the rows a launch and its report must write at the least (the account locked and
-- its usage read, the bucket drawn, a hold row and a capture row in a ledger, the generation
-- and its outcome, the day's usage, the Idempotency-Key's stored answer), in two flat PL/pgSQL
-- functions on bare tables: no triggers, no foreign keys, no CHECK constraints, one bucket per
-- account, no refusal. Not the portal's schema and not a design to copy as it is: a measure of
-- how far the portal's statements are from what the same rows cost at the least. Load it into a
-- scratch database and drive it with bench/api-floor-statements.sql:
--
--   createdb floor && psql -d floor -f bench/api-floor.sql
--   pgbench -n -c 32 -j 2 -T 10 -f bench/api-floor-statements.sql -d floor
--   pgbench -c 32 -j 2 -T 10 <a TPC-B database at scale 32>      # the baseline, in the same run
--
-- The driver quotes its variables (':hid'): pgbench's simple protocol only (its default), not
-- -M prepared.
DROP TABLE IF EXISTS acc, bucket, ledger, gen, idem, usage_days;
CREATE TABLE acc (org int PRIMARY KEY, held bigint NOT NULL DEFAULT 0, running int NOT NULL DEFAULT 0);
CREATE TABLE bucket (id int PRIMARY KEY, org int NOT NULL, remaining bigint NOT NULL, expires_at timestamptz NOT NULL);
CREATE INDEX ON bucket (org, expires_at);
CREATE TABLE ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, org int NOT NULL, bucket_id int NOT NULL, kind text NOT NULL, delta bigint NOT NULL, amount bigint NOT NULL, hold_id uuid, actor text NOT NULL, reference text NOT NULL, created_at timestamptz NOT NULL, operation_key text);
CREATE INDEX ON ledger (org, id DESC);
CREATE UNIQUE INDEX ON ledger (org, operation_key) WHERE operation_key IS NOT NULL;
CREATE TABLE gen (id uuid PRIMARY KEY, org int NOT NULL, hold_id uuid UNIQUE, creation_type text NOT NULL, request text NOT NULL, status text NOT NULL, credits_held bigint NOT NULL, credits_charged bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL, finished_at timestamptz) WITH (fillfactor=90);
CREATE INDEX ON gen (org, created_at DESC);
CREATE TABLE idem (org int NOT NULL, key text NOT NULL, fingerprint text NOT NULL, status int, body text, created_at timestamptz NOT NULL, PRIMARY KEY (org, key));
CREATE TABLE usage_days (org int, day date, launches bigint NOT NULL, credits bigint NOT NULL, PRIMARY KEY (org, day));
INSERT INTO acc SELECT g FROM generate_series(1,32) g;
INSERT INTO bucket SELECT g, g, 1000000000, now() + interval '1 year' FROM generate_series(1,32) g;
CREATE OR REPLACE FUNCTION launch(p_org int, p_hid uuid, p_k text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r int; l bigint; c bigint;
BEGIN
SELECT a.running, u.launches, u.credits INTO r, l, c FROM acc a LEFT JOIN usage_days u ON u.org = a.org AND u.day = current_date WHERE a.org = p_org FOR UPDATE OF a;
UPDATE bucket SET remaining = remaining - 1 WHERE id = p_org;
INSERT INTO ledger (org, bucket_id, kind, delta, amount, hold_id, actor, reference, created_at, operation_key) VALUES (p_org, p_org, 'hold', 0, 1, p_hid, 'api-key:bench', 'generation:x', now(), p_k);
UPDATE acc SET held = held + 1, running = running + 1 WHERE org = p_org;
INSERT INTO gen (id, org, hold_id, creation_type, request, status, credits_held, created_at) VALUES (p_hid, p_org, p_hid, 'image', 'type=image', 'running', 1, now());
INSERT INTO usage_days VALUES (p_org, current_date, 1, 0) ON CONFLICT (org, day) DO UPDATE SET launches = usage_days.launches + 1;
INSERT INTO idem VALUES (p_org, p_k, 'fp', 201, '{"id":"bench","status":"running","credits_held":1,"available":123}', now());
RETURN 1;
END $$;
CREATE OR REPLACE FUNCTION report(p_hid uuid) RETURNS int LANGUAGE plpgsql AS $$
DECLARE o int;
BEGIN
UPDATE gen SET status = 'succeeded', credits_charged = 1, finished_at = now() WHERE id = p_hid AND status = 'running' RETURNING org INTO o;
INSERT INTO ledger (org, bucket_id, kind, delta, amount, hold_id, actor, reference, created_at) VALUES (o, o, 'capture', -1, 1, p_hid, 'engine', 'generation:x', now());
UPDATE acc SET held = held - 1, running = running - 1 WHERE org = o;
INSERT INTO usage_days VALUES (o, current_date, 0, 1) ON CONFLICT (org, day) DO UPDATE SET credits = usage_days.credits + 1;
RETURN 1;
END $$;
