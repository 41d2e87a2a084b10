//! RFC 7591 dynamic client registration (`POST /oauth/register`, off unless configured): the
//! request's metadata validated ([`parse_request`]) and the answer ([`RegistrationResponse`]).
//!
//! Every registered client is public (`token_endpoint_auth_method` `none`, no secret) unless an
//! administrator changes it later. RFC 7591 3.2.1 lets the server replace requested values:
//! a request for `client_secret_basic` or `client_secret_post` gets `none`, and the answer says
//! so (clients then authenticate with `client_id` alone, as the MCP SDKs do). Methods patgate
//! cannot verify (`private_key_jwt`, `client_secret_jwt`, `tls_client_auth`, anything unknown)
//! are refused with `invalid_client_metadata`, and so are software statements (not supported).
//! Without `grant_types` the client gets `authorization_code` (RFC 7591 2 default); without
//! `response_types`, `code`.

use super::authorize::redirect_uri::RedirectPolicy;
use super::client_metadata::{parse_raw, validate, ClientMetadata, GrantType, MetadataError};
use serde::Serialize;
use std::fmt;

/// RFC 7591 3.2.2 error codes used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationErrorCode {
    InvalidRedirectUri,
    InvalidClientMetadata,
    InvalidSoftwareStatement,
}

impl RegistrationErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            RegistrationErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            RegistrationErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            RegistrationErrorCode::InvalidSoftwareStatement => "invalid_software_statement",
        }
    }
}

/// A refused registration: `400 {"error", "error_description"}` (RFC 7591 3.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationError {
    pub code: RegistrationErrorCode,
    pub description: String,
}

impl RegistrationError {
    fn new(code: RegistrationErrorCode, description: impl Into<String>) -> Self {
        RegistrationError {
            code,
            description: description.into(),
        }
    }

    pub const STATUS: u16 = 400;

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": self.code.as_str(), "error_description": self.description})
    }
}

impl fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl From<MetadataError> for RegistrationError {
    fn from(e: MetadataError) -> Self {
        let code = match e {
            MetadataError::RedirectUri(_) => RegistrationErrorCode::InvalidRedirectUri,
            _ => RegistrationErrorCode::InvalidClientMetadata,
        };
        RegistrationError::new(code, e.to_string())
    }
}

/// Validates a registration request's JSON body (its size and media type are checked by the
/// caller like every JSON body's).
///
/// # Errors
/// [`RegistrationError`] with the RFC 7591 code that applies.
pub fn parse_request(
    body: &[u8],
    policy: RedirectPolicy,
) -> Result<ClientMetadata, RegistrationError> {
    let raw = parse_raw(body)?;
    if raw.software_statement.is_some() {
        return Err(RegistrationError::new(
            RegistrationErrorCode::InvalidSoftwareStatement,
            "software statements are not supported",
        ));
    }
    if raw.client_id.is_some() || raw.client_secret.is_some() {
        return Err(RegistrationError::new(
            RegistrationErrorCode::InvalidClientMetadata,
            "client_id and client_secret are assigned by the server",
        ));
    }
    match raw.token_endpoint_auth_method.as_deref() {
        None | Some("none" | "client_secret_basic" | "client_secret_post") => {}
        Some(other) => {
            let shown: String = other.chars().take(40).filter(|c| !c.is_control()).collect();
            return Err(RegistrationError::new(
                RegistrationErrorCode::InvalidClientMetadata,
                format!("token_endpoint_auth_method {shown} is not supported (registered clients are public: none)"),
            ));
        }
    }
    Ok(validate(raw, policy, false)?)
}

/// The RFC 7591 3.2.1 answer (`201`): the registered metadata as the server stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrationResponse {
    pub client_id: String,
    pub client_id_issued_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<&'static str>,
    pub response_types: [&'static str; 1],
    pub token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl RegistrationResponse {
    pub fn new(client_id: String, issued_at: i64, m: &ClientMetadata) -> Self {
        RegistrationResponse {
            client_id,
            client_id_issued_at: issued_at,
            client_name: m.client_name.clone(),
            redirect_uris: m.redirect_uris.clone(),
            grant_types: m.grant_types.iter().map(|g| g.as_str()).collect(),
            response_types: ["code"],
            token_endpoint_auth_method: "none",
            logo_uri: m.logo_uri.clone(),
            client_uri: m.client_uri.clone(),
            scope: m.scope.as_ref().map(ToString::to_string),
        }
    }

    pub fn refresh_tokens(&self) -> bool {
        self.grant_types.contains(&GrantType::RefreshToken.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(json: &str) -> Result<ClientMetadata, RegistrationError> {
        parse_request(json.as_bytes(), RedirectPolicy::default())
    }

    /// What the official MCP TypeScript SDK sends (its `clientMetadata` for a CLI client).
    const SDK: &str = r#"{"client_name":"MCP CLI","redirect_uris":["http://localhost:8090/callback"],
        "grant_types":["authorization_code","refresh_token"],"response_types":["code"],
        "token_endpoint_auth_method":"client_secret_post","scope":"mcp:tools"}"#;

    /// The answer's JSON is what clients store and read back: pinned.
    #[test]
    fn the_answer_is_pinned() {
        let m = reg(SDK).expect("ok");
        let r = RegistrationResponse::new("pgd_x".into(), 1_700_000_000, &m);
        assert!(r.refresh_tokens());
        assert_eq!(
            serde_json::to_string(&r).expect("json"),
            r#"{"client_id":"pgd_x","client_id_issued_at":1700000000,"client_name":"MCP CLI","redirect_uris":["http://localhost:8090/callback"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none","scope":"mcp:tools"}"#
        );
        let minimal = reg(r#"{"redirect_uris":["https://app.example/cb"]}"#).expect("ok");
        let r = RegistrationResponse::new("pgd_y".into(), 1, &minimal);
        assert!(!r.refresh_tokens());
        assert_eq!(
            serde_json::to_string(&r).expect("json"),
            r#"{"client_id":"pgd_y","client_id_issued_at":1,"redirect_uris":["https://app.example/cb"],"grant_types":["authorization_code"],"response_types":["code"],"token_endpoint_auth_method":"none"}"#
        );
    }

    #[test]
    fn secret_methods_become_none_and_the_rest_is_refused() {
        for m in ["none", "client_secret_basic", "client_secret_post"] {
            let json = format!(
                r#"{{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"{m}"}}"#
            );
            assert!(reg(&json).is_ok(), "{m}");
        }
        for m in [
            "private_key_jwt",
            "client_secret_jwt",
            "tls_client_auth",
            "None",
            "",
        ] {
            let json = format!(
                r#"{{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"{m}"}}"#
            );
            let e = reg(&json).expect_err(m);
            assert_eq!(e.code, RegistrationErrorCode::InvalidClientMetadata, "{m}");
            assert!(
                e.description.contains("is not supported"),
                "{}",
                e.description
            );
        }
    }

    #[test]
    fn hostile_registrations_get_rfc7591_codes() {
        use RegistrationErrorCode::*;
        for (json, code) in [
            (
                r#"{"redirect_uris":["http://evil.example/cb"]}"#,
                InvalidRedirectUri,
            ),
            (r#"{"redirect_uris":[]}"#, InvalidRedirectUri),
            (r#"{"client_name":"x"}"#, InvalidRedirectUri),
            (
                r#"{"redirect_uris":["https://a.example/cb?code=1"]}"#,
                InvalidRedirectUri,
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"software_statement":"eyJ"}"#,
                InvalidSoftwareStatement,
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"client_id":"demo_client"}"#,
                InvalidClientMetadata,
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"client_secret":"s"}"#,
                InvalidClientMetadata,
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}"#,
                InvalidClientMetadata,
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}"#,
                InvalidClientMetadata,
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"logo_uri":"data:image/png,x"}"#,
                InvalidClientMetadata,
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"client_name":"\u0007"}"#,
                InvalidClientMetadata,
            ),
            ("[]", InvalidClientMetadata),
            ("{", InvalidClientMetadata),
        ] {
            let e = reg(json).expect_err(json);
            assert_eq!(e.code, code, "{json}: {e}");
            assert_eq!(e.body()["error"], code.as_str());
        }
    }

    proptest::proptest! {
        #[test]
        fn any_body_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_request(&body, RedirectPolicy { private_use_schemes: true });
        }
    }
}
