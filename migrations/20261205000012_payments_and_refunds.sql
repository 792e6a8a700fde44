-- The payment provider's side of billing: refunds of packs, each with the idempotency key of its
-- outgoing call saved before the first attempt, and what the reconciliation job needs.

-- A refund of a paid pack whose credits were all unused, within 14 days. The credits are taken
-- back, the credit note (AV-…) issued and this row written in one transaction; the provider is
-- then asked under `idempotency_key` (again by the reconciliation job until it answers).
CREATE TABLE refunds (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id        uuid NOT NULL UNIQUE REFERENCES orders,
    organisation_id uuid NOT NULL REFERENCES organisations ON DELETE CASCADE,
    amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
    credits         bigint NOT NULL CHECK (credits >= 0),
    idempotency_key text NOT NULL UNIQUE,
    state           text NOT NULL DEFAULT 'requested'
                    CHECK (state IN ('requested', 'succeeded', 'failed')),
    provider_ref    text,
    failure         text,
    attempts        integer NOT NULL DEFAULT 0,
    actor           text NOT NULL,
    reason          text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    requested_at    timestamptz NOT NULL,
    completed_at    timestamptz,
    CHECK ((state = 'requested') = (completed_at IS NULL))
);
CREATE INDEX refunds_requested ON refunds (requested_at) WHERE state = 'requested';

-- The reconciliation job asks the provider about the payments still pending.
CREATE INDEX orders_pending_by_provider ON orders (provider, updated_at) WHERE state = 'pending';

-- The card a subscription's renewals are charged to, off session: Stripe's customer and payment
-- method, saved from the Checkout Session that paid the subscription (sign-up, upgrade, a
-- payment after a failed renewal). None with the test provider.
ALTER TABLE subscriptions
    ADD COLUMN payment_customer text,
    ADD COLUMN payment_method   text;
