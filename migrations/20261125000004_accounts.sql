-- Accounts: organisations (a church or a network) hold the subscription; their users share it.
-- Staff accounts belong to no organisation.

CREATE TABLE organisations (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                  text NOT NULL CHECK (length(name) BETWEEN 2 AND 160),
    plan_id               text NOT NULL REFERENCES plans,
    low_balance_threshold bigint NOT NULL DEFAULT 5 CHECK (low_balance_threshold BETWEEN 0 AND 100000),
    created_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id   uuid REFERENCES organisations ON DELETE CASCADE,
    email             text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash     text NOT NULL,
    role              text NOT NULL CHECK (role IN ('owner', 'member', 'staff')),
    -- Sessions carry the epoch they were opened in; bumping it signs the user out everywhere.
    session_epoch     integer NOT NULL DEFAULT 0,
    email_verified_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'staff') = (organisation_id IS NULL))
);
CREATE UNIQUE INDEX users_email_unique ON users (lower(email));
CREATE INDEX users_by_organisation ON users (organisation_id);
-- One owner per organisation.
CREATE UNIQUE INDEX one_owner_per_organisation ON users (organisation_id) WHERE role = 'owner';

-- Until billing exists, development starts subscriptions unpaid.
CREATE TABLE subscriptions (
    organisation_id uuid PRIMARY KEY REFERENCES organisations ON DELETE CASCADE,
    plan_id         text NOT NULL REFERENCES plans,
    status          text NOT NULL CHECK (status IN ('unpaid', 'active', 'past_due')),
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL CHECK (period_end > period_start)
);

-- Single-use links sent by e-mail: activation, password reset, e-mail change, invitation.
-- Only the SHA-256 of the token is kept.
CREATE TABLE email_tokens (
    token_hash      text PRIMARY KEY,
    purpose         text NOT NULL CHECK (purpose IN ('activation', 'reset', 'email_change', 'invitation')),
    user_id         uuid REFERENCES users ON DELETE CASCADE,
    organisation_id uuid REFERENCES organisations ON DELETE CASCADE,
    email           text NOT NULL,
    created_by      uuid REFERENCES users ON DELETE SET NULL,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_tokens_by_user ON email_tokens (user_id, purpose);

-- Outgoing e-mail: written in the transaction of the action that causes it, delivered after.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    to_address text NOT NULL,
    subject    text NOT NULL,
    body_text  text NOT NULL,
    body_html  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    attempts   integer NOT NULL DEFAULT 0,
    next_try   timestamptz NOT NULL DEFAULT now(),
    last_error text
);
CREATE INDEX outbox_pending ON outbox (next_try) WHERE sent_at IS NULL;
