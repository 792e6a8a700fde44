-- The database's share of a launch and its report, without the portal (bench/credits api,
-- « statements alone »): the statements the portal sends for `POST /api/v1/generations`
-- (src/services/generations.rs, launch_idempotent) and for the engine's report (report), with
-- the same arguments, driven by pgbench on the API scenario's database. The first query
-- stands for the API key's lookup and draws the organisation, as api_bench draws its key.
-- Keep it in step with those functions.
\set n random(0, :organisations - 1)
SELECT organisation_id AS org, gen_random_uuid() AS gid, gen_random_uuid()::text AS k FROM api_keys ORDER BY id OFFSET :n LIMIT 1 \gset
BEGIN;
SELECT outcome FROM generation_launch_open(':org', ':k', 'fp', now());
SELECT outcome FROM generation_launch_hold(':org', 1, 'image', 'generation:' || ':gid', 'generation:' || ':gid', 'api-key:bench', now(), now() + interval '30 minutes', ':gid', 'type=image', '', 'api');
INSERT INTO idempotency_keys (organisation_id, key, fingerprint, status, body, created_at) VALUES (':org', ':k', 'fp', 201, '{"id":"bench"}', now());
COMMIT;
SELECT outcome FROM generation_report(':gid', 'succeeded', now(), interval '30 minutes');
