-- The cron's clean-up of ended authorization state (docs/AUTHORIZATION.md, "Clean-up"): grants
-- are deleted, with their refresh tokens, a day after they ended, oldest end first. A grant ends
-- when it is revoked or, at the latest, at its absolute expiry; the expression is exactly the one
-- the clean-up's statements use (src/storage/authz_ended.rs), so that they read this index.
CREATE INDEX app_grants_by_end ON app_grants(coalesce(revoked_at, expires_at));
