-- Token lifecycle: why a token was revoked (and, for a leak, where it was found), PATs
-- that may rotate themselves, and rotation with a grace period for the old token.

-- 'leaked' (a secret scanning report), or NULL (revoked by its owner, its holder or before this
-- column existed). revoked_url: the report's public URL where the token was found.
ALTER TABLE tokens ADD COLUMN revoked_reason TEXT;
ALTER TABLE tokens ADD COLUMN revoked_url TEXT;

-- An explicit, non-default permission chosen at creation: the PAT may rotate itself
-- (POST /api/pats/self/rotate with itself as the bearer).
ALTER TABLE tokens ADD COLUMN allow_self_rotation INTEGER NOT NULL DEFAULT 0;

-- A rotated-away token keeps working until grace_until (NULL: it stopped at its rotation).
ALTER TABLE retired_token_hashes ADD COLUMN grace_until INTEGER;

-- Expiry notices (the Cron expiry scan): one row per PAT and threshold (30, 7 or 1 days ahead; 0:
-- expired), written by the scan that emitted the event, so that no event is emitted twice.
CREATE TABLE expiry_notices (
  token_id TEXT NOT NULL,
  threshold_days INTEGER NOT NULL,
  notified_at INTEGER NOT NULL,
  subject TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (token_id, threshold_days)
);
-- The scan reads only PATs in its windows, not the whole table.
CREATE INDEX pats_by_expiry ON tokens(expires_at) WHERE kind = 'pat' AND revoked_at IS NULL;
