-- The reconciliation job also asks the provider about the renewals whose off-session charge
-- failed and whose owner was sent to pay by hand (a session of the provider's): their own
-- partial index, next to `orders_pending_by_provider`, so that neither half reads the table.
CREATE INDEX orders_hand_paid_renewals_by_provider ON orders (provider, updated_at)
    WHERE state = 'failed' AND kind = 'renewal' AND provider_ref IS NOT NULL;
