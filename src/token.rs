//! The opaque reference-token format.
//!
//! `pgp_` (personal access token) or `pga_` (client access token), then 43 base62 characters of
//! randomness (43 * log2(62) = 256.03 bits from `getrandom`), then 6 base62 characters of CRC32
//! (IEEE) over everything before them. 53 characters in all, e.g.
//! `pgp_3Vd0qQm8CfZJvHyT0kq1rY2iXK7GmN4bW5sD9uE6aLp0J1nUx`.
//!
//! This follows GitHub's token format: the fixed prefix makes leaked tokens easy for secret
//! scanners to find, and the checksum lets the service reject typos and garbage without any
//! storage read. **The prefixes, the alphabet and the checksum must never change**: tokens
//! already handed out would stop parsing, and scanners match on them.
//!
//! A human-readable part may stand before `--` (`ci-deploy-20261123-20270101--pgp_...`, as
//! IdentityServer does); it is informational and ignored on lookup.
//!
//! Only the SHA-256 of the whole token ([`TokenHash`]) is ever stored.

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Longest input accepted by [`PlainToken::parse`]; anything longer is rejected before parsing.
pub const MAX_INPUT_LEN: usize = 150;
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
const PREFIX_LEN: usize = 4;
/// Length of a token without a human-readable part.
pub const TOKEN_LEN: usize = PREFIX_LEN + RANDOM_LEN + CHECKSUM_LEN;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a token was issued as; the prefix says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A personal access token (`pgp_`), owned by a user.
    Pat,
    /// A reference access token issued to a client (`pga_`).
    Access,
}

impl TokenKind {
    /// The fixed prefix. Never change it.
    pub const fn prefix(self) -> &'static str {
        match self {
            TokenKind::Pat => "pgp_",
            TokenKind::Access => "pga_",
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Pat => "pat",
            TokenKind::Access => "access",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "pat" => Some(TokenKind::Pat),
            "access" => Some(TokenKind::Access),
            _ => None,
        }
    }
}

/// Why a string is not a token. Precise for logs and tests; callers answer all of them the same
/// way (`{"active":false}`), so the variants never reach a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    TooLong,
    MissingPrefix,
    InvalidLength,
    InvalidCharacter,
    InvalidChecksum,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::TooLong => "input longer than 150 characters",
            ParseError::MissingPrefix => "unknown token prefix",
            ParseError::InvalidLength => "wrong token length",
            ParseError::InvalidCharacter => "character outside the base62 alphabet",
            ParseError::InvalidChecksum => "checksum mismatch",
        })
    }
}

/// A syntactically valid token (prefix, alphabet, length and checksum checked). Secret: `Debug`
/// is redacted; the text is reachable only through [`PlainToken::expose_secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct PlainToken {
    kind: TokenKind,
    text: String,
}

impl PlainToken {
    /// A fresh random token of the given kind.
    pub fn generate(kind: TokenKind) -> Result<Self, getrandom::Error> {
        Ok(PlainToken {
            kind,
            text: generate_checksummed(kind.prefix())?,
        })
    }

    /// Parses a presented token. A human-readable part before the last `--` is ignored.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(ParseError::TooLong);
        }
        let token = match input.rfind("--") {
            Some(i) => &input[i + 2..],
            None => input,
        };
        let kind = if token.starts_with(TokenKind::Pat.prefix()) {
            TokenKind::Pat
        } else if token.starts_with(TokenKind::Access.prefix()) {
            TokenKind::Access
        } else {
            return Err(ParseError::MissingPrefix);
        };
        check_checksummed(token)?;
        Ok(PlainToken {
            kind,
            text: token.to_owned(),
        })
    }

    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The token text, to show once to its owner. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The SHA-256 of the token: the only form that is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.text.as_bytes()).into())
    }
}

impl fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainToken({}[REDACTED])", self.kind.prefix())
    }
}

impl FromStr for PlainToken {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// SHA-256 of a token. Stored in D1 (hex) and used as the KV key; looking up by hash needs no
/// secret comparison at all.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Lowercase hex: the persisted form (D1 `tokens.token_hash`, KV key suffix). Never change it.
    pub fn to_hex(&self) -> String {
        crate::encoding::hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        crate::encoding::unhex32(s).map(TokenHash)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", &self.to_hex()[..12])
    }
}

/// A fresh token of this module's format with another 4-character `prefix` (the authorization
/// server's codes and refresh tokens, `crate::authz::secrets`): `prefix`, 43 random base62
/// characters, 6 base62 characters of CRC32 over everything before them.
pub(crate) fn generate_checksummed(prefix: &str) -> Result<String, getrandom::Error> {
    debug_assert_eq!(prefix.len(), PREFIX_LEN);
    let mut text = String::with_capacity(TOKEN_LEN);
    text.push_str(prefix);
    random_base62(RANDOM_LEN, &mut text)?;
    let crc = crc32fast::hash(text.as_bytes());
    push_base62_fixed(u64::from(crc), CHECKSUM_LEN, &mut text);
    Ok(text)
}

/// Checks the length, alphabet and checksum of a token whose 4-character prefix the caller
/// already recognised (no human-readable part: the caller strips it if it allows one).
pub(crate) fn check_checksummed(token: &str) -> Result<(), ParseError> {
    if token.len() != TOKEN_LEN {
        return Err(ParseError::InvalidLength);
    }
    let bytes = token.as_bytes();
    let body = &bytes[PREFIX_LEN..];
    if !body.iter().all(u8::is_ascii_alphanumeric) {
        return Err(ParseError::InvalidCharacter);
    }
    let (signed, checksum) = bytes.split_at(TOKEN_LEN - CHECKSUM_LEN);
    let expected = crc32fast::hash(signed);
    if decode_base62(checksum) != Some(u64::from(expected)) {
        return Err(ParseError::InvalidChecksum);
    }
    Ok(())
}

/// Appends `n` uniformly random base62 characters (rejection sampling, no modulo bias).
pub(crate) fn random_base62(n: usize, out: &mut String) -> Result<(), getrandom::Error> {
    let mut buf = [0u8; 64];
    let mut produced = 0;
    while produced < n {
        getrandom::fill(&mut buf)?;
        for b in buf {
            // 248 = 4 * 62: values below it map uniformly onto the alphabet.
            if b < 248 {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
                produced += 1;
                if produced == n {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// A random identifier (128 bits, 22 base62 characters) for records such as PAT ids.
pub fn random_id() -> Result<String, getrandom::Error> {
    let mut s = String::with_capacity(22);
    random_base62(22, &mut s)?;
    Ok(s)
}

fn push_base62_fixed(mut value: u64, width: usize, out: &mut String) {
    let mut digits = [b'0'; 11];
    for d in digits.iter_mut().take(width).rev() {
        *d = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out.extend(digits[..width].iter().map(|&b| char::from(b)));
}

fn decode_base62(s: &[u8]) -> Option<u64> {
    s.iter().try_fold(0u64, |acc, &c| {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => return None,
        };
        acc.checked_mul(62)?.checked_add(u64::from(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gen(kind: TokenKind) -> PlainToken {
        PlainToken::generate(kind).expect("randomness")
    }

    #[test]
    fn generated_tokens_parse_back() {
        for kind in [TokenKind::Pat, TokenKind::Access] {
            let t = gen(kind);
            assert_eq!(t.expose_secret().len(), TOKEN_LEN);
            assert!(t.expose_secret().starts_with(kind.prefix()));
            let back = PlainToken::parse(t.expose_secret()).expect("parses");
            assert_eq!(back, t);
            assert_eq!(back.kind(), kind);
            assert_eq!(back.hash(), t.hash());
        }
    }

    #[test]
    fn tokens_are_distinct() {
        assert_ne!(gen(TokenKind::Pat), gen(TokenKind::Pat));
    }

    /// Pinned vector (computed independently with Python's zlib.crc32 and hashlib): the format
    /// (prefix, alphabet, CRC32, base62 width) and the stored hash must never change.
    #[test]
    fn known_token_is_pinned() {
        let s = "pgp_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg2erWUj";
        let t = PlainToken::parse(s).expect("parses");
        assert_eq!(t.kind(), TokenKind::Pat);
        assert_eq!(
            t.hash().to_hex(),
            "a8e81f950aa391da0fafd625908ab18554e1cdc276ade3cdabaa831dab6f991b"
        );
        let mut body = s[..47].to_owned();
        push_base62_fixed(0x9133_8f89, CHECKSUM_LEN, &mut body);
        assert_eq!(body, s);
    }

    #[test]
    fn checksum_encoding_is_big_endian_zero_padded() {
        let mut s = String::new();
        push_base62_fixed(61, 6, &mut s);
        assert_eq!(s, "00000z");
        s.clear();
        push_base62_fixed(u64::from(u32::MAX), 6, &mut s);
        assert_eq!(s, "4gfFC3");
        assert_eq!(decode_base62(b"4gfFC3"), Some(u64::from(u32::MAX)));
    }

    #[test]
    fn human_readable_part_is_ignored() {
        let t = gen(TokenKind::Pat);
        let decorated = format!("ci-deploy-20261123-20270101--{}", t.expose_secret());
        assert_eq!(PlainToken::parse(&decorated).expect("parses"), t);
    }

    #[test]
    fn too_long() {
        let input = "a".repeat(151);
        assert_eq!(PlainToken::parse(&input), Err(ParseError::TooLong));
        let t = gen(TokenKind::Pat);
        let padded = format!("{}--{}", "x".repeat(150 - TOKEN_LEN - 1), t.expose_secret());
        assert_eq!(padded.len(), 151);
        assert_eq!(PlainToken::parse(&padded), Err(ParseError::TooLong));
    }

    #[test]
    fn missing_prefix() {
        assert_eq!(PlainToken::parse("garbage"), Err(ParseError::MissingPrefix));
        assert_eq!(PlainToken::parse(""), Err(ParseError::MissingPrefix));
        let t = gen(TokenKind::Pat);
        let other = t.expose_secret().replacen("pgp_", "ghp_", 1);
        assert_eq!(PlainToken::parse(&other), Err(ParseError::MissingPrefix));
    }

    #[test]
    fn invalid_length() {
        let t = gen(TokenKind::Pat);
        assert_eq!(
            PlainToken::parse(&t.expose_secret()[..TOKEN_LEN - 1]),
            Err(ParseError::InvalidLength)
        );
        assert_eq!(
            PlainToken::parse(&format!("{}0", t.expose_secret())),
            Err(ParseError::InvalidLength)
        );
    }

    #[test]
    fn invalid_character() {
        let t = gen(TokenKind::Pat);
        let mut s = t.expose_secret().to_owned();
        s.replace_range(10..11, "_");
        assert_eq!(PlainToken::parse(&s), Err(ParseError::InvalidCharacter));
        // multi-byte characters never panic on slicing
        let mut s = t.expose_secret()[..TOKEN_LEN - 2].to_owned();
        s.push('é');
        assert_eq!(s.len(), TOKEN_LEN);
        assert_eq!(PlainToken::parse(&s), Err(ParseError::InvalidCharacter));
    }

    #[test]
    fn invalid_checksum() {
        let t = gen(TokenKind::Pat);
        let mut s = t.expose_secret().to_owned();
        let last = s.pop().expect("non-empty");
        s.push(if last == '0' { '1' } else { '0' });
        assert_eq!(PlainToken::parse(&s), Err(ParseError::InvalidChecksum));
        // a typo in the random part is caught too
        let mut s = t.expose_secret().to_owned();
        let c = &s[20..21];
        let replacement = if c == "a" { "b" } else { "a" };
        s.replace_range(20..21, replacement);
        assert_eq!(PlainToken::parse(&s), Err(ParseError::InvalidChecksum));
    }

    #[test]
    fn debug_is_redacted() {
        let t = gen(TokenKind::Pat);
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(&t.expose_secret()[4..]));
        assert!(dbg.contains("REDACTED"));
    }

    #[test]
    fn hash_hex_round_trip() {
        let h = gen(TokenKind::Pat).hash();
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(TokenHash::from_hex("zz"), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,200}") {
            let _ = PlainToken::parse(&s);
        }

        #[test]
        fn single_char_substitution_is_detected(pos in 4usize..TOKEN_LEN, c in 0usize..62) {
            let t = gen(TokenKind::Pat);
            let mut bytes = t.expose_secret().as_bytes().to_vec();
            let new = ALPHABET[c];
            prop_assume!(bytes[pos] != new);
            bytes[pos] = new;
            let s = String::from_utf8(bytes).expect("ascii");
            prop_assert!(PlainToken::parse(&s).is_err());
        }
    }
}
