//! Strict parsing of request bodies and queries: one JSON object (never an array or a scalar),
//! forms with every parameter at most once, `application/x-www-form-urlencoded` decoding.

use crate::error::Error;

/// Parses `body` as one JSON object into `T`; anything else (an array, a string, a number,
/// `null`, nothing) is a 400 naming what was found.
pub fn parse_json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    // JSON allows only these four whitespace bytes before a value; the first byte after them
    // decides the value's kind, so `{` here means the value is an object (or malformed).
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    let found = match first {
        Some(b'{') => None,
        Some(b'[') => Some("an array"),
        Some(b'"') => Some("a string"),
        Some(b'-' | b'0'..=b'9') => Some("a number"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'n') => Some("null"),
        Some(_) => Some(""),
        None => {
            return Err(Error::InvalidRequest(
                "the body is empty: a JSON object is required".into(),
            ))
        }
    };
    if let Some(found) = found {
        // The first byte only suggests a kind (`name=x` starts like `null`): say "not JSON"
        // unless the whole body is JSON of that kind.
        if found.is_empty() || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
            return Err(Error::InvalidRequest(
                "the body is not JSON: a JSON object is required".into(),
            ));
        }
        return Err(Error::InvalidRequest(format!(
            "the JSON body must be an object, not {found}"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::InvalidRequest(format!("invalid JSON body: {e}")))
}

/// A parsed form: every parameter at most once (RFC 6749 section 3.1: "Request and response
/// parameters MUST NOT be included more than once"), values strictly UTF-8.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Linear in the body's size: duplicates are found with a hash set, not by rescanning.
    pub fn parse(body: &[u8]) -> Result<Form, Error> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut seen: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
        for part in body.split(|&b| b == b'&') {
            if part.is_empty() {
                continue;
            }
            let (k, v) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            let k = percent_decode(k).map_err(Error::InvalidRequest)?;
            let v = percent_decode(v).map_err(Error::InvalidRequest)?;
            if !seen.insert(k.as_bytes().to_vec()) {
                return Err(Error::InvalidRequest(format!("parameter {k} is repeated")));
            }
            pairs.push((k, v));
        }
        Ok(Form(pairs))
    }

    /// A parameter; an empty value counts as absent (RFC 6749 section 3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::InvalidRequest(format!("missing parameter {name}")))
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; the result must
/// be UTF-8.
pub fn percent_decode(input: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "malformed percent-encoding".to_owned())?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the body is not valid UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parses_and_decodes() {
        let f = Form::parse(b"token=a%2Bb+c&hint=&x").expect("ok");
        assert_eq!(f.get("token"), Some("a+b c"));
        assert_eq!(f.get("hint"), None);
        assert_eq!(f.get("x"), None);
        assert!(f.require("missing").is_err());
    }

    #[test]
    fn form_rejects_duplicates() {
        let e = Form::parse(b"token=a&token=b").expect_err("dup");
        assert!(matches!(e, Error::InvalidRequest(ref m) if m.contains("repeated")));
    }

    #[test]
    fn form_rejects_non_utf8_and_bad_escapes() {
        assert!(matches!(
            Form::parse(b"token=%FF"),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            Form::parse(b"token=%F"),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            Form::parse(b"token=%zz"),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            Form::parse(&[b't', b'=', 0xff]),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn form_with_thousands_of_parameters() {
        let body: Vec<String> = (0..4000).map(|i| format!("k{i}=v")).collect();
        let f = Form::parse(body.join("&").as_bytes()).expect("distinct keys");
        assert_eq!(f.get("k3999"), Some("v"));
        let dup = format!("{}&k17=w", body.join("&"));
        assert!(matches!(
            Form::parse(dup.as_bytes()),
            Err(Error::InvalidRequest(m)) if m == "parameter k17 is repeated"
        ));
    }

    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() {
                out.push(b as char);
            } else {
                let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{b:02X}"));
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn form_parse_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = Form::parse(&body);
        }

        #[test]
        fn form_round_trips(pairs in proptest::collection::btree_map("\\PC{1,12}", "\\PC{0,12}", 0..12)) {
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
            let f = Form::parse(body.join("&").as_bytes()).expect("parses");
            for (k, v) in &pairs {
                let want = (!v.is_empty()).then_some(v.as_str());
                proptest::prop_assert_eq!(f.get(k), want);
            }
        }

        #[test]
        fn json_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse_json_object::<serde_json::Value>(&body);
        }

        #[test]
        fn json_arrays_are_always_refused(items in proptest::collection::vec("\\PC{0,8}", 0..5), ws in "[ \t\r\n]{0,3}") {
            let body = format!("{ws}{}", serde_json::to_string(&items).expect("json"));
            proptest::prop_assert!(matches!(
                parse_json_object::<serde_json::Value>(body.as_bytes()),
                Err(Error::InvalidRequest(_))
            ));
        }
    }
}
