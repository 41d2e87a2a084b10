-- The recent-revocations feed (docs/REVOCATION.md): one row per revocation, inserted in the same
-- D1 batch (one transaction) as the statement that revokes, and only when that statement revoked
-- something. `seq` is the commit order (D1 runs one writer; AUTOINCREMENT never reuses a value,
-- even after the rows are trimmed): a reader that has seen seq n has seen every commit before it.
-- Each location keeps a snapshot of these rows in its Cache API and each isolate a parsed view;
-- an answer KV would give as active is checked against that view.
--
-- Kinds (src/revocation/feed.rs; never change a letter's meaning):
--   t  first 16 bytes of a token's SHA-256, 32 lowercase hex (rotation without grace, end of a grace)
--   r  a token record id (PAT or client reference token revoked)
--   g  "{generation} {record id}" (JWTs exchanged from an earlier generation: every rotation)
--   j  a JWT id (a client JWT access token revoked through RFC 7009)
--   a  an authorization-server grant id (the grant's access and refresh tokens)
--   c  a client or API resource uid (its record changed: isolates read it again)
--
-- Times are Unix milliseconds of the writer's clock. A row is kept until `until_ms` (how long a
-- cached "active" can outlive the revocation, see feed::Retention) and then trimmed by the hourly
-- Cron Trigger and opportunistically by revocations.
CREATE TABLE revocation_feed (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  kind     TEXT    NOT NULL,
  value    TEXT    NOT NULL,
  at_ms    INTEGER NOT NULL,
  until_ms INTEGER NOT NULL
);
CREATE INDEX revocation_feed_until ON revocation_feed (until_ms);
-- A client JWT's revocation is found by its id when an isolate's view is too old to vouch for it.
CREATE INDEX revocation_feed_value ON revocation_feed (value, kind);

-- Security Event Token receivers (RFC 8417, pushed as RFC 8935): a webhook endpoint registered
-- with format 'secevent' gets a signed `application/secevent+jwt` per revocation (same admin API,
-- URL checks, queue and retries as the Standard Webhooks deliveries). `set_audience` is the `aud`
-- of its SETs; `set_token_hash` = 1: its SETs also carry the revoked token's SHA-256 (hex).
ALTER TABLE webhook_endpoints ADD COLUMN format TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE webhook_endpoints ADD COLUMN set_audience TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN set_token_hash INTEGER NOT NULL DEFAULT 0;
