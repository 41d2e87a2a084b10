-- patgate schema. D1 is the source of truth; KV holds a cache of active grants keyed by token hash.
-- Times are unix seconds (UTC). Secrets and tokens are stored only as SHA-256 hex digests.

-- An API resource (RFC 7662 "protected resource") that authenticates to /oauth/introspect.
CREATE TABLE api_resources (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  -- the previous secret keeps working until previous_secret_expires_at (secret rotation grace)
  previous_secret_hash TEXT,
  previous_secret_expires_at INTEGER,
  enabled INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL
);

-- Each scope belongs to exactly one API resource.
CREATE TABLE scopes (
  name TEXT PRIMARY KEY,
  resource_id TEXT NOT NULL REFERENCES api_resources(id) ON DELETE CASCADE,
  description TEXT NOT NULL DEFAULT ''
);
CREATE INDEX scopes_by_resource ON scopes(resource_id);

-- OAuth clients. secret_hash NULL means a public client (the PAT client).
CREATE TABLE clients (
  id TEXT PRIMARY KEY,
  secret_hash TEXT,
  previous_secret_hash TEXT,
  previous_secret_expires_at INTEGER,
  allowed_scopes TEXT NOT NULL DEFAULT '',   -- space-delimited
  token_format TEXT NOT NULL DEFAULT 'reference' CHECK (token_format IN ('reference', 'jwt')),
  token_lifetime INTEGER NOT NULL DEFAULT 3600,
  enabled INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL
);

-- Reference tokens: personal access tokens (kind 'pat') and client access tokens (kind 'access').
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('pat', 'access')),
  token_hash TEXT NOT NULL UNIQUE,
  subject TEXT NOT NULL,          -- the user (sub) for PATs, the client id for client tokens
  client_id TEXT NOT NULL,
  name TEXT,
  scopes TEXT NOT NULL,           -- space-delimited
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER,
  last_used_at INTEGER,
  use_count INTEGER NOT NULL DEFAULT 0
);
-- Listing a user's PATs (newest first, keyset pagination) touches only that user's rows.
CREATE INDEX tokens_by_subject ON tokens(subject, kind, created_at DESC, id DESC);
