//! The edge gate's pure parts: routes (validation, matching), their CORS policies and what is
//! forwarded upstream (URL, headers). The decision and the responses are in `app::gate`; the fetch and the body
//! streams in the runtime layer.

pub mod cors;
pub mod forward;
pub mod route;
