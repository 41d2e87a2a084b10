-- Where leaked tokens were found (GitHub secret scanning reports, README "Leaked tokens"). A token
-- is often reported more than once (GitHub retries, a fork, a second commit): each token keeps the
-- newest 10 distinct report URLs (by the time of their latest report; the writer drops older
-- ones in the same transaction). token_id is the reported token's record (for a rotated-away token:
-- the PAT it was rotated from). tokens.revoked_url keeps the URL of the report that revoked it.
CREATE TABLE leak_reports (
  token_id TEXT NOT NULL,
  url TEXT NOT NULL,               -- an http(s) URL of at most 2048 characters
  reported_at INTEGER NOT NULL,    -- unix seconds, the latest report of this URL
  PRIMARY KEY (token_id, url)
);
