-- Reuse detection: a token rotated away and used after it stopped working (its grace
-- ended, or it was rotated without grace) was probably copied. Each PAT keeps a bounded record of
-- such uses (one row: a count, the first time, and the last use with where it came from), and
-- its owner may choose at creation to have the whole PAT revoked on the first one.

-- An explicit, non-default option chosen at creation: a detected reuse revokes the PAT (reason
-- 'reuse'), the current token included.
ALTER TABLE tokens ADD COLUMN revoke_on_reuse INTEGER NOT NULL DEFAULT 0;

-- Detections (at most one per stolen token per location per GRANT_CACHE_SECONDS, README).
ALTER TABLE tokens ADD COLUMN reuse_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN first_reuse_at INTEGER;
-- The last one: when, the client IP (CF-Connecting-IP), the Cloudflare location (colo) and
-- country as Cloudflare reported them (NULL when unknown), and when the reused token had been
-- rotated away (which of the PAT's old tokens it was).
ALTER TABLE tokens ADD COLUMN last_reuse_at INTEGER;
ALTER TABLE tokens ADD COLUMN last_reuse_ip TEXT;
ALTER TABLE tokens ADD COLUMN last_reuse_colo TEXT;
ALTER TABLE tokens ADD COLUMN last_reuse_country TEXT;
ALTER TABLE tokens ADD COLUMN last_reuse_rotated_at INTEGER;
