//! patgate: personal access tokens and OAuth2 reference tokens at the edge.
//!
//! Layout (see README "Architecture"):
//! - the pure core, host-testable and free of the `worker` crate: [`token`] (the token format),
//!   [`secret`] (secret hygiene), [`http`] (request/response, strict parsing), [`error`] (the one
//!   error enum and its HTTP mapping), [`model`] (records), [`origin`] (where a request came
//!   from), [`store`] (storage traits),
//!   [`storage`] (stored formats: KV keys, D1 rows), [`jose`] (verifying and signing JWTs, keys),
//!   [`scopes`] (the OAuth scope set), [`oauth`] (OAuth requests parsed once, typed answers),
//!   [`secret_scanning`] (leak reports), [`webhook`] (Standard Webhooks signing and payloads),
//!   [`last_use`] (the Durable Object's messages), [`encoding`] (hex), [`gate`] (gate routes and
//!   forwarding rules), [`app`] (routing and handlers); `testing` (the in-memory backend);
//! - `edge` (wasm only): the Worker entry point, KV/D1/Durable Object adapters.

pub mod app;
pub mod encoding;
pub mod error;
pub mod gate;
pub mod http;
pub mod jose;
pub mod last_use;
pub mod model;
pub mod oauth;
pub mod origin;
pub mod revocation;
pub mod scopes;
pub mod secret;
pub mod secret_scanning;
pub mod storage;
pub mod store;
pub mod store_usage;
pub mod token;
pub mod usage;
pub mod webhook;

/// In-memory backend: host tests, and host tools (`--features tools`).
#[cfg(any(test, feature = "tools"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
mod edge;
