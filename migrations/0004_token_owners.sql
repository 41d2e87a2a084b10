-- Tokens belong to a client and to the API resources owning their scopes as those existed when the
-- token was issued: an internal id (uid) that is never reused tells a client or resource
-- apart from a later one created with the same id.

ALTER TABLE clients ADD COLUMN uid TEXT;
UPDATE clients SET uid = lower(hex(randomblob(16))) WHERE uid IS NULL;
CREATE TRIGGER clients_uid AFTER INSERT ON clients WHEN NEW.uid IS NULL
BEGIN
  UPDATE clients SET uid = lower(hex(randomblob(16))) WHERE id = NEW.id;
END;

ALTER TABLE api_resources ADD COLUMN uid TEXT;
UPDATE api_resources SET uid = lower(hex(randomblob(16))) WHERE uid IS NULL;
CREATE TRIGGER api_resources_uid AFTER INSERT ON api_resources WHEN NEW.uid IS NULL
BEGIN
  UPDATE api_resources SET uid = lower(hex(randomblob(16))) WHERE id = NEW.id;
END;

-- The client's uid at issuance, and for each scope (same order as `scopes`, space-separated) the
-- uid of the resource that owned it then ('-': none). NULL in rows issued before: checked by id.
ALTER TABLE tokens ADD COLUMN client_uid TEXT;
ALTER TABLE tokens ADD COLUMN scope_owners TEXT;
UPDATE tokens SET client_uid = (SELECT uid FROM clients WHERE clients.id = tokens.client_id);
