-- The authorization server (docs/AUTHORIZATION.md): clients that register themselves, the
-- authorization code flow with PKCE and consent, grants with rotating refresh tokens.
-- Times are unix seconds; codes, refresh tokens and consent handles are stored only as SHA-256
-- hex digests. Formats are pinned by src/storage/authz_rows.rs.

-- Clients gain what the authorization code flow needs. Existing rows are administrator-made and
-- keep what they could do before (grant_types NULL: client_credentials and token exchange).
-- source: 'admin' (admin API), 'metadata' (a client ID metadata document: id = its https URL),
-- 'dynamic' (RFC 7591: id = pgd_...). Clients are looked up one by one (WHERE id = ?).
ALTER TABLE clients ADD COLUMN source TEXT NOT NULL DEFAULT 'admin'
  CHECK (source IN ('admin', 'metadata', 'dynamic'));
ALTER TABLE clients ADD COLUMN display_name TEXT;
ALTER TABLE clients ADD COLUMN logo_uri TEXT;
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';  -- JSON array of strings
ALTER TABLE clients ADD COLUMN grant_types TEXT;                          -- space-delimited
ALTER TABLE clients ADD COLUMN refresh_tokens INTEGER NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN metadata_expires_at INTEGER;  -- metadata clients: fetch again after
ALTER TABLE clients ADD COLUMN last_used_at INTEGER;         -- dynamic clients: unused ones expire
CREATE INDEX clients_dynamic_by_use ON clients(last_used_at) WHERE source = 'dynamic';
-- The admin API and the isolate's admin table read only administrator-made clients.
CREATE INDEX clients_by_source ON clients(source, id);

-- An API resource that is not behind the gate names itself with this URI in RFC 8707 `resource`.
ALTER TABLE api_resources ADD COLUMN resource_uri TEXT;
CREATE UNIQUE INDEX api_resources_by_uri ON api_resources(resource_uri) WHERE resource_uri IS NOT NULL;

-- A user's authorization of one client for one resource: the family of every token issued from
-- one authorization code. Revoking it (the token page, the admin API, a reused code or refresh
-- token) ends its access and refresh tokens.
CREATE TABLE app_grants (
  id TEXT PRIMARY KEY,                 -- random, chosen when the user approved
  subject TEXT NOT NULL,
  client_id TEXT NOT NULL,
  client_uid TEXT NOT NULL,            -- the client's never-reused uid
  redirect_key TEXT NOT NULL,          -- the redirect URI (a loopback IP's without its port)
  resource TEXT NOT NULL,              -- the RFC 8707 resource indicator approved
  api_id TEXT NOT NULL,                -- the API resource it named, and that resource's uid then
  api_uid TEXT NOT NULL,
  scopes TEXT NOT NULL,                -- space-delimited
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  refresh_generation INTEGER NOT NULL DEFAULT 0,  -- the current refresh token (0: none)
  rotated_generation INTEGER NOT NULL DEFAULT 0,  -- the last one presented and rotated away
  expires_at INTEGER NOT NULL,         -- absolute end of its refresh tokens
  revoked_at INTEGER,
  revoked_reason TEXT CHECK (revoked_reason IN
    ('user', 'admin', 'code_reuse', 'refresh_reuse', 'replaced', 'token_revoked'))
);
-- The token page lists a user's live grants, newest first.
CREATE INDEX app_grants_by_subject ON app_grants(subject, created_at DESC, id DESC);
-- A new grant replaces the live ones of the same user, client, redirect URI and resource.
CREATE INDEX app_grants_by_key ON app_grants(subject, client_uid, redirect_key, resource);
CREATE INDEX app_grants_by_client ON app_grants(client_uid);

-- Refresh tokens: one row per generation, kept until the grant ends so that any rotated-away
-- token presented again is recognised (reuse detection).
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  grant_id TEXT NOT NULL,
  generation INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  idle_expires_at INTEGER NOT NULL,
  rotated_at INTEGER,                  -- when it stopped being current
  UNIQUE (grant_id, generation)
);

-- Authorization codes: single use (used_at set by one conditional UPDATE), 60 seconds.
CREATE TABLE authorization_codes (
  code_hash TEXT PRIMARY KEY,
  grant_id TEXT NOT NULL,              -- the grant its exchange creates
  subject TEXT NOT NULL,
  client_id TEXT NOT NULL,
  client_uid TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,          -- exactly as the authorization request sent it
  redirect_key TEXT NOT NULL,
  code_challenge TEXT NOT NULL,        -- S256: base64url of 32 bytes
  resource TEXT NOT NULL,
  api_id TEXT NOT NULL,
  api_uid TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);
-- The cron deletes codes (and consent requests) a day after they expired.
CREATE INDEX authorization_codes_by_expiry ON authorization_codes(expires_at);

-- Consent requests waiting for the user's answer: one-time handle, bound to the user, 10 minutes.
CREATE TABLE consent_requests (
  handle_hash TEXT PRIMARY KEY,
  subject TEXT NOT NULL,
  client_id TEXT NOT NULL,
  client_uid TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  redirect_key TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  resource TEXT NOT NULL,
  api_id TEXT NOT NULL,
  api_uid TEXT NOT NULL,
  scopes TEXT NOT NULL,
  state TEXT,                          -- returned unchanged
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);
CREATE INDEX consent_requests_by_expiry ON consent_requests(expires_at);

-- Remembered consent: exactly this user, client (uid), redirect URI (key) and resource; a request
-- whose scopes it covers skips the consent page, anything new asks again.
CREATE TABLE remembered_approvals (
  subject TEXT NOT NULL,
  client_uid TEXT NOT NULL,
  redirect_key TEXT NOT NULL,
  resource TEXT NOT NULL,
  scopes TEXT NOT NULL,
  approved_at INTEGER NOT NULL,
  PRIMARY KEY (subject, client_uid, redirect_key, resource)
);

-- Access tokens issued from a grant are reference tokens (kind 'access') that name it, so that
-- revoking the grant revokes them in one statement; audience: the RFC 8707 resource they are for.
ALTER TABLE tokens ADD COLUMN grant_id TEXT;
ALTER TABLE tokens ADD COLUMN audience TEXT;
CREATE INDEX tokens_by_grant ON tokens(grant_id) WHERE grant_id IS NOT NULL;
