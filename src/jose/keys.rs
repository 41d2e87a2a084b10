//! Every key patgate reads, parsed in one place:
//!
//! - JWKs ([`parse_jwk`]): `OKP` `Ed25519` (`EdDSA`), `EC` `P-256` (ES256) and `RSA` (RS256,
//!   verification only, modulus of at least [`MIN_RSA_BITS`]), with the private part when one is
//!   wanted and present. A declared `alg` must be the one the key type implies.
//! - The HS256 shared secret of user JWTs ([`HmacSecret`]).
//! - P-256 public keys as PEM `PUBLIC KEY` ([`p256_public_key_from_pem`]): GitHub's secret
//!   scanning keys.
//!
//! The key sets built from these: the identity provider's JWKS ([`super::jwks`]) and patgate's
//! own signing keys ([`super::signing_keys`]). `Debug` never shows key material.

use super::limits::MIN_RSA_BITS;
use base64::Engine as _;
use jwt_compact::{
    alg::{Ed25519, Es256, Rsa, RsaPublicKey},
    jwk::JsonWebKey,
    AlgorithmExt as _, Token, UntrustedToken, ValidationError,
};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Map, Value};
use std::fmt;

/// The HS256 shared secret. `Debug` never shows it.
#[derive(Clone)]
pub struct HmacSecret(Vec<u8>);

impl HmacSecret {
    /// Wraps the secret's UTF-8 bytes (used as the HMAC key as is, not base64-decoded).
    pub fn new(s: impl Into<String>) -> Self {
        HmacSecret(s.into().into_bytes())
    }

    /// Whether the secret is empty (an empty secret is never accepted as configuration).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The key bytes.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<String> for HmacSecret {
    fn from(s: String) -> Self {
        HmacSecret::new(s)
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret([REDACTED])")
    }
}

/// A public key that verifies JWS signatures, by algorithm.
#[derive(Clone)]
pub(crate) enum PublicKey {
    Rs256(RsaPublicKey),
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_compact::PublicKey),
}

impl PublicKey {
    /// The JWS `alg` this key verifies.
    pub(crate) fn alg(&self) -> &'static str {
        match self {
            PublicKey::Rs256(_) => "RS256",
            PublicKey::Es256(_) => "ES256",
            PublicKey::EdDsa(_) => "EdDSA",
        }
    }

    /// Checks the signature of `t` with this key and decodes its claims (no claim is checked).
    pub(crate) fn validate<T, H>(
        &self,
        t: &UntrustedToken<'_, H>,
    ) -> Result<Token<T, H>, ValidationError>
    where
        T: serde::de::DeserializeOwned,
        H: Clone,
    {
        match self {
            PublicKey::Rs256(k) => Rsa::rs256().validator(k).validate(t),
            PublicKey::Es256(k) => Es256.validator(k).validate(t),
            PublicKey::EdDsa(k) => Ed25519.validator(k).validate(t),
        }
    }

    /// The public JWK as published: `kty`, `crv`, `x`, (`y`), `kid`, `alg`, `use`.
    pub(super) fn public_jwk(&self, kid: &str) -> Option<Map<String, Value>> {
        let jwk = match self {
            PublicKey::EdDsa(k) => serde_json::to_value(JsonWebKey::from(k)),
            PublicKey::Es256(k) => serde_json::to_value(JsonWebKey::from(k)),
            PublicKey::Rs256(k) => serde_json::to_value(JsonWebKey::from(k)),
        };
        let Ok(Value::Object(mut m)) = jwk else {
            return None;
        };
        m.remove("d"); // never there for a public key; belt and braces
        m.insert("kid".into(), kid.into());
        m.insert("alg".into(), self.alg().into());
        m.insert("use".into(), "sig".into());
        Some(m)
    }
}

/// A private key that signs.
#[derive(Clone)]
pub(crate) enum PrivateKey {
    EdDsa(ed25519_compact::SecretKey),
    Es256(p256::ecdsa::SigningKey),
}

/// Parses one JWK into its public key and, when `with_private` and the JWK has `d`, its
/// private key (checked against the public part). `None` when the key is of an unsupported type
/// or curve, does not decode, is an RSA key shorter than [`MIN_RSA_BITS`] or with a private part
/// asked for, or declares an `alg` other than the one its type implies. `kid`, `use` and
/// `key_ops` are the caller's business.
pub(crate) fn parse_jwk(v: &Value, with_private: bool) -> Option<(PublicKey, Option<PrivateKey>)> {
    let str_field = |name: &str| v.get(name).and_then(Value::as_str);
    let jwk: JsonWebKey<'_> = serde_json::from_value(v.clone()).ok()?;
    let private = with_private && v.get("d").is_some();
    let (public, private) = match (str_field("kty"), str_field("crv")) {
        (Some("OKP"), Some("Ed25519")) if private => {
            // Checks that `x` matches `d`.
            let sk = ed25519_compact::SecretKey::try_from(&jwk).ok()?;
            (
                PublicKey::EdDsa(sk.public_key()),
                Some(PrivateKey::EdDsa(sk)),
            )
        }
        (Some("OKP"), Some("Ed25519")) => (
            PublicKey::EdDsa(ed25519_compact::PublicKey::try_from(&jwk).ok()?),
            None,
        ),
        (Some("EC"), Some("P-256")) if private => {
            // Checks that `x` and `y` match `d`.
            let sk = p256::ecdsa::SigningKey::try_from(&jwk).ok()?;
            (
                PublicKey::Es256(*sk.verifying_key()),
                Some(PrivateKey::Es256(sk)),
            )
        }
        (Some("EC"), Some("P-256")) => (
            PublicKey::Es256(p256::ecdsa::VerifyingKey::try_from(&jwk).ok()?),
            None,
        ),
        (Some("RSA"), _) if !private => {
            let pk = RsaPublicKey::try_from(&jwk).ok()?;
            if pk.n().bits() < MIN_RSA_BITS {
                return None;
            }
            (PublicKey::Rs256(pk), None)
        }
        _ => return None,
    };
    // A key that declares another algorithm than the one its type implies is not used.
    if v.get("alg")
        .is_some_and(|a| a.as_str() != Some(public.alg()))
    {
        return None;
    }
    Some((public, private))
}

/// DER prefix of a `SubjectPublicKeyInfo` for an uncompressed P-256 point (id-ecPublicKey,
/// prime256v1, BIT STRING of 66 bytes): followed by the 65-byte point `04 || x || y`.
pub(crate) const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A PEM `PUBLIC KEY` (`SubjectPublicKeyInfo`) holding an uncompressed P-256 point.
///
/// # Errors
/// A short reason: not PEM, not base64, not an uncompressed P-256 key, not a point on the curve.
pub fn p256_public_key_from_pem(pem: &str) -> Result<p256::ecdsa::VerifyingKey, &'static str> {
    let inner = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|r| r.strip_suffix("-----END PUBLIC KEY-----"))
        .ok_or("not a PEM PUBLIC KEY")?;
    let b64: String = inner.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the PEM body is not base64")?;
    let point = der
        .strip_prefix(&SPKI_P256_PREFIX[..])
        .filter(|p| p.len() == 65)
        .ok_or("not an uncompressed P-256 public key")?;
    p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| "not a point on P-256")
}

/// Fixed and generated keys for the tests of `jose` (and of the app).
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) mod test_keys {
    use crate::jose::signing_keys::{private_jwk, SigningKeys};
    use jwt_compact::{alg::RsaPrivateKey, jwk::JsonWebKey};
    use serde_json::{json, Value};

    /// A fixed Ed25519 private JWK (seed 0x07 * 32).
    pub(crate) fn ed_fixed(kid: &str) -> String {
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7u8; 32]));
        let jwk = JsonWebKey::from(&kp.sk);
        private_jwk(&jwk, kid).expect("jwk")
    }

    /// A fixed P-256 private JWK (d = 0x05 * 32).
    pub(crate) fn es_fixed(kid: &str) -> String {
        let sk = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).expect("key");
        let jwk = JsonWebKey::from(&sk);
        private_jwk(&jwk, kid).expect("jwk")
    }

    pub(crate) fn keys(list: &[&str]) -> SigningKeys {
        SigningKeys::parse(&format!("[{}]", list.join(","))).expect("keys")
    }

    /// A 2048-bit RSA key generated with `openssl genrsa 2048` (test only).
    pub(crate) const RSA_JWK: &str = r#"{"kty": "RSA", "n": "7G9iBRvecZrTFfzYbTqDFtCMVk27NdNYBuv6_X0bEGnsECHzNuAFkYzpbGR2UKiYwdu_W6Bl0OK9XZjySy0KuI6zQgcKb_eFKRnLfjBAsKLbYTfaIn_ch5CRCSgLUgdoz6psJY2XpzbmMAW6wPW4wAl1r5lHg7JF1wef1EKg2j4lnoDDzVu7UwS2AeKgV56Zsq8deb5LTZEZAnNA_ziV29roNoAq0XWeRkEW4eiG-J0OO0gGP8wAIGtTFr5PvGE4Orry2pfVL_IfXrmtR6P1jTp-P4AJ9PSBbmUfSLXp7_lG6z6ppjMff7sorn7tySICfD9Ya2t4lbdp3EbPIJw64Q", "e": "AQAB", "d": "AjNfNDD4NxJ72H6L_ShIRBQY2kzK60tWTGox4d4iPFrgCZ5nRyF6q8ol-g5NU57eHR_QfifWCsWxgYeE6dI3gVRCsuCh5jzljmZhEIGeeIZriFIew6dxBAoCb5Vh1ZegEB7D9u2Eddf6-IN1I4ql95Oe9s10bvNf1wqJIE6mdKGO3w0FN_FgPgygO_rBRXeeb_SyhqB8GJunqO2SYjRvYdtwkG-M5VHUzVQ0qA45QcF61aekWZqyFzNsfK93ZgcVYcaa4PjGCr9MZngbcLtZkiaegr7OMGA3Ex2mbm1iH3ftuT58lIv5nwFfToVcTBCVe6lrmQe5hFTiDqERgFcDCQ", "p": "_dwVv-KC7OMQTOLGja3eLOeWYdjj-zHkuM-sFe-3CrsCnGdVuouHovGJkbZl1zLvWOiOtP3lJOqV41Rlo7D5HFa_NZvmvnoCBmVE0ZMMKnGdjwiYWvxlH-Q3L4Vynd67icvac_tt_7EsuKqELhuJnHMmIFlTFEWndtv-OWVzwi8", "q": "7m2wkVy_jF7Nrohzrdk4fcI6GsIAnow__Ok89x1uaW6PGKlY4g8RLuIkpB22LNfVv8IoG9sQHLj5qMnrhaWkyh0QcriK5I0WOc5v3DFS1xF2DATU02gF9YuNz9XOZbrEX3aYUpxEolVGH3u5xqJQZ5xxqTFvdDyW66bXN_kN3-8"}"#;

    /// A 1024-bit RSA public key (`openssl genrsa 1024`): too weak, skipped.
    pub(crate) const RSA_1024_JWK: &str = r#"{"kty": "RSA", "n": "pXeq6ILvQ6_3DD_2lEaWcYY7ypS3HpwGLbm7MF2yRcQW2nj_rVB2gEJQ8EOFP7HesISQhf8-BvtJ54CGvCMkIGxlgFNhkcs7oBxIF_mRol1QD5OE40O0jvVY1m9uoO9Vt-Q7IuuP1PyK1YZyOH3oIqK0G5yEIm0MuoixFA7osBE", "e": "AQAB"}"#;

    pub(crate) fn ed_pair(seed: u8) -> (ed25519_compact::SecretKey, Value) {
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]));
        let jwk = serde_json::to_value(JsonWebKey::from(&kp.pk)).expect("jwk");
        (kp.sk, jwk)
    }

    pub(crate) fn es_pair(seed: u8) -> (p256::ecdsa::SigningKey, Value) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("key");
        let jwk = serde_json::to_value(JsonWebKey::from(sk.verifying_key())).expect("jwk");
        (sk, jwk)
    }

    pub(crate) fn rsa_pair() -> (RsaPrivateKey, Value) {
        let jwk: JsonWebKey<'_> = serde_json::from_str(RSA_JWK).expect("jwk");
        let sk = RsaPrivateKey::try_from(&jwk).expect("rsa key");
        let public = serde_json::to_value(JsonWebKey::from(&sk.to_public_key())).expect("jwk");
        (sk, public)
    }

    pub(crate) fn with(mut v: Value, k: &str, val: &str) -> Value {
        v[k] = json!(val);
        v
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::test_keys::*;
    use super::*;
    use crate::jose::jwks::Jwks;
    use crate::jose::signing_keys::{KeyError, SigningKeys};
    use serde_json::json;

    #[test]
    fn pem_p256_public_keys() {
        let sk = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).expect("key");
        let point = sk.verifying_key().to_encoded_point(false);
        let mut der = SPKI_P256_PREFIX.to_vec();
        der.extend_from_slice(point.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n");
        assert_eq!(
            p256_public_key_from_pem(&pem).expect("pem"),
            *sk.verifying_key()
        );
        let wrap = |body: &str| format!("-----BEGIN PUBLIC KEY-----{body}-----END PUBLIC KEY-----");
        let short = base64::engine::general_purpose::STANDARD.encode(&der[..der.len() - 1]);
        let mut off_curve = der.clone();
        off_curve[40] ^= 1;
        let off_curve = base64::engine::general_purpose::STANDARD.encode(&off_curve);
        for (bad, why) in [
            (String::new(), "not a PEM PUBLIC KEY"),
            (b64.clone(), "not a PEM PUBLIC KEY"),
            (wrap("!!"), "the PEM body is not base64"),
            (wrap(&short), "not an uncompressed P-256 public key"),
            (wrap(&off_curve), "not a point on P-256"),
        ] {
            assert_eq!(p256_public_key_from_pem(&bad).err(), Some(why), "{bad}");
        }
    }

    /// The one parser serves both uses: a private JWK gives the same public key whether it is
    /// read for signing or for verifying, and RSA is never a signing key.
    #[test]
    fn one_parser_for_signing_and_verifying() {
        for jwk in [ed_fixed("a"), es_fixed("b")] {
            let v: Value = serde_json::from_str(&jwk).expect("json");
            let (public, private) = parse_jwk(&v, true).expect("private");
            assert!(private.is_some());
            let (verify_only, none) = parse_jwk(&v, false).expect("public");
            assert!(none.is_none());
            assert_eq!(public.public_jwk("k"), verify_only.public_jwk("k"));
        }
        let (_, rsa) = rsa_pair();
        assert!(matches!(
            parse_jwk(&rsa, false),
            Some((PublicKey::Rs256(_), None))
        ));
        assert_eq!(
            SigningKeys::parse(&format!("[{}]", with(rsa, "kid", "r"))).err(),
            Some(KeyError::BadKey(0))
        );
    }

    proptest::proptest! {
        /// Any JSON-shaped JWK fields: no panic, and nothing usable from garbage.
        #[test]
        fn jwk_parser_never_panics(kty in "\\PC{0,8}", crv in "\\PC{0,10}", x in "\\PC{0,60}",
                                   y in "\\PC{0,60}", d in "\\PC{0,60}") {
            let v = json!({"kty": kty, "crv": crv, "x": x, "y": y, "d": d, "n": x, "e": y});
            let _ = parse_jwk(&v, true);
            let _ = parse_jwk(&v, false);
            let _ = Jwks::parse(&json!({"keys": [v.clone()]}).to_string());
            let _ = SigningKeys::parse(&json!([v]).to_string());
        }
    }
}
