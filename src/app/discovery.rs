//! RFC 8414 authorization server metadata (also served as `/.well-known/openid-configuration`):
//! every endpoint, grant type, authentication method, algorithm and scope that is really
//! supported, and nothing that is not.

use super::exchange::{TT_ACCESS_TOKEN, TT_ID_TOKEN, TT_JWT};
use super::token_endpoint::{CLIENT_CREDENTIALS, TOKEN_EXCHANGE};
use super::Ctx;
use crate::error::Error;
use crate::http::Response;
use crate::store::Backend;
use serde_json::json;

pub async fn metadata<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Response, Error> {
    let iss = &ctx.cfg.issuer;
    let mut scopes: Vec<String> = ctx
        .backend
        .list_resources()
        .await?
        .into_iter()
        .filter(|r| r.enabled)
        .flat_map(|r| r.scopes)
        .collect();
    scopes.sort();
    let secret_methods = ["client_secret_basic", "client_secret_post"];
    let mut doc = json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}/oauth/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "grant_types_supported": [CLIENT_CREDENTIALS, TOKEN_EXCHANGE],
        "response_types_supported": [],
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "introspection_endpoint_auth_methods_supported": secret_methods,
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": scopes,
        "token_exchange_subject_token_types_supported": [TT_ACCESS_TOKEN, TT_JWT, TT_ID_TOKEN],
    });
    if let Some(keys) = &ctx.cfg.signing_keys {
        doc["jwks_uri"] = json!(format!("{iss}/.well-known/jwks.json"));
        doc["introspection_signing_alg_values_supported"] = json!([keys.algorithm()]);
        doc["access_token_signing_alg_values_supported"] = json!(keys.algorithms());
    }
    Ok(Response::json(200, &doc))
}
