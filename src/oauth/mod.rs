//! The OAuth layer, pure (no storage, no `worker`): each endpoint's request parsed once from an
//! [`crate::http::Request`] into a typed value, and the typed answers serialized once. The
//! handlers of `app` (`introspect`, `revoke`, `token_endpoint`, `exchange`) take these requests;
//! `app::client_auth` authenticates the [`Presented`] credentials.
//!
//! - [`form`]: the strict form parser (size, media type, duplicates, UTF-8), borrowing values
//!   from the body;
//! - [`credentials`]: the client credentials presented (Basic or post, never both);
//! - [`introspection`], [`revocation`], [`token`]: one module per endpoint;
//! - [`authorize`]: the authorization endpoint's request, redirect URI rules, PKCE, resource
//!   indicators and answers; [`code_grants`]: the token endpoint's `authorization_code` and
//!   `refresh_token` grants; [`client_metadata`] (shared), [`metadata_document`] (client ID
//!   metadata documents) and [`registration`] (RFC 7591): self-registering clients;
//!   [`uri`]: the strict absolute-URI reader they share.

pub mod authorize;
pub mod client_metadata;
pub mod code_grants;
pub mod credentials;
pub mod form;
pub mod introspection;
pub mod metadata_document;
pub mod registration;
pub mod revocation;
pub mod token;
pub mod uri;

pub use credentials::Presented;
pub use introspection::{IntrospectionRequest, IntrospectionResponse, ResponseFormat};
pub use revocation::RevocationRequest;
pub use token::{Grant, TokenRequest, TokenResponse};
