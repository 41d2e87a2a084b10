//! The authorization server's domain (authorization code with PKCE and consent, grants with
//! rotating refresh tokens, self-registering clients), pure and host-tested: records, decisions
//! and storage contracts. The HTTP side (`/authorize`, the consent page, the token endpoint's
//! new grants, registration) is built on these in `app`; the design is docs/AUTHORIZATION.md.
//!
//! - [`secrets`]: codes (`pgc_`), refresh tokens (`pgr_`), consent handles, dynamic client ids
//!   (`pgd_`, HMAC-tagged);
//! - [`records`]: what D1 stores (client profiles, pending consents, codes, grants, refresh
//!   tokens, remembered approvals); row mappings in `crate::storage::authz_rows`;
//! - [`target`]: the API a resource indicator names, and the scopes a request may get there;
//! - [`code`]: a code's exchange checks and the grant it creates; [`refresh`]: rotation and
//!   reuse detection;
//! - [`client_cache`]: the bounded per-isolate client cache with negative entries;
//! - [`store`]: the storage traits; `memory`: their in-memory double (tests, tools).

pub mod client_cache;
pub mod code;
pub mod records;
pub mod refresh;
pub mod secrets;
pub mod store;
pub mod target;

#[cfg(any(test, feature = "tools"))]
pub mod memory;
#[cfg(any(test, feature = "tools"))]
mod memory_ended;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod tests;
