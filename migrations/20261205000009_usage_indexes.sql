-- The fair-use usage of a launch (running renders, today's launches, this month's credits) is
-- read under the organisation's lock: each part gets an index that reads only its own rows, so
-- that a launch costs the same whatever the organisation's history.
CREATE INDEX credit_holds_running ON credit_holds (organisation_id) INCLUDE (amount) WHERE state = 'held';
CREATE INDEX credit_holds_captured_by_month ON credit_holds (organisation_id, resolved_at) INCLUDE (amount)
    WHERE state = 'captured';
