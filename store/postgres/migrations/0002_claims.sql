-- accessbot schema v2: leases on due work (DESIGN.md §7). A replica claims
-- a due request by writing its owner name and the lease's end (Unix ns, by
-- the claiming replica's clock) into the request's own row, so that the
-- row lock that ClaimDue takes (FOR UPDATE SKIP LOCKED) and the claim are
-- one thing: a concurrent claimer either skips the row or, once the first
-- commits, re-reads it and sees the claim. Not indexed: ClaimDue finds
-- candidates through the deadline index. NULL: unclaimed.
ALTER TABLE accessbot_requests
    ADD COLUMN claim_owner text,
    ADD COLUMN claim_until bigint;
