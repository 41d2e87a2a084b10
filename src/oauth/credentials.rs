//! The client credentials a request presents (RFC 6749 section 2.3.1), parsed once:
//! `client_secret_basic` (the `Authorization: Basic` header), `client_secret_post` (`client_id`
//! and `client_secret` in the form), a public client's `client_id` alone, or nothing. Both
//! methods at once is `invalid_request`. Authenticating them is `app::client_auth`'s job.
//!
//! Secrets are never shown by `Debug`, and are only ever hashed (`secret_hash`).

use crate::error::Error;
use crate::http::Request;
use crate::secret::SecretHash;
use base64::Engine as _;
use std::borrow::Cow;
use std::fmt;

/// What a request presented to identify its client.
pub enum Presented<'a> {
    /// `client_secret_basic` (a `client_id` form parameter, if any, names the same client).
    Basic(BasicCredentials),
    /// `client_secret_post`.
    Post {
        id: Cow<'a, str>,
        secret: Cow<'a, str>,
    },
    /// A public client's `client_id`, without a secret.
    ClientId(Cow<'a, str>),
    None,
}

impl Presented<'_> {
    /// From the request's `Authorization` header and its (already parsed) `client_id` and
    /// `client_secret` form parameters (empty = absent).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for a repeated `Authorization` header, both methods at once, a
    /// `client_id` that contradicts the header, a secret without an id;
    /// [`Error::InvalidClient`] for malformed Basic credentials.
    pub fn parse<'a>(
        req: &Request,
        client_id: Option<Cow<'a, str>>,
        client_secret: Option<Cow<'a, str>>,
    ) -> Result<Presented<'a>, Error> {
        let basic = BasicCredentials::from_request(req)?;
        match (basic, client_id, client_secret) {
            (Some(_), _, Some(_)) => Err(Error::InvalidRequest(
                "use one client authentication method, not both".into(),
            )),
            (Some(b), Some(pid), None) if pid != b.id() => Err(Error::InvalidRequest(
                "client_id does not match the Authorization header".into(),
            )),
            (Some(b), _, None) => Ok(Presented::Basic(b)),
            (None, Some(id), Some(secret)) => Ok(Presented::Post { id, secret }),
            (None, Some(id), None) => Ok(Presented::ClientId(id)),
            (None, None, Some(_)) => Err(Error::InvalidRequest(
                "client_secret without client_id".into(),
            )),
            (None, None, None) => Ok(Presented::None),
        }
    }

    /// The client id presented, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            Presented::Basic(b) => Some(b.id()),
            Presented::Post { id, .. } | Presented::ClientId(id) => Some(id),
            Presented::None => None,
        }
    }

    /// The SHA-256 of the secret presented, if any (what stored hashes are compared with).
    pub fn secret_hash(&self) -> Option<SecretHash> {
        match self {
            Presented::Basic(b) => Some(SecretHash::of(b.secret())),
            Presented::Post { secret, .. } => Some(SecretHash::of(secret)),
            Presented::ClientId(_) | Presented::None => None,
        }
    }
}

impl fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Presented::Basic(b) => f.debug_tuple("Basic").field(b).finish(),
            Presented::Post { id, .. } => f
                .debug_struct("Post")
                .field("id", id)
                .field("secret", &"[REDACTED]")
                .finish(),
            Presented::ClientId(id) => f.debug_tuple("ClientId").field(id).finish(),
            Presented::None => f.write_str("None"),
        }
    }
}

/// `Authorization: Basic` credentials, decoded per RFC 6749 section 2.3.1 (each part
/// form-urlencoded before base64): one buffer holding the id, then the secret.
pub struct BasicCredentials {
    decoded: String,
    id_len: usize,
}

impl BasicCredentials {
    /// `None` when there is no `Authorization` header or its scheme is not `Basic`.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for a repeated header; [`Error::InvalidClient`] when the
    /// credentials are not base64 of UTF-8 `id:secret`, each part validly form-urlencoded.
    pub fn from_request(req: &Request) -> Result<Option<Self>, Error> {
        let Some(auth) = req.get_header("authorization")? else {
            return Ok(None);
        };
        let Some((scheme, rest)) = auth.split_once(' ') else {
            return Ok(None);
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return Ok(None);
        }
        Self::decode(rest.trim())
            .map(Some)
            .ok_or_else(|| Error::InvalidClient("malformed Basic credentials".into()))
    }

    /// Decodes the base64 once, then each form-urlencoded part in place (decoding only shrinks).
    fn decode(b64: &str) -> Option<Self> {
        let mut raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        std::str::from_utf8(&raw).ok()?;
        let colon = raw.iter().position(|&b| b == b':')?;
        let id_len = unescape_in_place(&mut raw, 0..colon, 0)?;
        let end = raw.len();
        let secret_len = unescape_in_place(&mut raw, colon + 1..end, id_len)?;
        raw.truncate(id_len + secret_len);
        // Each part must be UTF-8 on its own (a character split across the two is refused).
        std::str::from_utf8(&raw[..id_len]).ok()?;
        std::str::from_utf8(&raw[id_len..]).ok()?;
        let decoded = String::from_utf8(raw).ok()?;
        Some(BasicCredentials { decoded, id_len })
    }

    pub fn id(&self) -> &str {
        &self.decoded[..self.id_len]
    }

    fn secret(&self) -> &str {
        &self.decoded[self.id_len..]
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("id", &self.id())
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// Form-urlencoding decoding of `buf[src]` written from `buf[dst]` on (`dst <= src.start`: the
/// writer never passes the reader). Returns the decoded length; `None` for a malformed escape.
fn unescape_in_place(buf: &mut [u8], src: std::ops::Range<usize>, dst: usize) -> Option<usize> {
    let (mut r, mut w) = (src.start, dst);
    while r < src.end {
        let b = match buf[r] {
            b'+' => b' ',
            b'%' => {
                let hex = buf.get(r + 1..r + 3).filter(|_| r + 3 <= src.end)?;
                let hex = std::str::from_utf8(hex).ok()?;
                r += 2;
                u8::from_str_radix(hex, 16).ok()?
            }
            b => b,
        };
        buf[w] = b;
        w += 1;
        r += 1;
    }
    Some(w - dst)
}

/// The pre-existing two-allocation decoding, kept as the reference the in-place one must agree
/// with (tests).
#[cfg(test)]
fn reference_decode(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((
        crate::http::percent_decode(id.as_bytes()).ok()?,
        crate::http::percent_decode(secret.as_bytes()).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn with_basic(raw: &[u8]) -> Request {
        Request::new(Method::Post, "/oauth/token")
            .header("authorization", &format!("Basic {}", b64(raw)))
    }

    fn parse<'a>(
        req: &Request,
        id: Option<&'a str>,
        secret: Option<&'a str>,
    ) -> Result<Presented<'a>, Error> {
        Presented::parse(req, id.map(Cow::Borrowed), secret.map(Cow::Borrowed))
    }

    #[test]
    fn basic_is_form_urldecoded_per_part() {
        let r = with_basic(b"my%20client:p%3Ass+w%2Bd");
        let p = parse(&r, None, None).expect("ok");
        assert_eq!(p.id(), Some("my client"));
        assert_eq!(p.secret_hash(), Some(SecretHash::of("p:ss w+d")));
        // the first colon separates: a secret may hold more
        let r = with_basic(b"id:a:b");
        let p = parse(&r, None, None).expect("ok");
        assert_eq!(
            (p.id(), p.secret_hash()),
            (Some("id"), Some(SecretHash::of("a:b")))
        );
        // an empty secret is a secret (authentication refuses it later)
        let r = with_basic(b"id:");
        assert_eq!(
            parse(&r, None, None).expect("ok").secret_hash(),
            Some(SecretHash::of(""))
        );
        // scheme is case-insensitive
        let r = Request::new(Method::Post, "/")
            .header("authorization", &format!("bAsIc {}", b64(b"a:b")));
        assert_eq!(parse(&r, None, None).expect("ok").id(), Some("a"));
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        let bad = |value: &str| {
            let r = Request::new(Method::Post, "/").header("authorization", value);
            match parse(&r, None, None) {
                Err(Error::InvalidClient(m)) => assert_eq!(m, "malformed Basic credentials"),
                other => panic!("{value}: {other:?}"),
            }
        };
        bad("Basic !!!");
        bad("Basic YQ"); // not padded
        bad(&format!("Basic {}", b64(b"no-colon")));
        bad(&format!("Basic {}", b64(b"\xff\xfe:x"))); // not UTF-8
        bad(&format!("Basic {}", b64(b"id:%FF"))); // decodes to non-UTF-8
        bad(&format!("Basic {}", b64(b"%C3:%A9"))); // a character split across the parts
        bad(&format!("Basic {}", b64(b"id:%4"))); // truncated escape
        bad(&format!("Basic {}", b64(b"i%d:x")));
        bad(&format!("Basic {}", b64(b"id%3:x"))); // escape crossing the colon
    }

    #[test]
    fn other_schemes_and_no_header_present_nothing() {
        let r = Request::new(Method::Post, "/").header("authorization", "Bearer abc");
        assert!(matches!(parse(&r, None, None), Ok(Presented::None)));
        let r = Request::new(Method::Post, "/").header("authorization", "Basic");
        assert!(matches!(parse(&r, None, None), Ok(Presented::None)));
        let r = Request::new(Method::Post, "/");
        assert!(matches!(parse(&r, Some("pub"), None), Ok(Presented::ClientId(id)) if id == "pub"));
        assert!(matches!(
            parse(&r, Some("c"), Some("s")),
            Ok(Presented::Post { ref id, .. }) if id == "c"
        ));
    }

    #[test]
    fn both_methods_contradictions_and_repeats_are_invalid_request() {
        let r = with_basic(b"c:s");
        let err = |p: Result<Presented<'_>, Error>| match p {
            Err(Error::InvalidRequest(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(parse(&r, Some("c"), Some("s"))),
            "use one client authentication method, not both"
        );
        assert_eq!(
            err(parse(&r, None, Some("s"))),
            "use one client authentication method, not both"
        );
        assert_eq!(
            err(parse(&r, Some("other"), None)),
            "client_id does not match the Authorization header"
        );
        assert!(matches!(
            parse(&r, Some("c"), None),
            Ok(Presented::Basic(_))
        ));
        assert_eq!(
            err(parse(&Request::new(Method::Post, "/"), None, Some("s"))),
            "client_secret without client_id"
        );
        let twice = with_basic(b"c:s").header("authorization", "Basic Yzpz");
        assert_eq!(
            err(parse(&twice, None, None)),
            "repeated authorization header"
        );
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let r = with_basic(b"c:basic-secret-value");
        let basic = parse(&r, None, None).expect("ok");
        let post = parse(
            &Request::new(Method::Post, "/"),
            Some("c"),
            Some("post-secret-value"),
        )
        .expect("ok");
        for p in [basic, post] {
            let shown = format!("{p:?}");
            assert!(!shown.contains("secret-value"), "{shown}");
            assert!(shown.contains("REDACTED") && shown.contains('c'), "{shown}");
        }
    }

    proptest::proptest! {
        #[test]
        fn in_place_decoding_agrees_with_the_reference(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            let encoded = b64(&raw);
            let ours = BasicCredentials::decode(&encoded).map(|b| (b.id().to_owned(), b.secret().to_owned()));
            proptest::prop_assert_eq!(ours, reference_decode(&encoded));
        }

        #[test]
        fn in_place_decoding_agrees_on_escapes(id in "[a-z%+:0-9A-F\u{e9}]{0,12}", secret in "[a-z%+:0-9A-F\u{e9}]{0,12}") {
            let encoded = b64(format!("{id}:{secret}").as_bytes());
            let ours = BasicCredentials::decode(&encoded).map(|b| (b.id().to_owned(), b.secret().to_owned()));
            proptest::prop_assert_eq!(ours, reference_decode(&encoded));
        }

        #[test]
        fn basic_credentials_round_trip(id in "\\PC{1,20}", secret in "\\PC{0,20}") {
            let enc = |s: &str| -> String {
                s.bytes()
                    .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
                    .collect()
            };
            let r = with_basic(format!("{}:{}", enc(&id), enc(&secret)).as_bytes());
            let Ok(Presented::Basic(b)) = parse(&r, None, None) else {
                return Err(proptest::test_runner::TestCaseError::fail("not Basic"));
            };
            proptest::prop_assert_eq!((b.id(), b.secret()), (id.as_str(), secret.as_str()));
        }

        #[test]
        fn any_header_parses_without_panic(value in "\\PC{0,200}", scheme in "(Basic|basic|Bearer|x)") {
            let r = Request::new(Method::Post, "/").header("authorization", &format!("{scheme} {value}"));
            let _ = BasicCredentials::from_request(&r);
        }
    }
}
