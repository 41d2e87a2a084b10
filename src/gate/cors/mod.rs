//! A gate route's CORS policy (the Fetch standard's CORS protocol), off unless the route has one.
//!
//! The gate answers CORS itself, before any token is looked at: a browser's preflight (`OPTIONS`
//! with `Origin` and `Access-Control-Request-Method`) carries no token, so without this a web app
//! on another origin could never call an API behind the gate. A preflight is answered here and
//! never forwarded; an actual request from an allowed origin gets `Access-Control-Allow-Origin`
//! on whatever answers it: the upstream's response or the gate's own 401/403/405/429/503 (so the
//! web app can read why it was refused). Requests from other origins are processed as always,
//! without CORS headers: the browser then withholds the answer from the calling page.
//!
//! What is refused when the route is configured (`validate`): the origin `null` (sandboxed
//! documents, `file:` pages and redirects all send it: allowing it allows anyone), `*` together
//! with credentials (browsers refuse that answer, and echoing any origin instead would hand every
//! site the user's credentials), and origins that no browser sends (paths, default ports, case).
//!
//! Pure: the route record holds a [`Cors`]; `app::gate` asks it for headers.
//!
//! By idea: [`policy`] (the record and its validation), [`answer`] (preflights and the headers of
//! actual requests).

pub mod answer;
pub mod policy;

pub use answer::{is_cors_response_header, is_preflight, CorsRequest, Headers, Refused};
pub use policy::{validate, Cors};
