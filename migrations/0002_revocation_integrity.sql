-- Revocation that holds under faults and races.

-- Rotations bump a token's generation: a JWT exchanged from a PAT names the PAT and the
-- generation it was minted from, and dies when the PAT is rotated, revoked or expires.
ALTER TABLE tokens ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;

-- Hashes a token had before its rotations. Revocation and rotation delete them from KV again
-- (a KV delete that failed earlier is retried by every later revoke or rotate of the token).
CREATE TABLE retired_token_hashes (
  token_hash TEXT PRIMARY KEY,
  token_id TEXT NOT NULL,
  retired_at INTEGER NOT NULL
);
CREATE INDEX retired_by_token ON retired_token_hashes(token_id, retired_at);
