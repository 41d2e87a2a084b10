//! RFC 9728 protected resource metadata, one document per gate route, at
//! `/.well-known/oauth-protected-resource` followed by the route's path.

use super::answer::GateRequest;
use crate::app::client_auth::load_resource;
use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::gate::route::GateRoute;
use crate::http::Response;
use crate::store::Backend;

pub(super) const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// RFC 9728 section 3.2: the protected resource metadata of a route.
pub(super) async fn metadata<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &GateRequest<'_>,
    r: &GateRoute,
) -> Result<Response, Error> {
    if req.method != "GET" && req.method != "HEAD" {
        return Err(Error::MethodNotAllowed("GET"));
    }
    let scopes = load_resource(ctx, &r.resource)
        .await?
        .map(|res| res.scopes.clone())
        .unwrap_or_default();
    let doc = serde_json::json!({
        "resource": format!("{}://{}{}", req.scheme, req.authority, r.path_prefix),
        "authorization_servers": [ctx.cfg.issuer],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
    });
    Ok(Response::json(200, &doc).with_header("cache-control", "public, max-age=300"))
}
