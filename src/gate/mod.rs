//! The edge gate's pure parts: routes (validation, matching) and what is forwarded upstream
//! (URL, headers). The decision and the responses are in `app::gate`; the fetch and the body
//! streams in the runtime layer.

pub mod forward;
pub mod route;
