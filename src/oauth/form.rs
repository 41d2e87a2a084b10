//! The strict `application/x-www-form-urlencoded` parser of the OAuth endpoints, borrowing from
//! the body: a value without escapes (`%`, `+`) is a slice of the body, not a copy.
//!
//! Rules (the same as [`crate::http::Form`]'s): the body at most [`MAX_FORM_BODY`] bytes, the
//! media type `application/x-www-form-urlencoded`, every parameter at most once (RFC 6749
//! section 3.1), names and values strictly UTF-8 after decoding, an empty value counts as absent.

use crate::error::Error;
use crate::http::{percent_decode, Request, MAX_FORM_BODY};
use std::borrow::Cow;
use std::collections::HashSet;

/// Past this many distinct unknown names, duplicates are found with a hash set (a body of
/// thousands of parameters stays linear), below it by a scan (no allocation for the set).
const SCAN_LIMIT: usize = 16;

/// The values of the parameters `names` (in that order) of a form request. A named parameter
/// sent with an empty value is `Some("")` here (it counts for duplicates); [`present`] drops it.
///
/// # Errors
/// [`Error::PayloadTooLarge`] over [`MAX_FORM_BODY`]; [`Error::InvalidRequest`] for another media
/// type, a malformed escape, non-UTF-8 text or a repeated parameter (known or not).
pub fn fields<'a, const N: usize>(
    req: &'a Request,
    names: [&'static str; N],
) -> Result<[Option<Cow<'a, str>>; N], Error> {
    if req.body.len() > MAX_FORM_BODY {
        return Err(Error::PayloadTooLarge(MAX_FORM_BODY));
    }
    if !is_form(req) {
        return Err(Error::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    parse(&req.body, names)
}

/// [`fields`] of a body alone (no size or media type check): fuzzing and tests.
///
/// # Errors
/// As [`fields`], without the size and media type checks.
pub fn parse<'a, const N: usize>(
    body: &'a [u8],
    names: [&'static str; N],
) -> Result<[Option<Cow<'a, str>>; N], Error> {
    let mut values: [Option<Cow<'a, str>>; N] = std::array::from_fn(|_| None);
    // Names this endpoint does not read: kept only to refuse their repetition.
    let mut others: Vec<Cow<'a, str>> = Vec::new();
    let mut others_set: HashSet<Cow<'a, str>> = HashSet::new();
    for part in body.split(|&b| b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|&b| b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        let k = decode(k)?;
        let v = decode(v)?;
        let repeated = if let Some(i) = names.iter().position(|n| *n == k) {
            let slot = &mut values[i];
            let was = slot.is_some();
            *slot = Some(v);
            was
        } else if others_set.is_empty() && others.len() < SCAN_LIMIT {
            let was = others.contains(&k);
            if !was {
                others.push(k.clone());
            }
            was
        } else {
            others_set.extend(others.drain(..));
            !others_set.insert(k.clone())
        };
        if repeated {
            return Err(Error::InvalidRequest(format!("parameter {k} is repeated")));
        }
    }
    Ok(values)
}

/// A parameter's value, `None` when absent or empty (RFC 6749 section 3.1).
pub fn present(v: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    v.filter(|v| !v.is_empty())
}

/// Whether the body's media type (the first `Content-Type`, parameters ignored) is a form.
fn is_form(req: &Request) -> bool {
    req.has_media_type("application/x-www-form-urlencoded")
}

/// Form-urlencoded decoding, borrowing when there is nothing to decode.
fn decode(input: &[u8]) -> Result<Cow<'_, str>, Error> {
    if input.iter().any(|&b| b == b'%' || b == b'+') {
        percent_decode(input)
            .map(Cow::Owned)
            .map_err(Error::InvalidRequest)
    } else {
        std::str::from_utf8(input)
            .map(Cow::Borrowed)
            .map_err(|_| Error::InvalidRequest("the body is not valid UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn req(body: impl Into<Vec<u8>>) -> Request {
        Request::new(Method::Post, "/oauth/introspect")
            .header(
                "Content-Type",
                "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            )
            .body(body)
    }

    fn invalid(r: Result<[Option<Cow<'_, str>>; 2], Error>) -> String {
        match r {
            Err(Error::InvalidRequest(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn values_borrow_from_the_body_unless_escaped() {
        let r = req("token=abc_123&scope=a+b%2Fc&other=x");
        let [token, scope] = fields(&r, ["token", "scope"]).expect("ok");
        assert!(matches!(token, Some(Cow::Borrowed("abc_123"))));
        assert_eq!(scope.as_deref(), Some("a b/c"));
        assert!(matches!(scope, Some(Cow::Owned(_))));
    }

    #[test]
    fn empty_values_count_for_duplicates_and_as_absent() {
        let r = req("token=&scope");
        let [token, scope] = fields(&r, ["token", "scope"]).expect("ok");
        assert_eq!(token.as_deref(), Some(""));
        assert_eq!(present(token), None);
        assert_eq!(present(scope), None);
        assert_eq!(
            invalid(fields(&req("token=&token=x"), ["token", "scope"])),
            "parameter token is repeated"
        );
    }

    #[test]
    fn repeated_parameters_are_refused_known_or_not_escaped_or_not() {
        for body in [
            "token=a&token=b",
            "x=1&token=a&x=2",
            "to%6Ben=a&token=b",
            "a=1&b=2&c=3&to+ken=1&to+ken=2",
        ] {
            let m = invalid(fields(&req(body), ["token", "scope"]));
            assert!(m.ends_with("is repeated"), "{body}: {m}");
        }
        // many distinct unknown names: the hash set takes over, duplicates still found
        let many: Vec<String> = (0..4000).map(|i| format!("k{i}=v")).collect();
        let body = many.join("&");
        assert!(parse(body.as_bytes(), ["token", "scope"]).is_ok());
        for dup in ["k3", "k17", "k3999"] {
            let dup_body = format!("{body}&{dup}=w");
            let m = invalid(parse(dup_body.as_bytes(), ["token", "scope"]));
            assert_eq!(m, format!("parameter {dup} is repeated"));
        }
    }

    #[test]
    fn malformed_and_non_utf8_bodies_are_refused() {
        for body in [
            &b"token=%FF"[..],
            b"token=%F",
            b"token=%zz",
            b"t=\xff",
            b"\xfe=1",
            b"a=%C3",
        ] {
            let m = invalid(fields(&req(body), ["token", "scope"]));
            assert!(
                m == "malformed percent-encoding" || m == "the body is not valid UTF-8",
                "{body:?}: {m}"
            );
        }
    }

    #[test]
    fn content_type_and_size_are_checked_first() {
        let none = Request::new(Method::Post, "/").body("token=x");
        assert!(matches!(
            fields(&none, ["token"]),
            Err(Error::InvalidRequest(m)) if m.contains("x-www-form-urlencoded")
        ));
        let json = Request::new(Method::Post, "/")
            .header("content-type", "application/json")
            .body("token=x");
        assert!(matches!(
            fields(&json, ["token"]),
            Err(Error::InvalidRequest(_))
        ));
        let prefix = Request::new(Method::Post, "/")
            .header("content-type", "application/x-www-form-urlencodedx")
            .body("token=x");
        assert!(matches!(
            fields(&prefix, ["token"]),
            Err(Error::InvalidRequest(_))
        ));
        let big = req(vec![b'a'; MAX_FORM_BODY + 1]);
        assert!(matches!(
            fields(&big, ["token"]),
            Err(Error::PayloadTooLarge(MAX_FORM_BODY))
        ));
        // oversized wins over the wrong media type, as before
        let big_json = Request::new(Method::Post, "/")
            .header("content-type", "application/json")
            .body(vec![b'a'; MAX_FORM_BODY + 1]);
        assert!(matches!(
            fields(&big_json, ["token"]),
            Err(Error::PayloadTooLarge(_))
        ));
        assert!(fields(&req(vec![b'a'; MAX_FORM_BODY]), ["token"]).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_agrees_with_http_form(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let ours = parse(&body, ["token", "scope", "grant_type"]);
            let theirs = crate::http::Form::parse(&body);
            proptest::prop_assert_eq!(ours.is_ok(), theirs.is_ok());
            if let (Ok([t, s, g]), Ok(f)) = (ours, theirs) {
                let (t, s, g) = (present(t), present(s), present(g));
                proptest::prop_assert_eq!(t.as_deref(), f.get("token"));
                proptest::prop_assert_eq!(s.as_deref(), f.get("scope"));
                proptest::prop_assert_eq!(g.as_deref(), f.get("grant_type"));
            }
        }
    }
}
