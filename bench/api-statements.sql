-- The database's share of a launch and its report, without the portal (bench/credits api,
-- « statements alone »): the statements the portal sends for `POST /api/v1/generations` once
-- the organisation's context is known (src/services/generations.rs, launch_fast: one
-- statement, `generation_launch_fast`) and for the engine's report (report: one statement,
-- `generation_report`), with the same arguments as the portal gives them for the benchmark's
-- organisations (plan Réseau, the operator's raise: 100000 a day, 10000000 credits a month,
-- 1000 at once; an image, 1 credit), driven by pgbench on the API scenario's database. The API
-- key's lookup is kept by the portal's read cache: no statement. The organisation is drawn
-- from `:orgs` (their ids, `{…}`, given by bench/credits), as api_bench draws its key. A
-- launch not made in that one statement (`slow`) stops the run: it would measure nothing.
-- Keep it in step with those functions.
\set n random(1, :organisations)
SELECT ('{:orgs}'::uuid[])[:n] AS org, gen_random_uuid() AS gid, gen_random_uuid()::text AS k \gset
SELECT (outcome = 'launched')::int AS launched FROM generation_launch_fast(':org', ':k', 'fp', now(), 'reseau', 100000, 10000000, 1000, 999, 99999, 9999999, 1, 'image', 'generation:' || ':gid', 'api-key:bench', now() + interval '30 minutes', ':gid', 'type=image', '', 'api', '{"id":"bench","status":"running","credits_held":1,"available":', '}') \gset
\if :launched = 0
SELECT 1 / 0 AS the_launch_was_not_made_in_one_statement;
\endif
SELECT outcome FROM generation_report(':gid', 'succeeded', now(), interval '30 minutes');
