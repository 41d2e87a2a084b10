//! The edge gate's pure parts: routes (the record: [`route`]; [`validate`]; [`matching`]; host
//! syntax: [`host`]), their CORS policies ([`cors`]) and what is forwarded upstream (URL, headers: [`forward`]). The
//! decision and the responses are in `app::gate`; the fetch and the body streams in the runtime
//! layer.

pub mod cors;
pub mod forward;
pub mod host;
pub mod matching;
pub mod route;
pub mod validate;
