//! The page's form bodies and the cross-site check every POST passes first.
//!
//! Unlike the OAuth forms ([`crate::oauth::form`]) a field may repeat here, but only where the
//! page says so (the scope checkboxes); every other field must appear at most once.

use crate::error::Error;
use crate::http::{percent_decode, Request, MAX_FORM_BODY};

/// At most this many fields in one form.
const MAX_FIELDS: usize = 64;

#[derive(Debug, Default)]
pub struct PageForm(Vec<(String, String)>);

impl PageForm {
    pub fn parse(req: &Request) -> Result<PageForm, Error> {
        if req.body.len() > MAX_FORM_BODY {
            return Err(Error::PayloadTooLarge(MAX_FORM_BODY));
        }
        let media = req
            .get_header("content-type")?
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if media.as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(Error::InvalidRequest(
                "the form must be sent as application/x-www-form-urlencoded".into(),
            ));
        }
        let mut pairs = Vec::new();
        for part in req.body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            if pairs.len() == MAX_FIELDS {
                return Err(Error::InvalidRequest("too many form fields".into()));
            }
            let (k, v) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            let k = percent_decode(k).map_err(Error::InvalidRequest)?;
            let v = percent_decode(v).map_err(Error::InvalidRequest)?;
            pairs.push((k, v));
        }
        Ok(PageForm(pairs))
    }

    /// A single-valued field (`""` if absent); repeated is an error.
    pub fn one(&self, name: &str) -> Result<&str, Error> {
        let mut it = self.0.iter().filter(|(k, _)| k == name);
        let v = it.next().map_or("", |(_, v)| v.as_str());
        if it.next().is_some() {
            return Err(Error::InvalidRequest(format!("field {name} is repeated")));
        }
        Ok(v)
    }

    /// A checkbox without a `value` attribute: absent is `false`, exactly one `on` (what browsers
    /// send) is `true`; anything else (another value, an empty one, repeated) is `None`, for the
    /// form to report as a validation error.
    pub fn checkbox(&self, name: &str) -> Option<bool> {
        let mut it = self.0.iter().filter(|(k, _)| k == name);
        match (it.next(), it.next()) {
            (None, _) => Some(false),
            (Some((_, v)), None) if v == "on" => Some(true),
            _ => None,
        }
    }

    /// Every value of a multi-valued field, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The scheme and authority of a base URL (`https://host:port`), lowercased.
pub fn origin_of(base: &str) -> String {
    let after = base.find("://").map_or(0, |i| i + 3);
    let end = base[after..].find('/').map_or(base.len(), |i| after + i);
    base[..end].to_ascii_lowercase()
}

/// Whether a state-changing request may come from where it says it comes from, in the order of
/// Go 1.25's `net/http` cross-origin protection:
/// 1. `Sec-Fetch-Site: same-origin` or `none` passes (with `Referrer-Policy: no-referrer`,
///    browsers send `Origin: null` on same-origin form posts; a non-null `Origin` must still be
///    ours), any other `Sec-Fetch-Site` value is refused;
/// 2. without `Sec-Fetch-Site`, an `Origin` must be exactly ours (`null` is refused);
/// 3. with neither header it is not a browser's cross-site request: it passes (the CSRF token is
///    still required).
pub fn same_origin(req: &Request, own: &str) -> Result<(), &'static str> {
    let site = req
        .get_header("sec-fetch-site")
        .map_err(|_| "repeated Sec-Fetch-Site")?;
    let origin = req.get_header("origin").map_err(|_| "repeated Origin")?;
    let ours = |o: &str| o.eq_ignore_ascii_case(own);
    match site {
        Some(s) if s.eq_ignore_ascii_case("same-origin") || s.eq_ignore_ascii_case("none") => {
            match origin {
                Some(o) if o != "null" && !ours(o) => Err("Origin is another site"),
                _ => Ok(()),
            }
        }
        Some(_) => Err("Sec-Fetch-Site is not same-origin"),
        None => match origin {
            None => Ok(()),
            Some(o) if ours(o) => Ok(()),
            Some(_) => Err("Origin is not this site"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    const OWN: &str = "https://patgate.test";

    fn post(headers: &[(&str, &str)]) -> Request {
        headers
            .iter()
            .fold(Request::new(Method::Post, "/tokens/new"), |r, (k, v)| {
                r.header(k, v)
            })
    }

    #[test]
    fn origin_rules() {
        let ok: &[&[(&str, &str)]] = &[
            &[("sec-fetch-site", "same-origin"), ("origin", "null")],
            &[("sec-fetch-site", "same-origin"), ("origin", OWN)],
            &[("sec-fetch-site", "same-origin")],
            &[("sec-fetch-site", "none")],
            &[("origin", OWN)],
            &[("origin", "HTTPS://PATGATE.TEST")],
            &[],
        ];
        for h in ok {
            assert_eq!(same_origin(&post(h), OWN), Ok(()), "{h:?}");
        }
        let refused: &[&[(&str, &str)]] = &[
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.test"),
            ],
            &[("sec-fetch-site", "cross-site"), ("origin", OWN)],
            &[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://a.patgate.test"),
            ],
            &[("sec-fetch-site", "weird")],
            &[
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://evil.test"),
            ],
            &[("origin", "null")],
            &[("origin", "https://evil.test")],
            &[("origin", "https://patgate.test.evil.test")],
            &[("origin", "http://patgate.test")],
            &[
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-site", "same-origin"),
            ],
            &[("origin", OWN), ("origin", OWN)],
        ];
        for h in refused {
            assert!(same_origin(&post(h), OWN).is_err(), "{h:?}");
        }
    }

    #[test]
    fn origin_of_base_urls() {
        assert_eq!(origin_of("http://127.0.0.1:8787"), "http://127.0.0.1:8787");
        assert_eq!(
            origin_of("https://Auth.Example.com/x"),
            "https://auth.example.com"
        );
    }

    fn form(body: &str) -> Request {
        Request::new(Method::Post, "/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    #[test]
    fn form_fields() {
        let f = PageForm::parse(&form("name=a+b%26c&scope=x&scope=y&empty=")).expect("ok");
        assert_eq!(f.one("name"), Ok("a b&c"));
        assert_eq!(f.one("missing"), Ok(""));
        assert_eq!(f.one("empty"), Ok(""));
        assert_eq!(f.all("scope"), vec!["x", "y"]);
        assert!(
            f.one("scope").is_err(),
            "a repeated single field is refused"
        );
    }

    #[test]
    fn checkboxes_are_on_or_absent() {
        let f = PageForm::parse(&form("a=on&b=&c=true&d=ON&e=on&e=on&f=on%20&g")).expect("ok");
        assert_eq!(f.checkbox("a"), Some(true));
        assert_eq!(f.checkbox("absent"), Some(false));
        for bad in ["b", "c", "d", "e", "f", "g"] {
            assert_eq!(f.checkbox(bad), None, "{bad}");
        }
    }

    #[test]
    fn hostile_forms() {
        assert!(matches!(
            PageForm::parse(&form(&"a".repeat(MAX_FORM_BODY + 1))),
            Err(Error::PayloadTooLarge(_))
        ));
        assert!(PageForm::parse(&form(&"a=1&".repeat(MAX_FIELDS + 1))).is_err());
        assert!(PageForm::parse(&form("name=%FF")).is_err());
        assert!(PageForm::parse(&form("name=%4")).is_err());
        let json = Request::new(Method::Post, "/")
            .header("content-type", "application/json")
            .body("{}");
        assert!(PageForm::parse(&json).is_err());
        assert!(PageForm::parse(&Request::new(Method::Post, "/").body("a=1")).is_err());
    }
}
