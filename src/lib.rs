//! patgate: personal access tokens and OAuth2 reference tokens at the edge.
//!
//! Layers, each using only itself and the ones below (docs/ARCHITECTURE.md, held by
//! `tests/architecture.rs`):
//! - runtime: `edge` (wasm only), the only code that uses the `worker` crate: the Worker's entry
//!   points and the KV/D1/Durable Object/Queue adapters;
//! - service: [`app`], the router over its capabilities (tokens, the OAuth server, the gate, the
//!   token page, the admin API, webhooks) and their shared pieces;
//! - storage contracts: [`store`] (storage traits), [`storage`] (stored formats: KV keys, D1
//!   rows), [`model`] (records), the authorization server's `authz::store`; `testing` (the
//!   in-memory backend);
//! - pure protocol and formats: [`token`] (the token format), [`secret`] (secret hygiene),
//!   [`http`] (request/response, strict parsing, the error mapping), [`error`] (the one error
//!   enum), [`events`] (security events), [`time`] (RFC 3339), [`origin`] (where a request came
//!   from), [`jose`] (verifying and signing JWTs, keys), [`scopes`] (the OAuth scope set),
//!   [`oauth`] (OAuth requests parsed once, typed answers), [`secret_scanning`] (leak reports),
//!   [`webhook`] (Standard Webhooks signing, payloads, sampling), [`net_guard`] (which URLs the
//!   server may send requests to), [`last_use`] (the Durable Object's messages), [`encoding`]
//!   (hex), [`gate`] (gate routes, CORS policies and forwarding rules), [`authz`] (the
//!   authorization server's records and decisions), [`revocation`] (the revocation feed's core).

pub mod app;
pub mod authz;
pub mod encoding;
pub mod error;
pub mod events;
pub mod gate;
pub mod http;
pub mod jose;
pub mod last_use;
pub mod model;
pub mod net_guard;
pub mod oauth;
pub mod origin;
pub mod revocation;
pub mod scopes;
pub mod secret;
pub mod secret_scanning;
pub mod storage;
pub mod store;
pub mod time;
pub mod token;
pub mod webhook;

/// In-memory backend: host tests, and host tools (`--features tools`).
#[cfg(any(test, feature = "tools"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
mod edge;
