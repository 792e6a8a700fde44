-- A renewal paid by hand may need a new Checkout Session after its last one was forgotten
-- (expired unpaid, or its delayed debit failed). Stripe keeps an idempotency key for at least
-- a day, so the order's own key gave the dead session back. Each forgotten session moves the
-- order to its next round, and the next session is asked for under a key of that round.
ALTER TABLE orders ADD COLUMN session_round integer NOT NULL DEFAULT 0 CHECK (session_round >= 0);
