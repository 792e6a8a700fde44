-- Server-side sessions shared by every portal instance (actix-session store). The cookie holds
-- a random key; the table holds only its SHA-256, so a leaked table does not leak sessions.
CREATE TABLE sessions (
    key_hash   text PRIMARY KEY,
    state      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
