-- Renewal charges, past-due subscriptions, retries and suspension; paid sign-up.
--
-- Each period's renewal is an order (kind `renewal`) of the period's plan price, charged
-- off-session through the payment provider, one per (subscription, period start) and paid once
-- like any order. A failed charge makes the subscription `past_due` (no allotment until paid);
-- it is tried again 1, 3 and 7 days after the first failure; after the last failure it is
-- `suspended` (launches refused) until paid. A sign-up is an order (kind `signup`) for the first
-- period: the subscription starts when it is paid.

ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_status_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_status_check
    CHECK (status IN ('unpaid', 'active', 'past_due', 'suspended'));
ALTER TABLE subscriptions
    -- The first failed charge of the arrears (the retry schedule counts from it).
    ADD COLUMN past_due_since  timestamptz,
    -- Failed charges since then (the first one included).
    ADD COLUMN failed_charges  integer NOT NULL DEFAULT 0 CHECK (failed_charges >= 0),
    -- When the job charges again (null: no retry scheduled).
    ADD COLUMN next_retry_at   timestamptz,
    ADD CONSTRAINT subscriptions_retry_only_past_due
        CHECK (next_retry_at IS NULL OR status = 'past_due');
CREATE INDEX subscriptions_retry_due ON subscriptions (next_retry_at) WHERE next_retry_at IS NOT NULL;

ALTER TABLE orders DROP CONSTRAINT orders_kind_check;
ALTER TABLE orders ADD CONSTRAINT orders_kind_check
    CHECK (kind IN ('pack', 'upgrade', 'renewal', 'signup'));
-- The period a renewal pays for: its number and its first instant.
ALTER TABLE orders
    ADD COLUMN period_number integer CHECK (period_number >= 1),
    ADD COLUMN period_start  timestamptz,
    ADD CONSTRAINT orders_renewal_has_its_period
        CHECK ((kind = 'renewal') = (period_number IS NOT NULL AND period_start IS NOT NULL)),
    ADD CONSTRAINT orders_plan_orders_name_the_plan
        CHECK (kind NOT IN ('renewal', 'signup', 'upgrade') OR plan_id IS NOT NULL);
-- One renewal order per (subscription, period): two runners cannot charge a period twice.
CREATE UNIQUE INDEX orders_one_renewal_per_period ON orders (organisation_id, period_start)
    WHERE kind = 'renewal';

-- Each off-session charge of an order, recorded (with the idempotency key of the outgoing call)
-- before the call: inserting it is the claim (a second runner conflicts and stays out), and an
-- attempt left without an answer (a crash) is asked again with the same key.
CREATE TABLE charge_attempts (
    order_id        uuid NOT NULL REFERENCES orders ON DELETE CASCADE,
    number          integer NOT NULL CHECK (number >= 1),
    idempotency_key text NOT NULL UNIQUE,
    started_at      timestamptz NOT NULL,
    answered_at     timestamptz,
    outcome         text CHECK (outcome IN ('paid', 'card_declined', 'insufficient_funds', 'expired_card', 'no_answer')),
    PRIMARY KEY (order_id, number),
    CHECK ((answered_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX charge_attempts_unanswered ON charge_attempts (started_at) WHERE answered_at IS NULL;

-- The built-in test provider's answer to off-session charges, per organisation (development
-- and tests; `nanoclip test-payment` sets it). No row: approved.
CREATE TABLE test_provider_settings (
    organisation_id uuid PRIMARY KEY REFERENCES organisations ON DELETE CASCADE,
    off_session     text NOT NULL
                    CHECK (off_session IN ('approve', 'card_declined', 'insufficient_funds', 'expired_card', 'no_answer')),
    updated_at      timestamptz NOT NULL
);
