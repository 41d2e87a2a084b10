//! Cookies, the dev sign-in session and CSRF tokens of the token page. Pure functions over a
//! server key (`SESSION_SECRET`) and the clock; no storage.
//!
//! - The session cookie (`__Host-patgate_session`, dev sign-in only) is
//!   `v1.{base64url(user)}.{expiry}.{session id}.{HMAC}`, HMAC-SHA256 over everything before the
//!   last dot with the key; it lives at most [`SESSION_SECS`].
//! - A CSRF token is `base64url(mask || mask XOR HMAC(key, "csrf" || binding))`: bound to the
//!   session (its id, or a hash of the Cloudflare Access assertion, or the pre-sign-in cookie),
//!   masked afresh on every page (BREACH), compared unmasked in constant time (Django's scheme).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name; `__Host-` makes browsers require `Secure`, `Path=/`, no `Domain`.
pub const SESSION_COOKIE: &str = "__Host-patgate_session";
/// Binds the CSRF token of the sign-in form before there is a session (login CSRF).
pub const SIGNIN_COOKIE: &str = "__Host-patgate_signin";
/// A session lasts at most a day.
pub const SESSION_SECS: i64 = 86_400;
/// The shortest `SESSION_SECRET` accepted.
pub const MIN_KEY_BYTES: usize = 32;
/// Longest user id the dev sign-in accepts.
pub const MAX_USER_CHARS: usize = 64;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The page's HMAC key. `Debug` never shows it.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// `None` if the secret is shorter than [`MIN_KEY_BYTES`].
    pub fn new(secret: &str) -> Option<Key> {
        (secret.len() >= MIN_KEY_BYTES).then(|| Key(secret.as_bytes().to_vec()))
    }

    fn mac(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return [0; 32]; // unreachable: HMAC takes keys of any length
        };
        m.update(purpose.as_bytes());
        for p in parts {
            // Length-prefixed, so that ("ab","c") and ("a","bc") differ.
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// A record id derived from a one-time form id: a re-posted form maps to the same id.
    pub fn derive_id(&self, sub: &str, form_id: &str) -> String {
        const ALPHABET: &[u8; 62] =
            b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        self.mac("pat-id", &[sub.as_bytes(), form_id.as_bytes()])
            .iter()
            .take(22)
            .map(|b| char::from(ALPHABET[usize::from(*b) % 62]))
            .collect()
    }

    /// The key that seals a new token for a repeated submission of the form `form_id` by this
    /// user in this session (`binding`): a resubmission from another session cannot open it.
    pub fn seal_key(&self, sub: &str, form_id: &str, binding: &[u8]) -> [u8; 32] {
        self.mac("seal", &[sub.as_bytes(), form_id.as_bytes(), binding])
    }

    /// A short fingerprint of a token hash, for the regenerate form: re-posting that form after
    /// the rotation no longer matches, so a reload cannot rotate twice.
    pub fn version(&self, id: &str, hash: &[u8]) -> String {
        B64.encode(&self.mac("version", &[id.as_bytes(), hash])[..16])
    }
}

/// Random bytes, base64url.
pub fn random_b64(n: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf)?;
    Ok(B64.encode(buf))
}

/// Constant-time string equality.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A signed-in dev session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub expires_at: i64,
    /// Random per sign-in; CSRF tokens are bound to it.
    pub id: String,
}

/// Whether `user` is acceptable as a dev sign-in user id: 1 to 64 of `A-Z a-z 0-9 . _ @ -`.
pub fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= MAX_USER_CHARS
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

impl Session {
    pub fn new(user: &str, now: i64) -> Result<Session, getrandom::Error> {
        Ok(Session {
            user: user.to_owned(),
            expires_at: now + SESSION_SECS,
            id: random_b64(16)?,
        })
    }

    /// The cookie value.
    pub fn encode(&self, key: &Key) -> String {
        let body = format!(
            "v1.{}.{}.{}",
            B64.encode(&self.user),
            self.expires_at,
            self.id
        );
        let mac = B64.encode(key.mac("session", &[body.as_bytes()]));
        format!("{body}.{mac}")
    }

    /// Verifies a cookie value; `None` for anything forged, expired, too long-lived or malformed.
    pub fn decode(value: &str, key: &Key, now: i64) -> Option<Session> {
        if value.len() > 300 {
            return None;
        }
        let (body, mac) = value.rsplit_once('.')?;
        let want = B64.encode(key.mac("session", &[body.as_bytes()]));
        if !ct_eq(mac, &want) {
            return None;
        }
        let mut parts = body.split('.');
        let (Some("v1"), Some(user), Some(exp), Some(id), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let user = String::from_utf8(B64.decode(user).ok()?).ok()?;
        let expires_at: i64 = exp.parse().ok()?;
        if expires_at <= now || expires_at > now + SESSION_SECS || !valid_user(&user) {
            return None;
        }
        Some(Session {
            user,
            expires_at,
            id: id.to_owned(),
        })
    }
}

/// `Set-Cookie` for a `__Host-` cookie living `max_age` seconds (0 deletes it).
pub fn set_cookie(name: &str, value: &str, max_age: i64) -> String {
    format!("{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax")
}

/// The value of cookie `name` in a `Cookie` header; `None` if absent or present more than once
/// (ambiguous: refused rather than guessed).
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    let mut found = None;
    for pair in header?.split(';') {
        let Some((k, v)) = pair.trim().split_once('=') else {
            continue;
        };
        if k == name {
            if found.is_some() {
                return None;
            }
            found = Some(v);
        }
    }
    found
}

/// What a CSRF token is bound to.
pub fn binding_of(kind: &str, value: &str) -> Vec<u8> {
    let mut v = kind.as_bytes().to_vec();
    v.push(0);
    v.extend_from_slice(&Sha256::digest(value.as_bytes()));
    v
}

/// A fresh masked CSRF token for `binding`.
pub fn csrf_token(key: &Key, binding: &[u8]) -> Result<String, getrandom::Error> {
    let secret = key.mac("csrf", &[binding]);
    let mut mask = [0u8; 32];
    getrandom::fill(&mut mask)?;
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&mask);
    out.extend(mask.iter().zip(secret.iter()).map(|(m, s)| m ^ s));
    Ok(B64.encode(out))
}

/// Whether `token` is a CSRF token for `binding` (any mask), in constant time.
pub fn csrf_valid(key: &Key, binding: &[u8], token: &str) -> bool {
    if token.len() != 86 {
        return false;
    }
    let Ok(raw) = B64.decode(token) else {
        return false;
    };
    if raw.len() != 64 {
        return false;
    }
    let (mask, masked) = raw.split_at(32);
    let unmasked: Vec<u8> = mask.iter().zip(masked).map(|(m, x)| m ^ x).collect();
    bool::from(unmasked.ct_eq(&key.mac("csrf", &[binding])))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000;

    fn key() -> Key {
        Key::new("0123456789abcdef0123456789abcdef").expect("long enough")
    }

    #[test]
    fn key_length_and_debug() {
        assert!(Key::new("short").is_none());
        assert!(Key::new(&"x".repeat(31)).is_none());
        assert_eq!(format!("{:?}", key()), "Key(<redacted>)");
    }

    #[test]
    fn session_round_trip() {
        let s = Session::new("alice@example.com", NOW).expect("rng");
        let v = s.encode(&key());
        assert_eq!(Session::decode(&v, &key(), NOW), Some(s.clone()));
        assert_eq!(Session::decode(&v, &key(), NOW + SESSION_SECS - 1), Some(s));
    }

    #[test]
    fn session_expires_and_resists_forgery() {
        let s = Session::new("alice", NOW).expect("rng");
        let v = s.encode(&key());
        assert_eq!(
            Session::decode(&v, &key(), NOW + SESSION_SECS),
            None,
            "expired"
        );
        let other = Key::new("another key that is long enough!!").expect("key");
        assert_eq!(Session::decode(&v, &other, NOW), None, "other key");
        // Change the user without re-signing.
        let forged = v.replacen(&B64.encode("alice"), &B64.encode("bob"), 1);
        assert_eq!(Session::decode(&forged, &key(), NOW), None, "forged user");
        // Extend the expiry without re-signing.
        let later = v.replacen(
            &s.expires_at.to_string(),
            &(s.expires_at + 1).to_string(),
            1,
        );
        assert_eq!(Session::decode(&later, &key(), NOW), None, "forged expiry");
        // A correctly signed session that claims to live longer than a day is refused.
        let long = Session {
            expires_at: NOW + SESSION_SECS + 10,
            ..s.clone()
        };
        assert_eq!(
            Session::decode(&long.encode(&key()), &key(), NOW),
            None,
            "too long-lived"
        );
        // A correctly signed session with a user id the sign-in form would refuse.
        let bad_user = Session {
            user: "<script>".into(),
            ..s
        };
        assert_eq!(Session::decode(&bad_user.encode(&key()), &key(), NOW), None);
        for garbage in [
            "",
            ".",
            "v1",
            "v1....",
            "a.b.c.d.e.f",
            &"a".repeat(400),
            "v1.%%%.1.x.y",
        ] {
            assert_eq!(Session::decode(garbage, &key(), NOW), None, "{garbage}");
        }
    }

    #[test]
    fn user_ids() {
        assert!(valid_user("alice"));
        assert!(valid_user("a.b_c@d-e"));
        assert!(!valid_user(""));
        assert!(!valid_user("a b"));
        assert!(!valid_user("é"));
        assert!(!valid_user(&"a".repeat(65)));
        assert!(valid_user(&"a".repeat(64)));
    }

    #[test]
    fn cookie_parsing() {
        let h = Some("a=1; __Host-patgate_session=v1.x; b=2");
        assert_eq!(cookie(h, SESSION_COOKIE), Some("v1.x"));
        assert_eq!(cookie(h, "missing"), None);
        assert_eq!(cookie(None, "a"), None);
        assert_eq!(cookie(Some("a=1; a=2"), "a"), None, "ambiguous");
        assert_eq!(cookie(Some("junk; a=1;;"), "a"), Some("1"));
        assert_eq!(
            set_cookie(SESSION_COOKIE, "v", 86_400),
            "__Host-patgate_session=v; Path=/; Max-Age=86400; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn csrf_tokens_are_masked_and_bound() {
        let k = key();
        let b = binding_of("session", "sid-1");
        let t1 = csrf_token(&k, &b).expect("rng");
        let t2 = csrf_token(&k, &b).expect("rng");
        assert_ne!(t1, t2, "masked afresh");
        assert!(csrf_valid(&k, &b, &t1));
        assert!(csrf_valid(&k, &b, &t2));
        assert!(
            !csrf_valid(&k, &binding_of("session", "sid-2"), &t1),
            "other session"
        );
        assert!(
            !csrf_valid(&k, &binding_of("access", "sid-1"), &t1),
            "other kind"
        );
        let other = Key::new("another key that is long enough!!").expect("key");
        assert!(!csrf_valid(&other, &b, &t1), "other key");
        // Flip one bit of the masked half.
        let mut raw = B64.decode(&t1).expect("b64");
        raw[40] ^= 1;
        assert!(!csrf_valid(&k, &b, &B64.encode(&raw)));
        for garbage in [
            "",
            "x",
            &"A".repeat(86),
            &t1[..85],
            &format!("{t1}A"),
            &"!".repeat(86),
        ] {
            assert!(!csrf_valid(&k, &b, garbage), "{garbage}");
        }
    }

    #[test]
    fn derived_ids_look_like_random_ids() {
        let k = key();
        let a = k.derive_id("alice", "form-1");
        assert_eq!(a.len(), 22);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(a, k.derive_id("alice", "form-1"), "deterministic");
        assert_ne!(a, k.derive_id("bob", "form-1"), "per user");
        assert_ne!(a, k.derive_id("alice", "form-2"), "per form");
        assert_ne!(k.version("id", &[1]), k.version("id", &[2]));
    }
}
