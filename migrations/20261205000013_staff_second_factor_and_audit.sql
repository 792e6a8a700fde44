-- Staff sign in with a second factor, and every staff action goes to an append-only audit log.

-- A staff member's TOTP (RFC 6238: SHA-1, 6 digits, 30 s): the secret is made by
-- `nanoclip create-staff`, which prints a single-use enrolment link (only the SHA-256 of its
-- token is kept); the secret is in force once a first code confirms it. `last_step` is the
-- 30-second step of the last code accepted: a code is never accepted twice.
CREATE TABLE staff_second_factors (
    user_id              uuid PRIMARY KEY REFERENCES users ON DELETE CASCADE,
    secret               text NOT NULL,
    -- A new secret waiting for its first code (a re-enrolment): the one in force stays so.
    pending_secret       text,
    enrolment_token_hash text UNIQUE,
    enrolment_expires_at timestamptz,
    confirmed_at         timestamptz,
    last_step            bigint NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    CHECK ((enrolment_token_hash IS NULL) = (enrolment_expires_at IS NULL))
);

-- Ten recovery codes, shown once at enrolment; each works once. Only their SHA-256 is kept.
CREATE TABLE staff_recovery_codes (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id   uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    code_hash text NOT NULL,
    used_at   timestamptz,
    UNIQUE (user_id, code_hash)
);

-- Who did what, when and why, with the values before and after. `actor` is `staff:<email>`,
-- `cli` (operator commands) or `system`. Rows are never updated or deleted.
CREATE TABLE audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor           text NOT NULL,
    organisation_id uuid REFERENCES organisations ON DELETE SET NULL,
    action          text NOT NULL,
    reason          text NOT NULL CHECK (length(trim(reason)) BETWEEN 1 AND 500),
    before          jsonb,
    after           jsonb,
    created_at      timestamptz NOT NULL
);
CREATE INDEX audit_log_by_organisation ON audit_log (organisation_id, id DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- An organisation deleted later keeps its entries (organisation_id set to NULL).
    IF TG_OP = 'UPDATE' AND NEW.organisation_id IS NULL AND OLD.organisation_id IS NOT NULL
       AND NEW.id = OLD.id AND NEW.actor = OLD.actor AND NEW.action = OLD.action
       AND NEW.reason = OLD.reason AND NEW.before IS NOT DISTINCT FROM OLD.before
       AND NEW.after IS NOT DISTINCT FROM OLD.after AND NEW.created_at = OLD.created_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
