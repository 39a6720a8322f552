-- The worker a claim was granted to. A worker whose claim reply was lost asks again for the
-- same dispatch and is granted the same lease (the attempt is not spent twice); any other
-- worker is refused (docs/hardening.md, M2).
ALTER TABLE jobs ADD COLUMN lease_holder TEXT;
