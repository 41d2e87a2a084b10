//! The authorization server's secrets and identifiers, in `crate::token`'s format where a
//! scanner should find them:
//!
//! | what | form | stored |
//! |---|---|---|
//! | authorization code | `pgc_` + 43 base62 + 6 base62 CRC32 (53 characters) | SHA-256 hex |
//! | refresh token | `pgr_` + 43 base62 + 6 base62 CRC32 | SHA-256 hex |
//! | consent handle | 43 base62 (256 bits), in the consent page's form | SHA-256 hex |
//! | dynamic client id | `pgd_` + 22 base62 random + 22 base62 HMAC tag (48 characters) | as is |
//!
//! **The prefixes, lengths and checksums must never change** (as for `pgp_`/`pga_`): issued
//! codes and refresh tokens would stop parsing, and secret scanners match on them (register
//! `pgr_[0-9A-Za-z]{49}` with GitHub's partner program like the PAT patterns). A checksum lets
//! garbage be refused before any storage read.
//!
//! A dynamic client id carries an HMAC-SHA256 tag (first 128 bits) of its random part under a
//! server key (`CLIENT_ID_KEYS`), so a forged or mistyped id is refused with no storage read at
//! all: self-registered clients can be numerous, and an unknown id must stay cheap. Keys rotate
//! like signing keys: new ids are tagged with the first, every listed key verifies.

use crate::token::{check_checksummed, generate_checksummed, ParseError, TokenHash, MAX_INPUT_LEN};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// What a secret of the authorization server is; its prefix says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// An authorization code (`pgc_`): single use, at most 60 seconds.
    Code,
    /// A refresh token (`pgr_`): rotated on every use.
    Refresh,
}

impl SecretKind {
    /// The fixed prefix. Never change it.
    pub const fn prefix(self) -> &'static str {
        match self {
            SecretKind::Code => "pgc_",
            SecretKind::Refresh => "pgr_",
        }
    }
}

/// A syntactically valid code or refresh token. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct GrantSecret {
    kind: SecretKind,
    text: String,
}

impl GrantSecret {
    /// A fresh random one.
    pub fn generate(kind: SecretKind) -> Result<Self, getrandom::Error> {
        Ok(GrantSecret {
            kind,
            text: generate_checksummed(kind.prefix())?,
        })
    }

    /// Parses a presented code or refresh token of the `expected` kind (a refresh token
    /// presented as a code is refused like garbage). No human-readable part is accepted.
    ///
    /// # Errors
    /// The [`ParseError`] that applies; callers answer every one `invalid_grant`.
    pub fn parse(input: &str, expected: SecretKind) -> Result<Self, ParseError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(ParseError::TooLong);
        }
        if !input.starts_with(expected.prefix()) {
            return Err(ParseError::MissingPrefix);
        }
        check_checksummed(input)?;
        Ok(GrantSecret {
            kind: expected,
            text: input.to_owned(),
        })
    }

    pub fn kind(&self) -> SecretKind {
        self.kind
    }

    /// The text, to hand to the client once. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// The SHA-256: the only form stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.text.as_bytes()).into())
    }
}

impl fmt::Debug for GrantSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantSecret({}[REDACTED])", self.kind.prefix())
    }
}

const HANDLE_LEN: usize = 43;

/// The one-time handle of a pending consent request: in the consent page's form (and URL),
/// stored as its SHA-256, bound to the signed-in user. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsentHandle(String);

impl ConsentHandle {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut s = String::with_capacity(HANDLE_LEN);
        crate::token::random_base62(HANDLE_LEN, &mut s)?;
        Ok(ConsentHandle(s))
    }

    /// `None` unless exactly 43 base62 characters.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == HANDLE_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| ConsentHandle(s.to_owned()))
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for ConsentHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConsentHandle([REDACTED])")
    }
}

/// The prefix of dynamic client ids. Never change it; the admin API refuses ids with it.
pub const DYNAMIC_PREFIX: &str = "pgd_";
const DYNAMIC_RANDOM: usize = 22;
const DYNAMIC_TAG: usize = 22;
/// Length of a dynamic client id.
pub const DYNAMIC_ID_LEN: usize = 4 + DYNAMIC_RANDOM + DYNAMIC_TAG;

/// A key that tags dynamic client ids (kept as the keyed HMAC state). `Debug` is redacted.
#[derive(Clone)]
pub struct ClientIdKey(Hmac<Sha256>);

impl ClientIdKey {
    /// `None` for a key shorter than 32 bytes.
    pub fn new(key: &[u8]) -> Option<Self> {
        if key.len() < 32 {
            return None;
        }
        <Hmac<Sha256> as Mac>::new_from_slice(key)
            .ok()
            .map(ClientIdKey)
    }

    /// A key written in base64 (standard or URL-safe alphabet, padded or not), as
    /// `CLIENT_ID_KEYS` lists them. `None`: not base64, or shorter than 32 bytes.
    pub fn from_base64(text: &str) -> Option<Self> {
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        use base64::Engine as _;
        let t = text.trim().trim_end_matches('=');
        let bytes = STANDARD_NO_PAD
            .decode(t)
            .or_else(|_| URL_SAFE_NO_PAD.decode(t))
            .ok()?;
        Self::new(&bytes)
    }

    /// `CLIENT_ID_KEYS`: a JSON array of base64 keys, the first of which tags new ids.
    ///
    /// # Errors
    /// A sentence for the configuration error (never the key).
    pub fn parse_list(json: &str) -> Result<Vec<Self>, String> {
        let texts: Vec<String> = serde_json::from_str(json)
            .map_err(|_| "CLIENT_ID_KEYS must be a JSON array of base64 strings".to_owned())?;
        if texts.is_empty() {
            return Err("CLIENT_ID_KEYS must list at least one key".to_owned());
        }
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Self::from_base64(t).ok_or_else(|| {
                    format!("CLIENT_ID_KEYS[{i}] must be base64 of at least 32 bytes")
                })
            })
            .collect()
    }

    fn tag(&self, body: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(body.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut first = [0u8; 16];
        first.copy_from_slice(&full[..16]);
        let mut v = u128::from_be_bytes(first);
        let mut digits = [b'0'; DYNAMIC_TAG];
        for d in digits.iter_mut().rev() {
            *d = ALPHABET[(v % 62) as usize];
            v /= 62;
        }
        digits.iter().map(|&b| char::from(b)).collect()
    }
}

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl fmt::Debug for ClientIdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientIdKey([REDACTED])")
    }
}

/// A new dynamic client id, tagged with `key` (the first of the configured keys).
pub fn generate_dynamic_id(key: &ClientIdKey) -> Result<String, getrandom::Error> {
    let mut id = String::with_capacity(DYNAMIC_ID_LEN);
    id.push_str(DYNAMIC_PREFIX);
    crate::token::random_base62(DYNAMIC_RANDOM, &mut id)?;
    let tag = key.tag(&id);
    id.push_str(&tag);
    Ok(id)
}

/// Whether `id` is a dynamic client id (by its shape: the prefix), whatever its tag.
pub fn is_dynamic_id(id: &str) -> bool {
    id.starts_with(DYNAMIC_PREFIX)
}

/// Whether `id` is a dynamic client id tagged by one of `keys` (constant-time comparison).
/// False for anything else: such an id cannot exist, and costs no storage read.
pub fn verify_dynamic_id(id: &str, keys: &[ClientIdKey]) -> bool {
    if id.len() != DYNAMIC_ID_LEN
        || !id.starts_with(DYNAMIC_PREFIX)
        || !id.bytes().skip(4).all(|b| b.is_ascii_alphanumeric())
    {
        return false;
    }
    let (body, tag) = id.split_at(4 + DYNAMIC_RANDOM);
    let mut ok = false;
    for k in keys {
        ok |= bool::from(k.tag(body).as_bytes().ct_eq(tag.as_bytes()));
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"patgate-test-client-id-key-32-bytes!";

    #[test]
    fn keys_are_read_from_base64_in_either_alphabet() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        use base64::Engine as _;
        let bytes = [0xfbu8; 33]; // '+' and '/' in standard base64, '-' and '_' in URL-safe
        let id = generate_dynamic_id(&ClientIdKey::new(&bytes).expect("key")).expect("rng");
        for text in [STANDARD.encode(bytes), URL_SAFE_NO_PAD.encode(bytes)] {
            let k = ClientIdKey::from_base64(&text).expect(&text);
            assert!(verify_dynamic_id(&id, &[k]), "{text}");
        }
        assert!(ClientIdKey::from_base64(&STANDARD.encode([1u8; 31])).is_none());
        assert!(ClientIdKey::from_base64("not base64!").is_none());
        let list = format!(
            r#"["{}", "{}"]"#,
            STANDARD.encode([2u8; 32]),
            STANDARD.encode(bytes)
        );
        let keys = ClientIdKey::parse_list(&list).expect("two keys");
        assert_eq!(keys.len(), 2);
        assert!(verify_dynamic_id(&id, &keys), "any listed key verifies");
        for bad in ["", "[]", "{}", r#"["short"]"#, "[1]"] {
            let e = ClientIdKey::parse_list(bad).expect_err(bad);
            assert!(e.starts_with("CLIENT_ID_KEYS"), "{e}");
        }
    }

    /// Pinned vectors (computed independently with Python's zlib.crc32, hashlib and hmac): the
    /// formats and the stored hashes must never change.
    #[test]
    fn formats_are_pinned() {
        for (s, kind, hash) in [
            (
                "pgc_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg2lg6aY",
                SecretKind::Code,
                "d8fd3af49de95f92ecb5f56a33e0b9d4f7c5b918a1d111c7e482f346804488bd",
            ),
            (
                "pgr_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg0FFccC",
                SecretKind::Refresh,
                "90432a66ddc4347d323ea89999a69f07d8102ce18ec21ed828b0513a850d4923",
            ),
        ] {
            let t = GrantSecret::parse(s, kind).expect("parses");
            assert_eq!(t.hash().to_hex(), hash);
            assert_eq!(t.kind(), kind);
        }
        let key = ClientIdKey::new(KEY).expect("long enough");
        let id = "pgd_0123456789ABCDEFGHIJKL5MVGIQFNVdXRCjogzo4iCD";
        assert!(verify_dynamic_id(id, &[key]));
        let h = ConsentHandle::parse("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ").expect("ok");
        assert_eq!(
            h.hash().to_hex(),
            "46a2199782c8827f0ac56f503be9d39efee97f40a736b92cc7d7c5f825cfd851"
        );
    }

    #[test]
    fn generated_secrets_parse_back_only_as_their_kind() {
        for kind in [SecretKind::Code, SecretKind::Refresh] {
            let t = GrantSecret::generate(kind).expect("rng");
            assert!(t.expose_secret().starts_with(kind.prefix()));
            assert_eq!(GrantSecret::parse(t.expose_secret(), kind), Ok(t.clone()));
            let other = if kind == SecretKind::Code {
                SecretKind::Refresh
            } else {
                SecretKind::Code
            };
            assert_eq!(
                GrantSecret::parse(t.expose_secret(), other),
                Err(ParseError::MissingPrefix)
            );
            assert!(!format!("{t:?}").contains(&t.expose_secret()[4..]));
        }
        assert_ne!(
            GrantSecret::generate(SecretKind::Code).expect("rng"),
            GrantSecret::generate(SecretKind::Code).expect("rng")
        );
        let h = ConsentHandle::generate().expect("rng");
        assert_eq!(ConsentHandle::parse(h.expose_secret()), Some(h.clone()));
        assert!(!format!("{h:?}").contains(h.expose_secret()));
    }

    #[test]
    fn garbage_is_refused_before_storage() {
        let t = GrantSecret::generate(SecretKind::Refresh).expect("rng");
        let s = t.expose_secret();
        let mut typo = s.to_owned();
        typo.replace_range(10..11, if &s[10..11] == "a" { "b" } else { "a" });
        for (input, e) in [
            ("", ParseError::MissingPrefix),
            ("pgp_abc", ParseError::MissingPrefix),
            (&s[..52], ParseError::InvalidLength),
            (&format!("{s}0"), ParseError::InvalidLength),
            (&format!("x--{s}"), ParseError::MissingPrefix),
            (&typo, ParseError::InvalidChecksum),
            (
                &format!("{}_{}", &s[..20], &s[21..]),
                ParseError::InvalidCharacter,
            ),
            (&"p".repeat(151), ParseError::TooLong),
        ] {
            assert_eq!(
                GrantSecret::parse(input, SecretKind::Refresh),
                Err(e),
                "{input}"
            );
        }
        for bad in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}_", "a".repeat(42)),
            &"é".repeat(21),
        ] {
            assert!(ConsentHandle::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn dynamic_ids_are_verified_without_storage() {
        let k1 = ClientIdKey::new(KEY).expect("key");
        let k2 = ClientIdKey::new(&[7u8; 32]).expect("key");
        assert!(ClientIdKey::new(&[0u8; 31]).is_none());
        let id = generate_dynamic_id(&k1).expect("rng");
        assert_eq!(id.len(), DYNAMIC_ID_LEN);
        assert!(is_dynamic_id(&id));
        assert!(verify_dynamic_id(&id, std::slice::from_ref(&k1)));
        assert!(
            verify_dynamic_id(&id, &[k2.clone(), k1.clone()]),
            "any listed key verifies"
        );
        assert!(!verify_dynamic_id(&id, std::slice::from_ref(&k2)));
        assert!(!verify_dynamic_id(&id, &[]));
        let mut forged = id.clone();
        let last = forged.pop().expect("non-empty");
        forged.push(if last == 'a' { 'b' } else { 'a' });
        assert!(!verify_dynamic_id(&forged, std::slice::from_ref(&k1)));
        for bad in [
            "demo_client",
            "pgd_",
            &id[..47],
            &format!("{id}a"),
            &id.replace("pgd_", "pgx_"),
        ] {
            assert!(!verify_dynamic_id(bad, std::slice::from_ref(&k1)), "{bad}");
        }
        assert!(!format!("{k1:?}").contains("patgate"));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,160}") {
            let _ = GrantSecret::parse(&s, SecretKind::Code);
            let _ = ConsentHandle::parse(&s);
            let k = ClientIdKey::new(KEY).expect("key");
            proptest::prop_assert!(!verify_dynamic_id(&s, &[k]) || s.starts_with(DYNAMIC_PREFIX));
        }
    }
}
