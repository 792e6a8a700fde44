-- Security review (issue 10) and the job runner (groundwork).

-- E-mail tokens get an id, so that an owner can revoke an invitation without its hash appearing
-- in a URL.
ALTER TABLE email_tokens ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX email_tokens_id ON email_tokens (id);
CREATE INDEX email_tokens_by_organisation ON email_tokens (organisation_id, purpose) WHERE used_at IS NULL;
CREATE INDEX email_tokens_by_email ON email_tokens (lower(email), purpose);
CREATE INDEX email_tokens_expiry ON email_tokens (expires_at);

-- Sent e-mails lose the links they carried (tokens are single-use, but an unused one still works
-- until it expires): redacted_at says it was done.
ALTER TABLE outbox ADD COLUMN redacted_at timestamptz;
CREATE INDEX outbox_to_redact ON outbox (sent_at) WHERE sent_at IS NOT NULL AND redacted_at IS NULL;

CREATE INDEX rate_limits_by_window ON rate_limits (window_start);

-- Background jobs: one row per job, updated at each run (several instances share it; a run
-- holds an advisory lock, so one instance runs a job at a time).
CREATE TABLE job_runs (
    name        text PRIMARY KEY,
    last_start  timestamptz,
    last_finish timestamptz,
    last_ok     timestamptz,
    last_error  text,
    last_detail text,
    runs        bigint NOT NULL DEFAULT 0,
    failures    bigint NOT NULL DEFAULT 0
);
