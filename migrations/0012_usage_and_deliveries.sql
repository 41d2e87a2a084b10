-- Usage you can see (README "Usage"), the administrators' token inventory, and webhook
-- deliveries you can inspect and replay (README "Webhooks").

-- Written by the token's LastUsed Durable Object on its alarm, like last_used_at and use_count
-- (the object is their only writer). daily_uses: uses per UTC day of the last 90 days,
-- {"days":[[day,uses],...]} (day: days since 1970-01-01). last_used_from: the last few distinct
-- places the token was used from, a JSON array of {"via","name","ip"?,"country"?,"colo"?,
-- "first_at","last_at"} (through introspection the caller is the API: no ip or country).
ALTER TABLE tokens ADD COLUMN daily_uses TEXT;
ALTER TABLE tokens ADD COLUMN last_used_from TEXT;

-- The reason an administrator gave when revoking a token (POST /admin/pats/{id}/revoke); its
-- owner sees it. revoked_reason is then 'admin'.
ALTER TABLE tokens ADD COLUMN revoked_message TEXT;

-- Uses per token, UTC day, how they came in (via: introspection, gate), the API resource or
-- gate route (name) and the outcome (active, no_scope, insufficient_scope, method_not_allowed;
-- unknown for uses reported by an older version; other past 32 keys a day). Absolute values,
-- rewritten by the token's object; the last 90 days are kept.
CREATE TABLE token_usage (
  token_id TEXT NOT NULL,
  day INTEGER NOT NULL,
  via TEXT NOT NULL,
  name TEXT NOT NULL,
  outcome TEXT NOT NULL,
  uses INTEGER NOT NULL,
  PRIMARY KEY (token_id, day, via, name, outcome)
) WITHOUT ROWID;
-- The hourly scan deletes days past retention of tokens no longer used.
CREATE INDEX token_usage_by_day ON token_usage(day);

-- The inventory (GET /admin/pats) lists tokens of every user, newest first by default.
CREATE INDEX tokens_by_kind_created ON tokens(kind, created_at DESC, id DESC);

-- Webhook endpoint health: failing_since is the first failure of the current run of failures
-- (NULL after a success); an endpoint failing for WEBHOOK_DISABLE_AFTER_SECONDS is disabled
-- (disabled_at, disabled_reason) until an operator enables it again.
ALTER TABLE webhook_endpoints ADD COLUMN failing_since INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN disabled_at INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN disabled_reason TEXT;

-- One row per delivery attempt, kept WEBHOOK_DELIVERY_RETENTION_DAYS (the hourly scan deletes
-- older ones). payload: the exact bytes sent, which a redelivery sends again.
CREATE TABLE webhook_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  endpoint_id TEXT NOT NULL,
  msg_id TEXT NOT NULL,              -- webhook-id, the same on every attempt and redelivery
  event_type TEXT NOT NULL,
  attempt INTEGER NOT NULL,          -- 1-based, per queue message (a redelivery starts at 1)
  at INTEGER NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'retrying', 'failed', 'dropped')),
  status INTEGER,                    -- the endpoint's HTTP status, if it answered
  latency_ms INTEGER,
  error TEXT,
  payload TEXT NOT NULL,
  redelivery INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries(endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries(at);
