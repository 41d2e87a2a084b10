//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): endpoint secrets
//! (`whsec_<base64>`, redacted in `Debug`), HMAC-SHA256 over `{id}.{timestamp}.{body}`, the
//! `webhook-signature` header (one signature per secret while a rotated-away secret is in its
//! grace period), what a receiver checks, and message ids.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use std::fmt;
use subtle::ConstantTimeEq;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The prefix of an endpoint secret (Standard Webhooks convention).
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a generated secret (the spec allows 24 to 64).
const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret, `whsec_<base64 of 32 random bytes>`. `Debug` never shows it.
///
/// Unlike client secrets (hashed at rest), it is stored as is: HMAC signing needs the key itself,
/// and a hash of it could not sign. It is shown once, when generated, never in a read.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

/// Why a stored or presented secret is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSecret;

impl WebhookSecret {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut key = [0u8; SECRET_BYTES];
        getrandom::fill(&mut key)?;
        Ok(WebhookSecret(format!("{SECRET_PREFIX}{}", B64.encode(key))))
    }

    /// A secret as stored (D1): `whsec_` and base64 of 24 to 64 bytes.
    pub fn parse(s: &str) -> Result<Self, BadSecret> {
        let secret = WebhookSecret(s.to_owned());
        let n = secret.key()?.len();
        if (24..=64).contains(&n) {
            Ok(secret)
        } else {
            Err(BadSecret)
        }
    }

    /// The HMAC key: the decoded bytes after the prefix.
    fn key(&self) -> Result<Vec<u8>, BadSecret> {
        let b64 = self.0.strip_prefix(SECRET_PREFIX).ok_or(BadSecret)?;
        B64.decode(b64).map_err(|_| BadSecret)
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The signed content: `{id}.{timestamp}.{body}`.
fn signed_content(msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(msg_id.len() + body.len() + 24);
    v.extend_from_slice(msg_id.as_bytes());
    v.push(b'.');
    v.extend_from_slice(timestamp.to_string().as_bytes());
    v.push(b'.');
    v.extend_from_slice(body);
    v
}

/// One `v1,<base64>` signature.
pub fn sign(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, BadSecret> {
    let mac = hmac_sha256(&secret.key()?, &signed_content(msg_id, timestamp, body));
    Ok(format!("v1,{}", B64.encode(mac)))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[&WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, BadSecret> {
    let sigs: Result<Vec<String>, BadSecret> = secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect();
    Ok(sigs?.join(" "))
}

/// What a receiver does (README "Webhooks"): true if any `v1` signature in `header` matches
/// (constant-time). The timestamp tolerance is the receiver's own check.
pub fn verify(
    secret: &WebhookSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let Ok(expected) = sign(secret, msg_id, timestamp, body) else {
        return false;
    };
    header
        .split(' ')
        .any(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
}

/// A new message id: `msg_` and 22 characters of URL-safe base64 (128 random bits).
pub fn new_msg_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)?;
    Ok(format!(
        "msg_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 4231 section 4: HMAC-SHA-256 test cases 1-4, 6 and 7 (5 is truncated output).
    #[test]
    fn hmac_sha256_rfc4231_vectors() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, want) in cases {
            assert_eq!(hmac_sha256(&key, &data).to_vec(), unhex(want));
        }
    }

    /// The reference vector of the Standard Webhooks libraries (standard-webhooks/standard-webhooks
    /// `libraries/javascript/src/index.test.ts` and the Python/Go tests): this secret, id,
    /// timestamp and payload sign to exactly this.
    #[test]
    fn standard_webhooks_reference_vector() {
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = 1_614_265_330;
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&secret, id, ts, body).expect("sign");
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(&secret, id, ts, body, &sig));
        assert!(verify(&secret, id, ts, body, &format!("v1,bogus {sig}")));
        // Anything changed: no match.
        assert!(!verify(&secret, id, ts + 1, body, &sig));
        assert!(!verify(&secret, "msg_other", ts, body, &sig));
        assert!(!verify(&secret, id, ts, br#"{"test": 2432232315}"#, &sig));
        let other = WebhookSecret::generate().expect("rng");
        assert!(!verify(&other, id, ts, body, &sig));
    }

    #[test]
    fn secrets_are_random_prefixed_and_redacted() {
        let a = WebhookSecret::generate().expect("rng");
        let b = WebhookSecret::generate().expect("rng");
        assert_ne!(a, b);
        assert!(a.expose_secret().starts_with("whsec_"));
        assert_eq!(a.key().expect("key").len(), 32);
        assert_eq!(WebhookSecret::parse(a.expose_secret()), Ok(a.clone()));
        assert_eq!(format!("{a:?}"), "WebhookSecret([REDACTED])");
        assert!(!format!("{a:?}").contains(&a.expose_secret()[6..]));
        for bad in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!!",
            "whsec_AAAA",
        ] {
            assert_eq!(WebhookSecret::parse(bad), Err(BadSecret), "{bad}");
        }
    }

    #[test]
    fn several_secrets_sign_several_times() {
        let a = WebhookSecret::generate().expect("rng");
        let b = WebhookSecret::generate().expect("rng");
        let h = signature_header(&[&a, &b], "msg_1", 5, b"{}").expect("sign");
        assert_eq!(h.split(' ').count(), 2);
        assert!(verify(&a, "msg_1", 5, b"{}", &h));
        assert!(verify(&b, "msg_1", 5, b"{}", &h));
    }

    #[test]
    fn message_ids_are_unique_and_url_safe() {
        let a = new_msg_id().expect("rng");
        let b = new_msg_id().expect("rng");
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 22);
        assert!(a[4..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}
