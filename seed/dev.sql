-- LOCAL DEMO SEED. Applied only by `npm start` and the tests to a local D1; never part of migrations/.
-- Secrets are stored as SHA-256 hex digests of: demo-api-secret, other-api-secret,
-- demo-client-secret, demo-jwt-client-secret.
--
-- Applied on every `npm start`, so it only adds what is missing and never replaces a row: a
-- replaced client or API resource gets a new never-reused uid (migration 0004), and every token
-- issued before would then belong to a client that no longer exists. Rows changed through the
-- admin API (a disabled client, a rotated secret) stay as they are; `rm -rf .wrangler/state`
-- starts over.
INSERT INTO api_resources (id, secret_hash, enabled, created_at) VALUES
  ('demo_api', '0007b27b74dcbb64b6e9ece206e87d11ba77afa1f0f5491c32a930b552ffca04', 1, 1767225600),
  ('other_api', 'cbbe6a97bad41168765ca0b8742aae6575b04ec69cb950639fc0342beb281558', 1, 1767225600)
  ON CONFLICT (id) DO NOTHING;
-- A scope whose resource was deleted and seeded again is added back under the new resource.
INSERT INTO scopes (name, resource_id, description) VALUES
  ('demo_api:read', 'demo_api', 'Read the demo API'),
  ('demo_api:write', 'demo_api', 'Write to the demo API'),
  ('other_api:read', 'other_api', 'Read the other API')
  ON CONFLICT (name) DO NOTHING;
INSERT INTO clients (id, secret_hash, allowed_scopes, token_format, token_lifetime, enabled, created_at) VALUES
  ('pat_client', NULL, 'demo_api:read demo_api:write other_api:read', 'reference', 3600, 1, 1767225600),
  ('demo_client', '3b63d5e98b94cace167480e9cb590842715204d660aa53505638f357428cbe36', 'demo_api:read demo_api:write', 'reference', 3600, 1, 1767225600),
  ('demo_jwt_client', 'ed6d562876d9e502bf7d68fb689174ea3d4db055182da2a18fbf012d302b63f8', 'demo_api:read demo_api:write', 'jwt', 3600, 1, 1767225600)
  ON CONFLICT (id) DO NOTHING;
