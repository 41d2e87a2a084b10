-- Indexes for reading usage: lists sorted by last use, and grants' last uses.

-- A user's PATs by last use (GET /api/pats?sort=last_used and least_recently_used, the token
-- page's sort links), never used counting as 0, in the exact expression the list orders by
-- (storage::inventory): the subject's rows are read in index order, with no sort step.
CREATE INDEX tokens_by_subject_last_use ON tokens(subject, kind, COALESCE(last_used_at, 0), id);

-- The administrators' inventory sorted by last use (GET /admin/pats?sort=last_used), likewise.
CREATE INDEX tokens_by_kind_last_use ON tokens(kind, COALESCE(last_used_at, 0), id);

-- Where an app's grant was last used from: its most recently used access token, found without
-- a sort step ("Authorized applications", GET /admin/grants; storage::grant_usage).
CREATE INDEX tokens_by_grant_last_use ON tokens(grant_id, last_used_at, created_at, id)
  WHERE grant_id IS NOT NULL;
