//! OAuth scopes: the one place where scope strings are parsed, compared, split and joined.
//!
//! On the wire a scope set is a space-separated list of scope tokens (RFC 6749 section 3.3):
//!
//! ```text
//! scope       = scope-token *( SP scope-token )
//! scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
//! ```
//!
//! [`Scopes`] is such a set: tokens in order of first appearance, no duplicates. It displays and
//! serializes as the space-separated string (the `scope` of token responses, introspection,
//! JWT access tokens and gate assertions).
//!
//! Stored formats are not changed by this type: D1 stores a scope list as one space-separated
//! string ([`join`] writes it, [`split`] reads it back, order and repeats kept, so that
//! `scope_owners` stays aligned), and the KV grant stores a JSON array of strings.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest scope token accepted in a request (bytes); also the longest scope name an API
/// resource may own.
pub const MAX_SCOPE_LEN: usize = 128;

/// Why a scope list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// A token has a character outside the scope-token grammar (control characters, `"`, `\`,
    /// non-ASCII).
    Malformed(String),
    /// A token is longer than [`MAX_SCOPE_LEN`].
    TooLong,
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeError::Malformed(s) => write!(f, "scope {s:?} is malformed"),
            ScopeError::TooLong => write!(f, "a scope is longer than {MAX_SCOPE_LEN} bytes"),
        }
    }
}

impl std::error::Error for ScopeError {}

/// Whether `s` is one RFC 6749 scope-token of at most [`MAX_SCOPE_LEN`] bytes.
fn check_token(s: &str) -> Result<(), ScopeError> {
    if s.len() > MAX_SCOPE_LEN {
        return Err(ScopeError::TooLong);
    }
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ScopeError::Malformed(s.to_owned()))
    }
}

/// The tokens of a space-separated scope string, in order, repeats kept; empty tokens (extra
/// spaces) are skipped. Reads what [`join`] wrote.
pub fn split(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A scope list as one space-separated string (D1 columns, the `scope` members on the wire).
pub fn join<S: AsRef<str>>(list: &[S]) -> String {
    let mut out = String::with_capacity(list.iter().map(|s| s.as_ref().len() + 1).sum());
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(s.as_ref());
    }
    out
}

/// A set of scopes in order of first appearance, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parses a request's space-separated `scope` parameter (RFC 6749 section 3.3): every token
    /// must be a scope-token of at most [`MAX_SCOPE_LEN`] bytes; extra spaces are ignored and a
    /// repeated token counts once. The result may be empty: the caller decides whether that is
    /// allowed.
    ///
    /// # Errors
    /// [`ScopeError::Malformed`] or [`ScopeError::TooLong`] for the first bad token.
    pub fn parse(s: &str) -> Result<Scopes, ScopeError> {
        let tokens: Vec<&str> = s.split(' ').filter(|t| !t.is_empty()).collect();
        for t in &tokens {
            check_token(t)?;
        }
        Ok(Scopes::collapse(tokens))
    }

    /// Scopes patgate itself stored or signed (already checked when they were written): split on
    /// spaces, repeats collapsed, nothing refused.
    #[must_use]
    pub fn from_stored(s: &str) -> Scopes {
        Scopes::collapse(s.split(' ').filter(|t| !t.is_empty()).collect())
    }

    /// Scopes patgate already holds as a list (records, checked requests): repeats collapsed.
    #[must_use]
    pub fn from_trusted<S: AsRef<str>>(list: &[S]) -> Scopes {
        Scopes::collapse(list.iter().map(AsRef::as_ref).collect())
    }

    /// `tokens` without repeats, in order of first appearance. Short lists (the usual case) are
    /// compared pairwise; long ones (a request may hold thousands of tokens) go through a hash
    /// set, so that the cost stays linear.
    fn collapse(tokens: Vec<&str>) -> Scopes {
        const LINEAR_UP_TO: usize = 16;
        let mut out: Vec<String> = Vec::with_capacity(tokens.len());
        if tokens.len() <= LINEAR_UP_TO {
            for t in tokens {
                if !out.iter().any(|o| o == t) {
                    out.push(t.to_owned());
                }
            }
        } else {
            let mut seen = std::collections::HashSet::with_capacity(tokens.len());
            for t in tokens {
                if seen.insert(t) {
                    out.push(t.to_owned());
                }
            }
        }
        Scopes(out)
    }

    /// Whether `scope` is in the set.
    #[must_use]
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// The first scope of this set that `allowed` lacks (`None`: this is a subset of it).
    #[must_use]
    pub fn first_outside<S: AsRef<str>>(&self, allowed: &[S]) -> Option<&str> {
        self.0
            .iter()
            .find(|s| !allowed.iter().any(|a| a.as_ref() == s.as_str()))
            .map(String::as_str)
    }

    /// Whether every scope of this set is in `other`.
    #[must_use]
    pub fn is_subset_of<S: AsRef<str>>(&self, other: &[S]) -> bool {
        self.first_outside(other).is_none()
    }

    /// The scopes of this set that are also in `other`, in this set's order.
    #[must_use]
    pub fn intersection<S: AsRef<str>>(&self, other: &[S]) -> Scopes {
        Scopes(
            self.0
                .iter()
                .filter(|s| other.iter().any(|o| o.as_ref() == s.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// The scopes, in order.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The scopes, in order, as a vector.
    #[must_use]
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }
}

impl std::ops::Deref for Scopes {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Collects scopes patgate already holds (repeats collapsed, like [`Scopes::from_trusted`]).
impl FromIterator<String> for Scopes {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Scopes {
        let list: Vec<String> = iter.into_iter().collect();
        Scopes::from_trusted(&list)
    }
}

impl From<Scopes> for Vec<String> {
    fn from(s: Scopes) -> Vec<String> {
        s.0
    }
}

/// Space-separated, as on the wire.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

/// As the space-separated string (written as it is displayed: no string is built first).
impl Serialize for Scopes {
    fn serialize<Se: Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        s.collect_str(self)
    }
}

/// From the space-separated string, leniently ([`Scopes::from_stored`]): only what patgate
/// signed is deserialized.
impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scopes, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Scopes::from_stored(&s))
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parse_follows_the_scope_token_grammar() {
        let s = Scopes::parse("  a:read  b!#[]^~ a:read ").expect("ok");
        assert_eq!(s.as_slice(), v(&["a:read", "b!#[]^~"]).as_slice());
        assert_eq!(s.to_string(), "a:read b!#[]^~");
        assert!(Scopes::parse("").expect("empty").is_empty());
        assert!(Scopes::parse("   ").expect("spaces").is_empty());
        for bad in ["a\"b", "a\\b", "é", "a\tb", "a\nb", "x \u{7f}", "\u{0}"] {
            assert!(
                matches!(Scopes::parse(bad), Err(ScopeError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(Scopes::parse(&"a".repeat(MAX_SCOPE_LEN)).is_ok());
        assert_eq!(
            Scopes::parse(&format!("ok {}", "a".repeat(MAX_SCOPE_LEN + 1))),
            Err(ScopeError::TooLong)
        );
    }

    /// Long requests (the form body allows thousands of tokens) keep first-appearance order
    /// and collapse repeats like short ones.
    #[test]
    fn long_lists_collapse_like_short_ones() {
        let distinct: Vec<String> = (0..4000).map(|i| format!("s{i}")).collect();
        let mut input = join(&distinct);
        input.push(' ');
        input.push_str(&join(&distinct[..100]));
        let s = Scopes::parse(&input).expect("ok");
        assert_eq!(s.as_slice(), distinct.as_slice());
        let short = Scopes::parse("b a b c a").expect("ok");
        assert_eq!(short.to_string(), "b a c");
        let long: Scopes = ["b", "a", "b", "c", "a"]
            .iter()
            .cycle()
            .take(40)
            .map(|t| (*t).to_owned())
            .collect();
        assert_eq!(long, short);
    }

    #[test]
    fn subset_and_intersection_keep_order() {
        let s = Scopes::parse("c a b").expect("ok");
        assert!(s.is_subset_of(&["a", "b", "c", "d"]));
        assert_eq!(s.first_outside(&["a", "c"]), Some("b"));
        assert_eq!(s.intersection(&["b", "c", "z"]).to_string(), "c b");
        assert!(s.intersection(&["z"]).is_empty());
        assert!(Scopes::default().is_subset_of::<&str>(&[]));
        assert!(s.contains("a") && !s.contains("d"));
        assert_eq!(Scopes::from_trusted(&["x", "y", "x"]).len(), 2);
        let collected: Scopes = v(&["y", "x", "y"]).into_iter().collect();
        assert_eq!(collected.as_slice(), v(&["y", "x"]).as_slice());
    }

    #[test]
    fn serde_is_the_space_separated_string() {
        let s = Scopes::parse("a:read b:write").expect("ok");
        assert_eq!(
            serde_json::to_string(&s).expect("json"),
            r#""a:read b:write""#
        );
        let back: Scopes = serde_json::from_str(r#""a:read  b:write a:read""#).expect("json");
        assert_eq!(back, s);
        assert!(serde_json::from_str::<Scopes>("[\"a\"]").is_err());
    }

    /// D1 stores scope lists as one space-separated string: this must not change.
    #[test]
    fn stored_format_unchanged() {
        assert_eq!(
            join(&v(&["demo_api:read", "demo_api:write"])),
            "demo_api:read demo_api:write"
        );
        assert_eq!(join::<String>(&[]), "");
        assert_eq!(split(" a  b "), vec!["a", "b"]);
        assert_eq!(split("a b a"), vec!["a", "b", "a"]);
        assert!(split("").is_empty());
        let list = v(&["x", "y", "z"]);
        assert_eq!(split(&join(&list)), list);
    }

    proptest::proptest! {
        /// Any string: an error or a set that displays as a string that parses back to itself.
        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,200}") {
            if let Ok(scopes) = Scopes::parse(&s) {
                proptest::prop_assert_eq!(Scopes::parse(&scopes.to_string()).ok(), Some(scopes));
            }
        }

        /// Printable ASCII with spaces (mostly valid): parsing is idempotent, the set has no
        /// repeats, is a subset of the input's tokens, and the stored form round-trips.
        #[test]
        fn parse_round_trips_printable_ascii(s in "[ -~]{0,200}") {
            if let Ok(scopes) = Scopes::parse(&s) {
                let tokens = split(&s);
                proptest::prop_assert!(scopes.is_subset_of(&tokens));
                proptest::prop_assert!(scopes
                    .iter()
                    .enumerate()
                    .all(|(i, t)| !scopes[..i].contains(t)));
                proptest::prop_assert_eq!(Scopes::from_stored(&join(scopes.as_slice())), scopes.clone());
                proptest::prop_assert_eq!(Scopes::parse(&scopes.to_string()).ok(), Some(scopes));
            } else {
                proptest::prop_assert!(s.contains('"') || s.contains('\\')
                    || split(&s).iter().any(|t| t.len() > MAX_SCOPE_LEN));
            }
        }
    }
}
