//! RFC 7009 token revocation: the request, parsed once. The answer is an empty 200 whatever the
//! token was (RFC 7009 2.2).

use super::credentials::Presented;
use super::form::{fields, present};
use crate::error::Error;
use crate::http::Request;
use std::borrow::Cow;

/// `POST /oauth/revoke`.
#[derive(Debug)]
pub struct RevocationRequest<'a> {
    pub client: Presented<'a>,
    token: Option<Cow<'a, str>>,
    /// Only a hint: every kind of token is looked up whatever it says.
    pub token_type_hint: Option<Cow<'a, str>>,
}

impl<'a> RevocationRequest<'a> {
    /// # Errors
    /// The form's errors ([`super::form::fields`]), then the credentials' ([`Presented::parse`]).
    pub fn parse(req: &'a Request) -> Result<Self, Error> {
        let [token, hint, id, secret] = fields(
            req,
            ["token", "token_type_hint", "client_id", "client_secret"],
        )?;
        Ok(RevocationRequest {
            client: Presented::parse(req, present(id), present(secret))?,
            token: present(token),
            token_type_hint: present(hint),
        })
    }

    /// The token to revoke.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when the form has none (reported after client authentication).
    pub fn token(&self) -> Result<&str, Error> {
        self.token
            .as_deref()
            .ok_or_else(|| Error::InvalidRequest("missing parameter token".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn form(body: &str) -> Request {
        Request::new(Method::Post, "/oauth/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    #[test]
    fn parses_a_public_client_revocation() {
        let r = form("token=pat_x&client_id=pat_client&token_type_hint=refresh_token");
        let p = RevocationRequest::parse(&r).expect("ok");
        assert_eq!(p.token().expect("token"), "pat_x");
        assert!(matches!(p.client, Presented::ClientId(ref id) if id == "pat_client"));
        assert_eq!(p.token_type_hint.as_deref(), Some("refresh_token"));
        let none = form("client_id=c");
        let none = RevocationRequest::parse(&none).expect("ok");
        assert!(matches!(none.token(), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn hostile_requests_are_refused() {
        for body in [
            "token=a&token=a",
            "client_id=a&client_id=a",
            "token=%ZZ",
            "token=%C3",
        ] {
            assert!(
                matches!(
                    RevocationRequest::parse(&form(body)),
                    Err(Error::InvalidRequest(_))
                ),
                "{body}"
            );
        }
        let text = Request::new(Method::Post, "/oauth/revoke")
            .header("content-type", "text/plain")
            .body("token=a");
        assert!(matches!(
            RevocationRequest::parse(&text),
            Err(Error::InvalidRequest(_))
        ));
        let secret_only = form("token=a&client_secret=s");
        assert!(matches!(
            RevocationRequest::parse(&secret_only),
            Err(Error::InvalidRequest(m)) if m == "client_secret without client_id"
        ));
    }
}
