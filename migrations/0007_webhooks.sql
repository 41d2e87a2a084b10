-- Webhook endpoints (README "Webhooks"), registered through /admin/webhooks. Each delivery of a
-- security event is a Cloudflare Queue message naming the endpoint; the consumer reads the URL and
-- secret from here when it delivers, so a deleted endpoint receives nothing more.
--
-- `secret` is stored as is (`whsec_<base64>`), unlike client secrets (SHA-256 only): HMAC-SHA256
-- signing needs the key itself. It is shown once at registration and never returned by a read.
CREATE TABLE webhook_endpoints (
  id TEXT PRIMARY KEY,                -- wh_ + 16 hex digits
  url TEXT NOT NULL,                  -- https (http://localhost only with WEBHOOK_ALLOW_HTTP_LOCALHOST)
  event_types TEXT NOT NULL,          -- JSON array of event types, or ["*"]
  secret TEXT NOT NULL,               -- whsec_<base64>
  previous_secret TEXT,               -- a rotated-away secret that still signs ...
  previous_secret_until INTEGER,      -- ... until then (unix seconds)
  created_at INTEGER NOT NULL
);
