//! The cron's clean-up of ended authorization state (`app::authz_cleanup`) with an injected
//! clock: codes, consent requests and grants (with their refresh tokens) go a day after they
//! ended, never earlier; live grants keep every refresh token (reuse detection); the work per run
//! is bounded; a storage failure of one kind is logged and the others still run.

#![allow(clippy::too_many_lines, clippy::many_single_char_names)]

use super::flow::{query, Text, VERIFIER};
use super::*;
use crate::app::authz_cleanup::{clean_ended, Cleaned, BATCH, MAX_BATCHES, RETENTION_SECS};
use crate::authz::code::new_code;
use crate::authz::memory::AuthzStep;
use crate::authz::records::{Approved, Audience};
use crate::oauth::authorize::{CodeChallenge, CodeVerifier};
use crate::testing::Fault;
use crate::token::TokenHash;

const DAY: i64 = RETENTION_SECS;

impl Harness {
    fn clean(&self) -> Cleaned {
        let ctx = Ctx {
            cfg: &self.cfg,
            backend: &self.backend,
            isolate: &self.isolate,
            now: self.now,
            now_ms: self.now * 1000,
        };
        block_on(clean_ended(&ctx))
    }

    /// (codes, consent requests, grants, refresh tokens) stored.
    fn stored(&self) -> (usize, usize, usize, usize) {
        let f = &self.backend.flow;
        (
            f.codes.borrow().len(),
            f.consents.borrow().len(),
            f.grants.borrow().len(),
            f.refresh.borrow().len(),
        )
    }

    fn refresh_token_of(&self, token: &str) -> (u16, Value) {
        self.refresh(token)
    }
}

fn cleaned(codes: u32, consents: u32, grants: u32) -> Cleaned {
    Cleaned {
        codes,
        consents,
        grants,
        failed: Vec::new(),
    }
}

#[test]
fn ended_state_goes_a_day_after_it_ended_and_live_grants_keep_their_refresh_tokens() {
    let mut h = Harness::flow();
    let t0 = h.now;
    // A live grant (rotated once: two refresh tokens), a grant revoked by an administrator, an
    // authorization that stopped at the consent page, and a code never exchanged.
    let (_, live_rt) = h.tokens("alice");
    h.now += 1;
    let (s, v) = h.refresh_token_of(&live_rt);
    assert_eq!(s, 200, "{v}");
    let live_rt2 = v["refresh_token"].as_str().expect("rt2").to_owned();
    let (_, gone_rt) = h.tokens("bob");
    let bobs = h
        .backend
        .flow
        .grants
        .borrow()
        .iter()
        .find(|g| g.subject == "bob")
        .map(|g| g.id.clone())
        .expect("bob's grant");
    let del = Request::new(Method::Delete, &format!("/admin/grants/{bobs}"))
        .header("authorization", &format!("Bearer {ADMIN}"));
    assert_eq!(h.call(&del).0, 204);
    let page = h.authorize("carol", &query(&[("scope", Some("demo_api:write"))]));
    assert_eq!(page.response.status, 200, "{}", page.response.text());
    let _unused_code = h.code("dave", &query(&[]));
    // alice's, bob's and dave's codes; four consents (dave's and carol's unanswered, alice's
    // and bob's answered); two grants; alice's two refresh tokens and bob's one.
    let before = h.stored();
    assert_eq!(before, (3, 4, 2, 3));

    // Nothing has been ended for a day yet.
    h.now = t0 + DAY - 5;
    assert_eq!(h.clean(), cleaned(0, 0, 0));
    assert_eq!(h.stored(), before);
    // bob's grant (revoked at t0 + 1) a day later, with its refresh token.
    h.now = t0 + DAY + 2;
    assert_eq!(h.clean(), cleaned(0, 0, 1));
    assert_eq!(h.stored(), (3, 4, 1, 2));
    // Codes (60 s) a day after they expired, used or not.
    h.now = t0 + 65 + DAY;
    assert_eq!(h.clean(), cleaned(3, 0, 0));
    // Consent requests (10 minutes) a day after they expired, answered or not.
    h.now = t0 + 605 + DAY;
    assert_eq!(h.clean(), cleaned(0, 4, 0));
    assert_eq!(h.stored(), (0, 0, 1, 2));
    assert!(h
        .backend
        .flow
        .grants
        .borrow()
        .iter()
        .all(|g| g.subject == "alice"));
    // A later run finds nothing; the deleted grant's refresh token is unknown, as it was dead.
    assert_eq!(h.clean(), cleaned(0, 0, 0));
    let (s, v) = h.refresh_token_of(&gone_rt);
    assert_eq!((s, v["error"].clone()), (400, json!("invalid_grant")));

    // The live grant kept its rotated-away refresh token: presenting it is still a reuse.
    let (s, v) = h.refresh_token_of(&live_rt);
    assert_eq!(
        (s, v["error"].clone()),
        (400, json!("invalid_grant")),
        "{v}"
    );
    assert!(h.logged().contains(r#""event":"grant.reuse_detected""#));
    let (s, _) = h.refresh_token_of(&live_rt2);
    assert_eq!(s, 400, "the reuse ended the grant");
    // Now revoked, it goes a day later.
    let revoked_at = h.now;
    h.now = revoked_at + DAY - 1;
    assert_eq!(h.clean(), cleaned(0, 0, 0));
    h.now = revoked_at + DAY + 1;
    assert_eq!(h.clean(), cleaned(0, 0, 1));
    assert_eq!(h.stored(), (0, 0, 0, 0));
}

#[test]
fn a_grant_never_revoked_goes_a_day_after_its_absolute_expiry() {
    let mut h = Harness::flow();
    h.tokens("alice");
    let expires = h.backend.flow.grants.borrow()[0].expires_at;
    assert!(expires > h.now + 86_400, "an absolute lifetime of months");
    h.now = expires + DAY - 1;
    assert_eq!(h.clean().grants, 0);
    h.now = expires + DAY + 1;
    assert_eq!(h.clean().grants, 1);
    assert_eq!(h.stored().2 + h.stored().3, 0);
}

/// An approved authorization of `subject` as stored, for bulk setups.
fn approved(subject: &str) -> Approved {
    Approved {
        subject: subject.into(),
        client_id: "desk_app".into(),
        client_uid: "uid-app".into(),
        redirect_uri: "http://127.0.0.1:4501/cb".into(),
        redirect_key: "http://127.0.0.1/cb".into(),
        code_challenge: CodeChallenge::of(&CodeVerifier::parse(VERIFIER).expect("verifier")),
        audience: Audience {
            resource: "https://api.patgate.test/gw/demo/".into(),
            api_id: "demo_api".into(),
            api_uid: "uid-demo_api".into(),
        },
        scopes: vec!["demo_api:read".into()],
    }
}

#[test]
fn a_run_deletes_a_bounded_number_oldest_first_and_the_next_run_goes_on() {
    let mut h = Harness::flow();
    let n = (BATCH * MAX_BATCHES + 700) as usize;
    {
        let mut codes = h.backend.flow.codes.borrow_mut();
        for i in 0..n {
            let mut hash = [0u8; 32];
            hash[..8].copy_from_slice(&(i as u64).to_be_bytes());
            // Issued one second apart, the newest last.
            codes.push(new_code(
                approved("alice"),
                TokenHash(hash),
                format!("g{i}"),
                h.now + i as i64,
            ));
        }
    }
    let newest = h.now + n as i64 - 1;
    h.now = newest + 60 + DAY + 1;
    let calls = h.backend.flow.calls.get();
    assert_eq!(h.clean(), cleaned(BATCH * MAX_BATCHES, 0, 0));
    // MAX_BATCHES full batches of codes, then one each for consents and grants.
    assert_eq!(h.backend.flow.calls.get() - calls, MAX_BATCHES + 2);
    // The oldest went first: what is left is the newest.
    let left: Vec<i64> = h
        .backend
        .flow
        .codes
        .borrow()
        .iter()
        .map(|c| c.expires_at)
        .collect();
    assert_eq!(left.len(), 700);
    assert_eq!(left.iter().min(), Some(&(newest - 699 + 60)));
    assert_eq!(h.clean(), cleaned(700, 0, 0));
    assert_eq!(h.stored().0, 0);
}

#[test]
fn a_failing_kind_is_logged_and_the_others_still_run() {
    let mut h = Harness::flow();
    h.tokens("alice");
    h.authorize("bob", &query(&[]));
    let (codes, consents, ..) = h.stored();
    assert_eq!((codes, consents), (1, 2));
    h.now += 365 * 86_400 + DAY;
    h.logged();

    // The codes' delete is lost: they stay; consents and grants still go.
    h.backend.flow.inject(AuthzStep::Cleanup, Fault::Lost);
    let c = h.clean();
    assert_eq!(
        c,
        Cleaned {
            codes: 0,
            consents: 2,
            grants: 1,
            failed: vec!["authorization codes"],
        }
    );
    let log = h.logged();
    assert!(
        log.contains("clean-up of ended authorization codes failed (next hour again)"),
        "{log}"
    );
    assert_eq!(h.stored(), (1, 0, 0, 0));
    // The next run deletes them.
    assert_eq!(h.clean(), cleaned(1, 0, 0));

    // Landed but reported failed: the rows are gone, the run says it failed, nothing breaks.
    h.code("carol", &query(&[]));
    h.now += DAY + 700;
    h.backend
        .flow
        .inject(AuthzStep::Cleanup, Fault::LandedButFailed);
    let c = h.clean();
    assert_eq!(c.failed, vec!["authorization codes"]);
    assert_eq!(h.stored().0, 0, "the delete landed");
    assert_eq!(h.clean(), cleaned(0, 0, 0));

    assert!(h
        .logged()
        .contains("clean-up of ended authorization codes failed"));

    // D1 down: every kind fails, each logged; no panic.
    h.backend.flow.broken.set(true);
    let c = h.clean();
    assert_eq!(c.failed.len(), 3);
    assert_eq!(h.logged().matches("clean-up of ended").count(), 3);
}
