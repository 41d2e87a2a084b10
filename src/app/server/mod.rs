//! The OAuth authorization server: the token endpoint (RFC 6749 client credentials, RFC 8693
//! token exchange), issuing reference tokens and RFC 9068 JWT access tokens to clients, the JWKS
//! document, and the RFC 8414 metadata that describes all of it; the authorization endpoint's
//! decisions (`authorize`: the request, a remembered approval or a pending consent, the answer,
//! the code), the authorization code and refresh token grants, and client registration. The
//! token page shows the consent page over `check_authorization`, `begin_authorization` and
//! `answer_consent`. It may
//! use the shared pieces of `app/`, the tokens capability through its face (issuing, the
//! decision's cheap checks, creating a PAT from a sign-in), storage traits and the pure layer;
//! nothing uses it but the router and the admin API (which forgets the cached metadata).

mod authorization_code;
mod authorize;
mod discovery;
mod exchange;
mod grant_tokens;
mod jwt;
mod refresh;
mod register;
mod token_endpoint;

pub use authorize::{
    answer as answer_consent, begin as begin_authorization, check as check_authorization,
    identity as client_identity, ConsentView, Next, Refused,
};
pub use discovery::{forget as forget_metadata, metadata};
pub use jwt::jwks;
pub use register::serve as register_client;
pub use token_endpoint::serve as token;
