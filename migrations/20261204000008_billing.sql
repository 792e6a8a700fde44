-- Billing: orders paid through a payment provider (a built-in test provider in development,
-- Stripe Checkout in production), the provider's events recorded once, and invoices and credit
-- notes numbered per year without gaps.

-- An order moves only forward: created → pending → failed | cancelled | expired → paid →
-- refunded (a payment confirmed late still counts: the money was taken). Credits are granted
-- in the transaction that marks it paid, once (the grant's key is the order).
CREATE TABLE orders (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('pack', 'upgrade', 'renewal')),
    pack_id         text REFERENCES packs,
    plan_id         text REFERENCES plans,
    label           text NOT NULL,             -- what the invoice line says
    amount_cents    bigint NOT NULL CHECK (amount_cents > 0),   -- TTC
    credits         bigint NOT NULL DEFAULT 0 CHECK (credits >= 0),
    restricted_to   text REFERENCES creation_types,
    state           text NOT NULL DEFAULT 'created'
                    CHECK (state IN ('created', 'pending', 'failed', 'cancelled', 'expired', 'paid', 'refunded')),
    failure         text,                      -- the provider's reason for a failed payment
    provider        text NOT NULL CHECK (provider IN ('test', 'stripe')),
    provider_ref    text UNIQUE,               -- e.g. Stripe's Checkout Session id
    -- The key of the outgoing call that starts the payment, saved before its first attempt.
    idempotency_key text NOT NULL UNIQUE,
    -- The confirmation form's key: submitting it twice gives the same order.
    form_key        text NOT NULL,
    created_by      uuid REFERENCES users ON DELETE SET NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    paid_at         timestamptz,
    UNIQUE (organisation_id, form_key),
    CHECK ((kind = 'pack') = (pack_id IS NOT NULL)),
    CHECK ((state IN ('paid', 'refunded')) = (paid_at IS NOT NULL))
);
CREATE INDEX orders_by_organisation ON orders (organisation_id, created_at DESC);
CREATE INDEX orders_pending ON orders (expires_at) WHERE state IN ('created', 'pending');

-- Each event of the provider, recorded in the transaction of its effect: a second delivery
-- finds it and does nothing.
CREATE TABLE payment_events (
    event_id    text PRIMARY KEY,
    provider    text NOT NULL,
    kind        text NOT NULL,
    order_id    uuid REFERENCES orders,
    received_at timestamptz NOT NULL
);

-- Gap-free numbers: a counter row per (series, year), locked in the transaction that issues.
CREATE TABLE document_counters (
    series text NOT NULL CHECK (series IN ('FA', 'AV')),
    year   integer NOT NULL,
    last   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (series, year)
);

-- Invoices (FA-2026-000001) and credit notes (AV-2026-000001), with the seller's and the
-- buyer's details as they were when issued.
CREATE TABLE invoices (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    number          text NOT NULL UNIQUE,
    series          text NOT NULL CHECK (series IN ('FA', 'AV')),
    year            integer NOT NULL,
    sequence        integer NOT NULL CHECK (sequence > 0),
    order_id        uuid NOT NULL REFERENCES orders,
    organisation_id uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    buyer_name      text NOT NULL,
    buyer_email     text NOT NULL,
    label           text NOT NULL,
    ht_cents        bigint NOT NULL,
    tva_cents       bigint NOT NULL,
    ttc_cents       bigint NOT NULL CHECK (ttc_cents = ht_cents + tva_cents),
    issued_at       timestamptz NOT NULL,
    UNIQUE (series, year, sequence),
    UNIQUE (order_id, series)
);
CREATE INDEX invoices_by_organisation ON invoices (organisation_id, issued_at DESC);

-- A downgrade waits for the end of the period (and can be cancelled until then).
ALTER TABLE subscriptions
    ADD COLUMN scheduled_plan_id text REFERENCES plans,
    ADD COLUMN scheduled_at timestamptz;
