-- A renewal's off-session charge that the provider answers « processing » (a bank debit that
-- clears days later) is not a failure: its attempt stays open, with its PaymentIntent, until
-- the payment's webhook or a later look at the PaymentIntent answers it. Before, it counted
-- as a failed charge, and the retry charged the card a second time while the first debit was
-- still clearing.
--
-- `payment_intent`: the provider's payment the attempt made (asked about by its id, never by
-- charging again: the call's idempotency key is forgotten by the provider after a day).
-- `ask_again_at`: when a charge still processing is asked about again.
ALTER TABLE charge_attempts
    ADD COLUMN payment_intent text,
    ADD COLUMN ask_again_at timestamptz;
