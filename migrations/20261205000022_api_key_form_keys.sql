-- A key created from /compte/api carries the form's key: the same form sent twice (a reload
-- of the page that shows the secret, a double click) creates one key, not a second one whose
-- secret the owner never sees.
ALTER TABLE api_keys ADD COLUMN form_key text;
CREATE UNIQUE INDEX api_keys_one_per_form ON api_keys (organisation_id, form_key) WHERE form_key IS NOT NULL;
