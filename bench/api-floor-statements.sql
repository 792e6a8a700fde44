-- One launch and its report against bench/api-floor.sql (see there), 32 accounts drawn as
-- api_bench draws its organisations.
\set org random(1, 32)
SELECT gen_random_uuid() AS hid, md5(random()::text) AS k \gset
SELECT launch(:org, ':hid', ':k');
SELECT report(':hid');

