//! RFC 8414 authorization server metadata: only what is really supported.

use super::{client_auth, Ctx, PAT_CLIENT_ID};
use crate::error::Error;
use crate::http::Response;
use crate::store::Backend;
use serde_json::json;

pub async fn metadata<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Response, Error> {
    let iss = &ctx.cfg.issuer;
    let scopes = client_auth::load_client(ctx, PAT_CLIENT_ID)
        .await?
        .map(|c| c.allowed_scopes.clone())
        .unwrap_or_default();
    Ok(Response::json(
        200,
        &json!({
            "issuer": iss,
            "introspection_endpoint": format!("{iss}/oauth/introspect"),
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint": format!("{iss}/oauth/revoke"),
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "grant_types_supported": [],
            "response_types_supported": [],
            "scopes_supported": scopes,
        }),
    ))
}
