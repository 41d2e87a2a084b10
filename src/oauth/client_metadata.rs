//! Client metadata (RFC 7591 section 2) as patgate reads it, shared by client ID metadata
//! documents ([`super::metadata_document`]) and RFC 7591 registration requests
//! ([`super::registration`]): one JSON object, parsed once into [`ClientMetadata`].
//!
//! Read: `client_id`, `client_name`, `redirect_uris`, `logo_uri`, `client_uri`, `grant_types`,
//! `response_types`, `token_endpoint_auth_method`, `scope`; noticed (their presence alone):
//! `client_secret`, `client_secret_expires_at`, `software_statement`. Any other member (`jwks`,
//! `contacts`, ...) is ignored (RFC 7591 2: "MUST ignore any client metadata ... that it does not
//! understand"). A member read twice, or of the wrong JSON type, is refused.
//!
//! Every client these paths create is public (`token_endpoint_auth_method` `none`): which other
//! methods are refused or replaced is the caller's rule. Grant types patgate does not serve are
//! ignored, but `authorization_code` must be among them, and `code` among the response types.

use super::authorize::redirect_uri::{check_registered, RedirectPolicy, RedirectUriError};
use super::uri::Uri;
use crate::scopes::Scopes;
use serde::Deserialize;
use std::fmt;

/// Longest `client_name`, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A grant type a self-registered client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
}

impl GrantType {
    pub const fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            _ => None,
        }
    }
}

/// The metadata members patgate reads, as sent. `Option<IgnoredAny>` notes a member's presence
/// (JSON `null` counts as absent).
#[derive(Deserialize, Default)]
pub(crate) struct RawMetadata {
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub logo_uri: Option<String>,
    pub client_uri: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub scope: Option<String>,
    pub client_secret: Option<serde::de::IgnoredAny>,
    pub client_secret_expires_at: Option<serde::de::IgnoredAny>,
    pub software_statement: Option<serde::de::IgnoredAny>,
}

/// Why metadata was refused. `RedirectUri` is RFC 7591's `invalid_redirect_uri`; everything
/// else `invalid_client_metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    NotJson(String),
    RedirectUri(RedirectUriError),
    Invalid(String),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::NotJson(m) | MetadataError::Invalid(m) => f.write_str(m),
            MetadataError::RedirectUri(e) => write!(f, "redirect_uris: {e}"),
        }
    }
}

fn invalid(m: impl Into<String>) -> MetadataError {
    MetadataError::Invalid(m.into())
}

/// Validated metadata of a public client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub logo_uri: Option<String>,
    pub client_uri: Option<String>,
    /// The grant types patgate serves that the client asked for (always `authorization_code`,
    /// and `refresh_token` if listed), in that order.
    pub grant_types: Vec<GrantType>,
    /// The scopes the client says it may ask for (informational: each request's scopes are
    /// decided at the authorization endpoint).
    pub scope: Option<Scopes>,
}

impl ClientMetadata {
    pub fn uses(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }
}

/// Parses one JSON object of metadata (the object rule and its errors as everywhere in patgate:
/// [`crate::http::parse_json_object`]).
pub(crate) fn parse_raw(body: &[u8]) -> Result<RawMetadata, MetadataError> {
    crate::http::parse_json_object(body).map_err(|e| match e {
        crate::error::Error::InvalidRequest(m) => MetadataError::NotJson(m),
        other => MetadataError::NotJson(other.code().to_owned()),
    })
}

/// The checks common to both sources: name, redirect URIs, web URIs, grant and response types,
/// scope. `name_required`: a metadata document must name its client (the MCP specification).
pub(crate) fn validate(
    raw: RawMetadata,
    policy: RedirectPolicy,
    name_required: bool,
) -> Result<ClientMetadata, MetadataError> {
    let client_name = match raw.client_name {
        Some(n) => Some(check_name(&n)?),
        None if name_required => return Err(invalid("client_name is required")),
        None => None,
    };
    let redirect_uris = raw
        .redirect_uris
        .ok_or(MetadataError::RedirectUri(RedirectUriError::NoneListed))?;
    check_registered(&redirect_uris, policy).map_err(MetadataError::RedirectUri)?;
    let logo_uri = raw
        .logo_uri
        .map(|u| check_web_uri("logo_uri", u))
        .transpose()?;
    let client_uri = raw
        .client_uri
        .map(|u| check_web_uri("client_uri", u))
        .transpose()?;
    let listed = raw
        .grant_types
        .unwrap_or_else(|| vec![GrantType::AuthorizationCode.as_str().to_owned()]);
    if !listed
        .iter()
        .any(|g| g == GrantType::AuthorizationCode.as_str())
    {
        return Err(invalid("grant_types must include authorization_code"));
    }
    let mut grant_types = vec![GrantType::AuthorizationCode];
    if listed.iter().any(|g| g == GrantType::RefreshToken.as_str()) {
        grant_types.push(GrantType::RefreshToken);
    }
    if let Some(rt) = raw.response_types {
        if !rt.iter().any(|t| t == "code") {
            return Err(invalid("response_types must include code"));
        }
    }
    let scope = raw
        .scope
        .map(|s| Scopes::parse(&s).map_err(|e| invalid(format!("scope: {e}"))))
        .transpose()?
        .filter(|s| !s.is_empty());
    Ok(ClientMetadata {
        client_name,
        redirect_uris,
        logo_uri,
        client_uri,
        grant_types,
        scope,
    })
}

/// A display name: trimmed, not blank, at most [`MAX_NAME_CHARS`] characters, without control
/// or bidirectional formatting characters (which could make the consent page show a name other
/// than the one stored).
pub fn check_name(n: &str) -> Result<String, MetadataError> {
    let n = n.trim();
    if n.is_empty() {
        return Err(invalid("client_name must not be blank"));
    }
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("client_name is longer than 100 characters"));
    }
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    if n.chars().any(hidden) {
        return Err(invalid(
            "client_name must not contain control or formatting characters",
        ));
    }
    Ok(n.to_owned())
}

/// An `https` URL without userinfo or fragment (`logo_uri`, `client_uri`).
pub fn check_web_uri(field: &str, u: String) -> Result<String, MetadataError> {
    let ok = Uri::parse(&u).is_ok_and(|p| {
        p.scheme() == "https" && p.host().is_some() && !p.has_userinfo() && p.fragment().is_none()
    });
    if ok {
        Ok(u)
    } else {
        Err(invalid(format!(
            "{field} must be an https URL without user@ or fragment"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(json: &str) -> Result<ClientMetadata, MetadataError> {
        validate(
            parse_raw(json.as_bytes())?,
            RedirectPolicy::default(),
            false,
        )
    }

    #[test]
    fn defaults_and_members() {
        let m = meta(
            r#"{"redirect_uris":["http://127.0.0.1/cb"],"unknown":{"x":1},"client_name":" Tool "}"#,
        )
        .expect("ok");
        assert_eq!(m.client_name.as_deref(), Some("Tool"));
        assert_eq!(m.grant_types, [GrantType::AuthorizationCode]);
        assert!(!m.uses(GrantType::RefreshToken));
        let m = meta(
            r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["refresh_token","authorization_code","urn:x"],
                "response_types":["code","token"],"logo_uri":"https://a.example/l.png","client_uri":"https://a.example/",
                "scope":"a b a","jwks":null}"#,
        )
        .expect("ok");
        assert_eq!(
            m.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(m.logo_uri.as_deref(), Some("https://a.example/l.png"));
        assert_eq!(m.scope.map(|s| s.to_string()).as_deref(), Some("a b"));
        assert!(
            meta(r#"{"redirect_uris":["https://a.example/cb"],"scope":"  "}"#)
                .expect("ok")
                .scope
                .is_none()
        );
    }

    #[test]
    fn hostile_metadata_is_refused() {
        for (json, want) in [
            ("[]", "the JSON body must be an object, not an array"),
            ("null", "the JSON body must be an object, not null"),
            ("", "the body is empty: a JSON object is required"),
            (
                r#"{"redirect_uris":"https://a.example/cb"}"#,
                "invalid type",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://evil.example/"]}"#,
                "duplicate field `redirect_uris`",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"client_name":7}"#,
                "invalid type",
            ),
            ("{}", "redirect_uris: redirect_uris must not be empty"),
            (
                r#"{"redirect_uris":[]}"#,
                "redirect_uris: redirect_uris must not be empty",
            ),
            (
                r#"{"redirect_uris":["http://evil.example/cb"]}"#,
                "redirect_uris: no usable redirect URI",
            ),
            (
                r#"{"redirect_uris":["javascript:alert(1)//"]}"#,
                "redirect_uris: a redirect URI must not use that scheme",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb#f"]}"#,
                "redirect_uris: a redirect URI must not have a fragment",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"client_name":"  "}"#,
                "client_name must not be blank",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"client_name":"Good\u202eevil"}"#,
                "client_name must not contain control or formatting characters",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"client_name":"a\nb"}"#,
                "client_name must not contain control or formatting characters",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"logo_uri":"http://a.example/l.png"}"#,
                "logo_uri must be an https URL",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"logo_uri":"javascript:x"}"#,
                "logo_uri must be an https URL",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"client_uri":"https://u@a.example/"}"#,
                "client_uri must be an https URL",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}"#,
                "grant_types must include authorization_code",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"grant_types":[]}"#,
                "grant_types must include authorization_code",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}"#,
                "response_types must include code",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"scope":"a\"b"}"#,
                "scope: scope",
            ),
        ] {
            let e = meta(json).expect_err(json).to_string();
            assert!(e.starts_with(want) || e.contains(want), "{json}: {e}");
        }
        let long = format!(
            r#"{{"redirect_uris":["https://a.example/cb"],"client_name":"{}"}}"#,
            "é".repeat(101)
        );
        assert_eq!(
            meta(&long).expect_err("long").to_string(),
            "client_name is longer than 100 characters"
        );
        let fits = format!(
            r#"{{"redirect_uris":["https://a.example/cb"],"client_name":"{}"}}"#,
            "é".repeat(100)
        );
        assert!(meta(&fits).is_ok());
        let required = validate(
            parse_raw(br#"{"redirect_uris":["https://a.example/cb"]}"#).expect("json"),
            RedirectPolicy::default(),
            true,
        );
        assert_eq!(required, Err(invalid("client_name is required")));
    }

    proptest::proptest! {
        #[test]
        fn any_body_is_refused_or_valid_without_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Ok(raw) = parse_raw(&body) {
                let _ = validate(raw, RedirectPolicy { private_use_schemes: true }, true);
            }
        }

        #[test]
        fn json_shaped_bodies_never_panic(name in "\\PC{0,20}", uri in "\\PC{0,30}", g in "[a-z_]{0,20}") {
            let body = serde_json::json!({"client_name": name, "redirect_uris": [uri], "grant_types": [g]}).to_string();
            if let Ok(m) = meta(&body) {
                proptest::prop_assert!(m.uses(GrantType::AuthorizationCode));
            }
        }
    }
}
