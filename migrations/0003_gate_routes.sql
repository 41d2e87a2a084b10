-- Gate routes (README "Protect an API"): requests on a non-issuer host whose path starts with
-- path_prefix are checked against the route's API resource and rules, then forwarded upstream.
CREATE TABLE gate_routes (
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL DEFAULT '',      -- '' = every host but the issuer's; else host[:port], lowercase
  path_prefix TEXT NOT NULL,          -- starts and ends with '/'
  upstream TEXT NOT NULL,             -- absolute http(s) URL, no query or fragment
  resource_id TEXT NOT NULL,          -- the API resource whose tokens and scopes apply
  rules TEXT NOT NULL,                -- JSON: [{"methods":["GET"],"scopes":["a:read"]}, ...]
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (host, path_prefix)
);
