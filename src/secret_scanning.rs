//! GitHub secret scanning partner reports: the public key set, the signature check and the
//! report format. Pure: the handler (the tokens capability's leak reports) fetches keys and
//! revokes tokens.
//!
//! GitHub POSTs a JSON array of `{token, type, url, source}` with the headers
//! `Github-Public-Key-Identifier` (which key signed) and `Github-Public-Key-Signature` (base64 of
//! an ASN.1 DER ECDSA P-256 signature with SHA-256 over the raw body). The keys are published in
//! the format `{"public_keys":[{"key_identifier","key","is_current"}]}`, each `key` a PEM
//! `PUBLIC KEY` (`SubjectPublicKeyInfo` of an uncompressed P-256 point). Every listed key verifies,
//! current or not: GitHub rotates keys and may still sign with the previous one.

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::Deserialize;

/// Longest key identifier and signature header accepted (GitHub's are 64 and ~100 characters).
const MAX_HEADER_CHARS: usize = 512;
/// Most keys a key set may hold.
const MAX_KEYS: usize = 32;

/// A set of verification keys by identifier.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<(String, VerifyingKey)>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(id, _)| id))
            .finish()
    }
}

#[derive(Deserialize)]
struct KeysDoc {
    public_keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
}

impl KeySet {
    /// Parses GitHub's key document. Every key must parse: a half-understood key set is refused.
    pub fn parse(json: &str) -> Result<KeySet, String> {
        let doc: KeysDoc =
            serde_json::from_str(json).map_err(|e| format!("not a public key document: {e}"))?;
        if doc.public_keys.len() > MAX_KEYS {
            return Err(format!("more than {MAX_KEYS} keys"));
        }
        let mut keys = Vec::with_capacity(doc.public_keys.len());
        for k in doc.public_keys {
            if k.key_identifier.is_empty() || k.key_identifier.len() > MAX_HEADER_CHARS {
                return Err("a key_identifier is empty or too long".into());
            }
            let key = crate::jose::p256_public_key_from_pem(&k.key)
                .map_err(|e| format!("key {}: {e}", k.key_identifier))?;
            keys.push((k.key_identifier, key));
        }
        Ok(KeySet { keys })
    }

    pub fn get(&self, id: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// This set's keys followed by `other`'s (inline keys first, then fetched ones).
    #[must_use]
    pub fn merged(&self, other: &KeySet) -> KeySet {
        let mut keys = self.keys.clone();
        keys.extend(other.keys.iter().cloned());
        KeySet { keys }
    }
}

/// Why a report was refused (logged; the client gets a generic 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownKey,
    MalformedSignature,
    BadSignature,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownKey => "unknown key identifier",
            Refusal::MalformedSignature => "malformed signature",
            Refusal::BadSignature => "signature does not verify",
        }
    }
}

/// Checks `signature_b64` (base64 DER ECDSA) over `body` with key `key_id` of `keys`.
pub fn verify(
    keys: &KeySet,
    key_id: &str,
    signature_b64: &str,
    body: &[u8],
) -> Result<(), Refusal> {
    let key = keys.get(key_id).ok_or(Refusal::UnknownKey)?;
    if signature_b64.len() > MAX_HEADER_CHARS {
        return Err(Refusal::MalformedSignature);
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| Refusal::MalformedSignature)?;
    let sig = Signature::from_der(&der).map_err(|_| Refusal::MalformedSignature)?;
    key.verify(body, &sig).map_err(|_| Refusal::BadSignature)
}

/// One reported match.
#[derive(Debug, Deserialize)]
pub struct Match {
    pub token: String,
    #[serde(rename = "type")]
    pub token_type: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

/// The answer for one match (GitHub's partner format).
#[derive(Debug, serde::Serialize, PartialEq, Eq)]
pub struct Label<'a> {
    pub token_raw: &'a str,
    pub token_type: &'a str,
    /// `true_positive` or `false_positive`.
    pub label: &'static str,
}

/// Longest URL kept with a leaked token; longer (or non-http) URLs are not stored.
pub const MAX_URL_CHARS: usize = 2048;

/// The report's URL if it is worth keeping: `https://` or `http://`, no control characters, at
/// most [`MAX_URL_CHARS`].
pub fn keepable_url(url: Option<&str>) -> Option<String> {
    let u = url?.trim();
    let ok = (u.starts_with("https://") || u.starts_with("http://"))
        && u.len() <= MAX_URL_CHARS
        && !u.chars().any(char::is_control);
    ok.then(|| u.to_owned())
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::jose::keys::SPKI_P256_PREFIX;
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::SigningKey;

    /// A fresh key pair and its PEM public key (tests, here and of leak reports).
    pub fn key_pair() -> (SigningKey, String) {
        let sk = SigningKey::random(&mut rand_core::OsRng);
        let point = sk.verifying_key().to_encoded_point(false);
        let mut der = SPKI_P256_PREFIX.to_vec();
        der.extend_from_slice(point.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        (
            sk,
            format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n"),
        )
    }

    /// GitHub's key document for `keys` (id, PEM).
    pub fn key_doc(keys: &[(&str, &str)]) -> String {
        let list: Vec<serde_json::Value> = keys
            .iter()
            .map(|(id, pem)| serde_json::json!({"key_identifier": id, "key": pem, "is_current": true}))
            .collect();
        serde_json::json!({ "public_keys": list }).to_string()
    }

    pub fn sign(sk: &SigningKey, body: &[u8]) -> String {
        let sig: Signature = sk.sign(body);
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }

    #[test]
    fn a_signed_body_verifies_and_nothing_else_does() {
        let (sk, pem) = key_pair();
        let (other, other_pem) = key_pair();
        let keys = KeySet::parse(&key_doc(&[("k1", &pem), ("k2", &other_pem)])).expect("keys");
        let body = br#"[{"token":"x","type":"t","url":"u","source":"content"}]"#;
        let sig = sign(&sk, body);
        assert_eq!(verify(&keys, "k1", &sig, body), Ok(()));
        // the other key, an unknown key, a changed body, a signature by another key
        assert_eq!(verify(&keys, "k2", &sig, body), Err(Refusal::BadSignature));
        assert_eq!(verify(&keys, "k3", &sig, body), Err(Refusal::UnknownKey));
        assert_eq!(verify(&keys, "k1", &sig, b"[]"), Err(Refusal::BadSignature));
        assert_eq!(
            verify(&keys, "k1", &sign(&other, body), body),
            Err(Refusal::BadSignature)
        );
        for garbage in ["", "!!!", "AAAA", &"A".repeat(600)] {
            assert_eq!(
                verify(&keys, "k1", garbage, body),
                Err(Refusal::MalformedSignature),
                "{garbage}"
            );
        }
    }

    #[test]
    fn key_documents_are_parsed_strictly() {
        let (_, pem) = key_pair();
        assert!(KeySet::parse(&key_doc(&[("k", &pem)])).is_ok());
        assert!(KeySet::parse("{}").is_err());
        assert!(KeySet::parse("not json").is_err());
        assert!(KeySet::parse(&key_doc(&[("", &pem)])).is_err());
        assert!(KeySet::parse(&key_doc(&[(
            "k",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
        )]))
        .is_err());
        // a valid SPKI of another curve is refused (secp256k1 OID)
        let mut k1 = SPKI_P256_PREFIX.to_vec();
        k1[18] = 0x00;
        k1.extend_from_slice(&[4; 65]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(k1);
        let pem2 = format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----");
        assert!(KeySet::parse(&key_doc(&[("k", &pem2)])).is_err());
        // GitHub's published format, as it appears in their documentation example
        let gh = r#"{"public_keys":[{"key_identifier":"bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c","key":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsz9ugWDj5jK5ELBK42ynytbo38gP\nHzZFI03Exwz8Lh/tCfL3YxwMdLjB+bMznsanlhK0RwcGP3IDb34kQDIo3Q==\n-----END PUBLIC KEY-----","is_current":true}]}"#;
        let keys = KeySet::parse(gh).expect("GitHub's example key");
        assert!(keys
            .get("bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c")
            .is_some());
    }

    #[test]
    fn only_plain_web_urls_are_kept() {
        assert_eq!(
            keepable_url(Some("https://github.com/o/r/blob/x/f#L1")),
            Some("https://github.com/o/r/blob/x/f#L1".into())
        );
        assert_eq!(keepable_url(Some("javascript:alert(1)")), None);
        assert_eq!(keepable_url(Some("https://a\nb")), None);
        assert_eq!(
            keepable_url(Some(&format!("https://{}", "a".repeat(3000)))),
            None
        );
        assert_eq!(keepable_url(None), None);
    }
}
