-- A gate route's CORS policy (README "Protect an API", docs/API.md): the JSON of
-- gate::cors::Cors, or NULL for none (the default: the gate gives no CORS answers).
ALTER TABLE gate_routes ADD COLUMN cors TEXT;
