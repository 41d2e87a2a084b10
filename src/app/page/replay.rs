//! A double submit of the "Generate new token" form never costs the user the token.
//!
//! Without JavaScript nothing stops a second click: the browser sends the form again and drops
//! the first answer, the only one that showed the token. The form's one-time id already makes
//! both POSTs name the same PAT id (one PAT, never two); this module makes the second POST show
//! the same token:
//!
//! 1. Before the PAT is stored, its token is **sealed** and kept in KV under the token's hash
//!    (`s:{sha256}`), expiring after [`REPLAY_SECS`] (KV deletes it; the page also refuses older
//!    ones). Sealed = encrypted and authenticated with a key derived from `SESSION_SECRET`, the
//!    user, the form id and the session ([`super::session::Key::seal_key`]): HMAC-SHA256 in
//!    counter mode under a random nonce, then HMAC-SHA256 over nonce and ciphertext. KV never
//!    holds a plain token, and only the same session's resubmission of that form can open it.
//! 2. A POST of a form whose PAT already exists (the twin request won, before or during this one)
//!    opens the sealed token of the PAT's current hash, checks that it hashes to that hash, and
//!    shows it again, within [`REPLAY_SECS`] of the PAT's creation and only while the PAT is
//!    active and was never regenerated. Otherwise the page says the token was already created.
//!
//! Before the token is shown again, its KV grant is checked (and written if the creating request
//! ended before writing it): a token is never shown that does not work.
//!
//! The seal is written before the PAT, so a twin that finds the PAT also finds the seal (KV reads
//! at the location of the write see it; both POSTs come from one browser, so one location). If
//! the seal cannot be written, the PAT is created anyway and a repeat gets the "already created"
//! page, as before (logged as a warning). A reload of the answer within the minute, in the same
//! session, shows the token again too (it is the same request as a double submit); after it,
//! never.

use super::session::Key;
use crate::app::ctx::Ctx;
use crate::app::tokens;
use crate::model::{Status, TokenRecord};
use crate::store::Backend;
use crate::token::PlainToken;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long after its creation a PAT's token can be shown again to a resubmitted form.
pub const REPLAY_SECS: i64 = 60;

const NONCE: usize = 16;
const TAG: usize = 32;
/// Longest sealed value opened (a token is 53 bytes: nonce + token + tag, base64url).
const MAX_SEALED: usize = 256;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32]; // unreachable: HMAC takes keys of any length
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// XORs `data` with the keystream HMAC(key, "stream" || nonce || counter).
fn apply_stream(key: &[u8; 32], nonce: &[u8], data: &mut [u8]) {
    for (i, chunk) in data.chunks_mut(32).enumerate() {
        let block = hmac(key, &[b"stream", nonce, &(i as u64).to_be_bytes()]);
        for (d, k) in chunk.iter_mut().zip(block) {
            *d ^= k;
        }
    }
}

fn tag(key: &[u8; 32], nonce: &[u8], ct: &[u8]) -> [u8; 32] {
    hmac(key, &[b"tag", nonce, ct])
}

/// `base64url(nonce || ciphertext || tag)`.
pub fn seal(key: &[u8; 32], token: &str) -> Result<String, getrandom::Error> {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce)?;
    let mut ct = token.as_bytes().to_vec();
    apply_stream(key, &nonce, &mut ct);
    let t = tag(key, &nonce, &ct);
    let mut out = Vec::with_capacity(NONCE + ct.len() + TAG);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out.extend_from_slice(&t);
    Ok(B64.encode(out))
}

/// The token sealed with `key`; `None` for anything else (another key, altered, malformed).
pub fn open(key: &[u8; 32], sealed: &str) -> Option<String> {
    if sealed.len() > MAX_SEALED {
        return None;
    }
    let raw = B64.decode(sealed).ok()?;
    if raw.len() < NONCE + TAG {
        return None;
    }
    let (nonce, rest) = raw.split_at(NONCE);
    let (ct, t) = rest.split_at(rest.len() - TAG);
    if !bool::from(tag(key, nonce, ct).ct_eq(t)) {
        return None;
    }
    let mut pt = ct.to_vec();
    apply_stream(key, nonce, &mut pt);
    String::from_utf8(pt).ok()
}

/// What the page needs to seal or open a token of one form: its key.
pub struct Sealer([u8; 32]);

impl Sealer {
    pub fn new(key: &Key, user: &str, form_id: &str, binding: &[u8]) -> Self {
        Sealer(key.seal_key(user, form_id, binding))
    }

    /// Keeps `token` sealed for a repeated submission. Best effort: a failure is a warning.
    pub async fn keep<B: Backend>(&self, ctx: &Ctx<'_, B>, token: &PlainToken) {
        let sealed = match seal(&self.0, token.expose_secret()) {
            Ok(s) => s,
            Err(e) => {
                ctx.isolate.warn(format!(
                    "token page: token not kept for a resubmission: {e}"
                ));
                return;
            }
        };
        if let Err(e) = ctx
            .backend
            .put_sealed(&token.hash(), &sealed, ctx.now + REPLAY_SECS)
            .await
        {
            ctx.isolate.warn(format!(
                "token page: token not kept for a resubmission: KV: {}",
                e.0
            ));
        }
    }

    /// The token of `rec` to show again to a resubmission of its form, if that is allowed:
    /// within [`REPLAY_SECS`] of its creation, active, never regenerated, sealed with this key.
    pub async fn shown_again<B: Backend>(
        &self,
        ctx: &Ctx<'_, B>,
        rec: &TokenRecord,
    ) -> Option<PlainToken> {
        if ctx.now >= rec.created_at + REPLAY_SECS
            || rec.generation != 0
            || rec.status(ctx.now) != Status::Active
        {
            return None;
        }
        let sealed = match ctx.backend.get_sealed(&rec.hash).await {
            Ok(s) => s?,
            Err(e) => {
                ctx.isolate.warn(format!(
                    "token page: kept token unreadable, not shown again: KV: {}",
                    e.0
                ));
                return None;
            }
        };
        let token = PlainToken::parse(&open(&self.0, &sealed)?).ok()?;
        if token.hash() != rec.hash {
            return None;
        }
        usable(ctx, rec).await.then_some(token)
    }
}

/// Whether the PAT's token works: its KV grant exists (a hash KV does not know is inactive).
/// The request that created the PAT may have ended between its D1 insert and its KV write (the
/// runtime cancels a request whose client went away, and a double submit is exactly that): the
/// grant is then written here, and the record read back, so that a revocation landing meanwhile
/// is not undone (its grant is deleted again and nothing is shown).
async fn usable<B: Backend>(ctx: &Ctx<'_, B>, rec: &TokenRecord) -> bool {
    match ctx.backend.get_grant(&rec.hash).await {
        Ok(Some(g)) if !g.marker => return true,
        Ok(_) => {}
        // KV unreadable: writing blind could revive a revoked token; show nothing.
        Err(_) => return false,
    }
    if tokens::put_grant_retrying(ctx, rec).await.is_err() {
        return false;
    }
    let still = matches!(
        ctx.backend.token_by_id(&rec.id).await,
        Ok(Some(now)) if now.hash == rec.hash && now.status(ctx.now) == Status::Active
    );
    if !still {
        let _ = ctx.backend.delete_grant(&rec.hash).await;
    }
    still
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_refuses_other_keys_and_alterations() {
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        let token = "pgp_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG123456";
        let s = seal(&k1, token).expect("random");
        assert_eq!(open(&k1, &s).as_deref(), Some(token));
        assert!(!s.contains("pgp_"), "{s}");
        assert_ne!(
            seal(&k1, token).expect("random"),
            s,
            "a fresh nonce each time"
        );
        assert_eq!(open(&k2, &s), None, "another session or form");
        let raw = B64.decode(&s).expect("b64");
        for i in [0, NONCE, raw.len() - 1] {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            assert_eq!(open(&k1, &B64.encode(&bad)), None, "byte {i} altered");
        }
        for junk in ["", "!!", "AAAA", &"A".repeat(300), &B64.encode([0u8; 48])] {
            assert_eq!(open(&k1, junk), None, "{junk}");
        }
    }
}
