-- A renewal paid by hand is never charged off session as well (issue: a retry that came due
-- while the owner was on Stripe's page, or after the owner paid there but before the webhook,
-- charged the card a second time).
--
-- `hand_payment_at`: when the owner last started paying the order on the provider's page. Set,
-- under the subscription's lock, before the provider is asked for the session (so before the
-- order has its `provider_ref`); a charge attempt is not claimed while the order has a session
-- (`provider_ref`, until the reconciliation forgets a session that expired unpaid) or within a
-- few minutes of this mark (a session being made, whose reference is not saved yet).
ALTER TABLE orders ADD COLUMN hand_payment_at timestamptz;
