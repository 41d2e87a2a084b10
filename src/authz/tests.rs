//! The storage contracts and decisions together, as the handlers will use them: one
//! authorization from consent to revocation, replays, races and storage failures (each write
//! lost, or landed but reported failed).

use super::code::{check_exchange, grant_from_code, new_code, CodeUse};
use super::memory::{AuthzMemory, AuthzStep, AUTHZ_STEPS};
use super::records::{
    Approved, Audience, ClientProfile, ClientSource, GrantEnd, PendingConsent, RememberedApproval,
    CONSENT_TTL_SECS,
};
use super::refresh::{self, Outcome, RefreshPolicy};
use super::secrets::{ConsentHandle, GrantSecret, SecretKind};
use super::store::{
    AppGrants, AuthorizationCodes, ClientDirectory, ConsentRequests, EndedState,
    RememberedApprovals,
};
use crate::model::{Client, TokenFormat};
use crate::oauth::authorize::{CodeChallenge, CodeVerifier};
use crate::oauth::code_grants::AuthorizationCode as CodeRequest;
use crate::testing::fault::Fault;

/// The feed stamp of a revocation (the in-memory flow store keeps no feed).
const STAMP: crate::revocation::stamp::FeedStamp = crate::revocation::stamp::FeedStamp {
    at_ms: 0,
    retention: crate::revocation::feed::Retention::DEFAULT,
};
use crate::token::TokenHash;
use futures::executor::block_on;
use std::borrow::Cow;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(super) const P: RefreshPolicy = RefreshPolicy {
    idle_secs: 1000,
    absolute_secs: 100_000,
    retry_grace_secs: 60,
};

pub(super) fn approved() -> Approved {
    Approved {
        subject: "alice".into(),
        client_id: "https://app.example/c.json".into(),
        client_uid: "cuid1".into(),
        redirect_uri: "http://127.0.0.1:5000/cb".into(),
        redirect_key: "http://127.0.0.1/cb".into(),
        code_challenge: CodeChallenge::of(&CodeVerifier::parse(VERIFIER).expect("v")),
        audience: Audience {
            resource: "http://localhost:8787/gw/demo/".into(),
            api_id: "demo_api".into(),
            api_uid: "r1".into(),
        },
        scopes: vec!["demo_api:read".into()],
    }
}

fn pending(handle: &ConsentHandle, now: i64) -> PendingConsent {
    PendingConsent {
        handle_hash: handle.hash(),
        request: approved(),
        state: Some("xyz".into()),
        created_at: now,
        expires_at: now + CONSENT_TTL_SECS,
        used_at: None,
    }
}

fn exchange_request(verifier: &str) -> CodeRequest<'_> {
    CodeRequest {
        code: Cow::Borrowed("unused here"),
        redirect_uri: Some(Cow::Borrowed("http://127.0.0.1:5000/cb")),
        code_verifier: CodeVerifier::parse(verifier).expect("grammar"),
        resource: None,
    }
}

/// Approve, issue a code, exchange it: the grant id and its first refresh token's hash.
fn authorize(m: &AuthzMemory, now: i64) -> (String, TokenHash) {
    let code = GrantSecret::generate(SecretKind::Code).expect("rng");
    block_on(m.insert_code(&new_code(
        approved(),
        code.hash(),
        crate::token::random_id().expect("rng"),
        now,
    )))
    .expect("insert");
    let CodeUse::First(c) = block_on(m.consume_code(&code.hash(), now + 5)).expect("consume")
    else {
        panic!("first use");
    };
    check_exchange(&c, "cuid1", &exchange_request(VERIFIER)).expect("checks");
    let g = grant_from_code(&c, now + 5, &P, true);
    let rt = GrantSecret::generate(SecretKind::Refresh).expect("rng");
    block_on(m.insert_grant(&g, Some(&refresh::first(&g, rt.hash(), now + 5, &P)))).expect("grant");
    m.bind_access_token(&g.id, TokenHash([0xA1; 32]));
    (g.id, rt.hash())
}

/// Presents refresh token `hash` at `now` the way the token endpoint will: decide, then rotate
/// (re-deciding once if a concurrent request rotated first). The new token's hash on success.
fn present(m: &AuthzMemory, hash: &TokenHash, now: i64) -> Result<TokenHash, Outcome> {
    for _ in 0..2 {
        let t = block_on(m.refresh_token(hash))
            .expect("read")
            .ok_or(Outcome::Refused("unknown refresh token"))?;
        let g = block_on(m.grant(&t.grant_id))
            .expect("read")
            .ok_or(Outcome::Refused("unknown"))?;
        match refresh::decide(&t, &g, "cuid1", now, &P) {
            Outcome::Rotate | Outcome::Retry => {
                let new = GrantSecret::generate(SecretKind::Refresh)
                    .expect("rng")
                    .hash();
                let next = refresh::successor(&g, new, now, &P);
                if block_on(m.rotate_refresh(&next, t.generation, now))
                    .map_err(|_| Outcome::Refused("storage"))?
                {
                    return Ok(new);
                }
            }
            Outcome::Reuse => {
                block_on(m.revoke_grant(&g.id, now, GrantEnd::RefreshReuse, &STAMP))
                    .expect("revoke");
                return Err(Outcome::Reuse);
            }
            refused @ Outcome::Refused(_) => return Err(refused),
        }
    }
    Err(Outcome::Refused("lost the race twice"))
}

#[test]
fn consent_handles_are_one_time_user_bound_and_expire() {
    let m = AuthzMemory::default();
    let h = ConsentHandle::generate().expect("rng");
    block_on(m.insert_consent(&pending(&h, 100))).expect("insert");
    assert!(block_on(m.consent(&h.hash(), "alice", 101))
        .expect("read")
        .is_some());
    assert!(
        block_on(m.consent(&h.hash(), "bob", 101))
            .expect("read")
            .is_none(),
        "another user's handle"
    );
    assert!(block_on(m.take_consent(&h.hash(), "bob", 101))
        .expect("take")
        .is_none());
    assert!(
        block_on(m.consent(&h.hash(), "alice", 100 + CONSENT_TTL_SECS))
            .expect("read")
            .is_none(),
        "expired"
    );
    let taken = block_on(m.take_consent(&h.hash(), "alice", 102))
        .expect("take")
        .expect("once");
    assert_eq!(
        (taken.used_at, taken.state.as_deref()),
        (Some(102), Some("xyz"))
    );
    assert!(
        block_on(m.take_consent(&h.hash(), "alice", 103))
            .expect("take")
            .is_none(),
        "twice"
    );
    assert!(block_on(m.consent(&h.hash(), "alice", 103))
        .expect("read")
        .is_none());
}

#[test]
fn one_authorization_from_code_to_revocation() {
    let m = AuthzMemory::default();
    let (grant_id, rt1) = authorize(&m, 1000);
    let g = block_on(m.grant(&grant_id)).expect("read").expect("grant");
    assert_eq!((g.refresh_generation, g.last_used_at), (1, Some(1005)));
    assert_eq!(
        block_on(m.grants_of("alice", 1010, 10))
            .expect("list")
            .len(),
        1
    );
    let rt2 = present(&m, &rt1, 1100).expect("rotated");
    let rt3 = present(&m, &rt2, 1200).expect("rotated");
    assert_eq!(
        block_on(m.grant(&grant_id))
            .expect("read")
            .expect("grant")
            .refresh_generation,
        3
    );
    // rt1 is two generations back: a reuse, which revokes the grant and its access tokens
    assert_eq!(present(&m, &rt1, 1201), Err(Outcome::Reuse));
    let g = block_on(m.grant(&grant_id)).expect("read").expect("grant");
    assert_eq!(
        (g.revoked_at, g.revoked_reason),
        (Some(1201), Some(GrantEnd::RefreshReuse))
    );
    assert!(m.access.borrow().iter().all(|(_, _, revoked)| *revoked));
    // the thief's and the client's tokens are dead alike
    assert_eq!(
        present(&m, &rt3, 1202),
        Err(Outcome::Refused("the grant was revoked"))
    );
    assert!(block_on(m.grants_of("alice", 1202, 10))
        .expect("list")
        .is_empty());
    // revoking again is harmless and reports it was not new
    let again = block_on(m.revoke_grant(&grant_id, 1300, GrantEnd::User, &STAMP))
        .expect("revoke")
        .expect("exists");
    assert!(!again.newly && again.access_tokens.is_empty());
    assert_eq!(
        block_on(m.grant(&grant_id))
            .expect("read")
            .expect("g")
            .revoked_reason,
        Some(GrantEnd::RefreshReuse)
    );
}

#[test]
fn a_replayed_code_revokes_what_its_first_use_issued() {
    let m = AuthzMemory::default();
    let code = GrantSecret::generate(SecretKind::Code).expect("rng");
    block_on(m.insert_code(&new_code(approved(), code.hash(), "g1".into(), 1000))).expect("insert");
    let CodeUse::First(c) = block_on(m.consume_code(&code.hash(), 1001)).expect("consume") else {
        panic!("first");
    };
    block_on(m.insert_grant(&grant_from_code(&c, 1001, &P, false), None)).expect("grant");
    m.bind_access_token("g1", TokenHash([7; 32]));
    let CodeUse::Replayed(again) = block_on(m.consume_code(&code.hash(), 1002)).expect("consume")
    else {
        panic!("replay");
    };
    let done = block_on(m.revoke_grant(&again.grant_id, 1002, GrantEnd::CodeReuse, &STAMP))
        .expect("revoke")
        .expect("grant");
    assert_eq!(done.access_tokens, [TokenHash([7; 32])]);
    // expired and unknown codes
    let late = GrantSecret::generate(SecretKind::Code).expect("rng");
    block_on(m.insert_code(&new_code(approved(), late.hash(), "g2".into(), 1000))).expect("insert");
    assert_eq!(
        block_on(m.consume_code(&late.hash(), 1060)).expect("consume"),
        CodeUse::Expired
    );
    assert_eq!(
        block_on(m.consume_code(&TokenHash([0; 32]), 1000)).expect("consume"),
        CodeUse::Unknown
    );
}

#[test]
fn a_wrong_verifier_burns_the_code() {
    let m = AuthzMemory::default();
    let code = GrantSecret::generate(SecretKind::Code).expect("rng");
    block_on(m.insert_code(&new_code(approved(), code.hash(), "g1".into(), 1000))).expect("insert");
    let CodeUse::First(c) = block_on(m.consume_code(&code.hash(), 1001)).expect("consume") else {
        panic!("first");
    };
    let wrong = "b".repeat(43);
    assert!(check_exchange(&c, "cuid1", &exchange_request(&wrong)).is_err());
    // the right verifier afterwards finds the code used (an attacker's guess cost the client it)
    assert!(matches!(
        block_on(m.consume_code(&code.hash(), 1002)).expect("consume"),
        CodeUse::Replayed(_)
    ));
}

#[test]
fn concurrent_refreshes_rotate_once_and_the_loser_retries() {
    let m = AuthzMemory::default();
    let (grant_id, rt1) = authorize(&m, 1000);
    // both requests read generation 1 and decided Rotate; the other one lands first
    let g = block_on(m.grant(&grant_id)).expect("read").expect("g");
    let t = block_on(m.refresh_token(&rt1)).expect("read").expect("t");
    assert_eq!(refresh::decide(&t, &g, "cuid1", 1100, &P), Outcome::Rotate);
    let theirs = refresh::successor(&g, TokenHash([0xB1; 32]), 1100, &P);
    let ours = refresh::successor(&g, TokenHash([0xB2; 32]), 1100, &P);
    assert!(block_on(m.rotate_refresh(&theirs, 1, 1100)).expect("rotate"));
    assert!(
        !block_on(m.rotate_refresh(&ours, 1, 1100)).expect("rotate"),
        "the loser changes nothing"
    );
    assert!(block_on(m.refresh_token(&ours.hash))
        .expect("read")
        .is_none());
    // re-deciding, the loser is a retry within the grace (its successor is unused)
    let rt3 = present(&m, &rt1, 1101).expect("retry");
    assert_eq!(
        block_on(m.grant(&grant_id))
            .expect("read")
            .expect("g")
            .refresh_generation,
        3
    );
    // the winner's token, never used, was retired by that retry: presenting it now is a reuse
    assert_eq!(present(&m, &theirs.hash, 1102), Err(Outcome::Reuse));
    assert_eq!(
        present(&m, &rt3, 1103),
        Err(Outcome::Refused("the grant was revoked"))
    );
}

#[test]
fn a_rotation_whose_answer_was_lost_can_be_retried_within_the_grace_only() {
    for (retry_at, expect_retry) in [(1159, true), (1160, false)] {
        let m = AuthzMemory::default();
        let (_, rt1) = authorize(&m, 1000);
        m.inject(AuthzStep::RefreshRotate, Fault::LandedButFailed);
        assert_eq!(present(&m, &rt1, 1100), Err(Outcome::Refused("storage")));
        let again = present(&m, &rt1, retry_at);
        assert_eq!(again.is_ok(), expect_retry, "{retry_at}: {again:?}");
        if !expect_retry {
            assert_eq!(again, Err(Outcome::Reuse));
        }
    }
    // a rotation that was lost changed nothing: the same token simply rotates
    let m = AuthzMemory::default();
    let (_, rt1) = authorize(&m, 1000);
    m.inject(AuthzStep::RefreshRotate, Fault::Lost);
    assert_eq!(present(&m, &rt1, 1100), Err(Outcome::Refused("storage")));
    assert!(
        present(&m, &rt1, 5000).is_err(),
        "idle expiry still applies"
    );
    assert!(present(&m, &rt1, 1101).is_ok());
}

#[test]
fn idle_and_absolute_lifetimes() {
    let m = AuthzMemory::default();
    let (grant_id, rt1) = authorize(&m, 1000);
    assert_eq!(
        present(&m, &rt1, 1005 + 1000),
        Err(Outcome::Refused("the refresh token expired"))
    );
    let rt2 = present(&m, &rt1, 1005 + 999).expect("just in time");
    let g = block_on(m.grant(&grant_id)).expect("read").expect("g");
    assert_eq!(
        present(&m, &rt2, g.expires_at),
        Err(Outcome::Refused("the refresh token expired"))
    );
}

fn snapshot(m: &AuthzMemory) -> String {
    format!(
        "{:?}",
        (
            m.clients.borrow(),
            m.consents.borrow(),
            m.approvals.borrow(),
            m.codes.borrow(),
            m.grants.borrow(),
            m.refresh.borrow(),
            m.access.borrow(),
        )
    )
}

/// What a step's call needs stored first (a consent or a code to take).
fn prepare(step: AuthzStep, m: &AuthzMemory) {
    match step {
        AuthzStep::ConsentTake => {
            let h = ConsentHandle::parse(&"h".repeat(43)).expect("handle");
            m.consents.borrow_mut().push(pending(&h, 1000));
        }
        AuthzStep::CodeConsume => {
            m.codes
                .borrow_mut()
                .push(new_code(approved(), TokenHash([8; 32]), "g8".into(), 1090));
        }
        _ => {}
    }
}

/// One call per writing step (each changes something when it succeeds); true if it failed.
fn write_of(step: AuthzStep, m: &AuthzMemory, grant_id: &str) -> bool {
    match step {
        AuthzStep::ClientWrite => {
            block_on(m.register_client(&client("pgd_x"), &profile(ClientSource::Dynamic), 1100))
                .is_err()
        }
        AuthzStep::ConsentInsert => {
            block_on(m.insert_consent(&pending(&ConsentHandle::generate().expect("rng"), 1100)))
                .is_err()
        }
        AuthzStep::ConsentTake => {
            let h = ConsentHandle::parse(&"h".repeat(43)).expect("handle");
            block_on(m.take_consent(&h.hash(), "alice", 1100)).is_err()
        }
        AuthzStep::ApprovalWrite => {
            block_on(m.remember_approval(&remembered(&["demo_api:read"]))).is_err()
        }
        AuthzStep::CodeInsert => {
            block_on(m.insert_code(&new_code(approved(), TokenHash([9; 32]), "g9".into(), 1100)))
                .is_err()
        }
        AuthzStep::CodeConsume => block_on(m.consume_code(&TokenHash([8; 32]), 1100)).is_err(),
        AuthzStep::GrantInsert => block_on(m.insert_grant(
            &grant_from_code(
                &new_code(approved(), TokenHash([7; 32]), "g7".into(), 1100),
                1100,
                &P,
                false,
            ),
            None,
        ))
        .is_err(),
        AuthzStep::GrantRevoke => {
            block_on(m.revoke_grant(grant_id, 1100, GrantEnd::User, &STAMP)).is_err()
        }
        AuthzStep::RefreshRotate => {
            let g = block_on(m.grant(grant_id)).expect("read").expect("g");
            let next = refresh::successor(&g, TokenHash([5; 32]), 1100, &P);
            block_on(m.rotate_refresh(&next, g.refresh_generation, 1100)).is_err()
        }
        AuthzStep::Touch => block_on(m.touch_grant(grant_id, 1100)).is_err(),
        // Everything of the flow above ended long before 100_000.
        AuthzStep::Cleanup => block_on(m.delete_expired_codes(100_000, 10)).is_err(),
    }
}

#[test]
fn a_lost_write_changes_nothing_and_a_landed_one_is_visible_despite_its_error() {
    for step in AUTHZ_STEPS {
        for fault in [Fault::Lost, Fault::LandedButFailed] {
            let m = AuthzMemory::default();
            let (grant_id, _) = authorize(&m, 1000);
            prepare(step, &m);
            let before = snapshot(&m);
            m.inject(step, fault);
            assert!(
                write_of(step, &m, &grant_id),
                "{step:?} {fault:?}: the call reports the failure"
            );
            let after = snapshot(&m);
            match fault {
                Fault::Lost => assert_eq!(before, after, "{step:?}: a lost write changes nothing"),
                Fault::LandedButFailed => assert_ne!(before, after, "{step:?}: the write landed"),
            }
        }
    }
}

#[test]
fn a_code_exchange_that_landed_but_failed_is_a_replay_on_retry() {
    // the code is burnt, so the retry is a replay: the handler answers invalid_grant and the
    // client starts again; no token was issued, and no grant exists to revoke
    let m = AuthzMemory::default();
    let code = GrantSecret::generate(SecretKind::Code).expect("rng");
    block_on(m.insert_code(&new_code(approved(), code.hash(), "g1".into(), 1000))).expect("insert");
    m.inject(AuthzStep::CodeConsume, Fault::LandedButFailed);
    assert!(block_on(m.consume_code(&code.hash(), 1001)).is_err());
    assert!(matches!(
        block_on(m.consume_code(&code.hash(), 1002)).expect("consume"),
        CodeUse::Replayed(_)
    ));
    assert_eq!(
        block_on(m.revoke_grant("g1", 1002, GrantEnd::CodeReuse, &STAMP)).expect("revoke"),
        None
    );
}

fn remembered(scopes: &[&str]) -> RememberedApproval {
    RememberedApproval {
        subject: "alice".into(),
        client_uid: "cuid1".into(),
        redirect_key: "http://127.0.0.1/cb".into(),
        resource: "http://localhost:8787/gw/demo/".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        approved_at: 1,
    }
}

#[test]
fn approvals_accumulate_scopes_and_are_forgotten_per_client() {
    let m = AuthzMemory::default();
    block_on(m.remember_approval(&remembered(&["demo_api:read"]))).expect("write");
    block_on(m.remember_approval(&remembered(&["demo_api:write"]))).expect("write");
    let a = block_on(m.remembered_approval(
        "alice",
        "cuid1",
        "http://127.0.0.1/cb",
        "http://localhost:8787/gw/demo/",
    ))
    .expect("read")
    .expect("remembered");
    assert_eq!(a.scopes, ["demo_api:read", "demo_api:write"]);
    let mut wide = approved();
    wide.scopes = vec!["demo_api:read".into(), "demo_api:write".into()];
    assert!(a.covers(&wide));
    block_on(m.forget_approvals("alice", "cuid1")).expect("write");
    assert!(block_on(m.remembered_approval(
        "alice",
        "cuid1",
        "http://127.0.0.1/cb",
        "http://localhost:8787/gw/demo/"
    ))
    .expect("read")
    .is_none());
}

#[test]
fn a_new_grant_finds_the_ones_it_replaces() {
    let m = AuthzMemory::default();
    let (first, _) = authorize(&m, 1000);
    let (second, _) = authorize(&m, 2000);
    let g2 = block_on(m.grant(&second)).expect("read").expect("g");
    assert_eq!(
        block_on(m.grants_replaced_by(&g2, 2010)).expect("read"),
        std::slice::from_ref(&first)
    );
    let mut elsewhere = g2.clone();
    elsewhere.audience.resource = "https://other.example/".into();
    assert!(block_on(m.grants_replaced_by(&elsewhere, 2010))
        .expect("read")
        .iter()
        .all(|id| *id != second));
    // newest first on the page
    let listed: Vec<String> = block_on(m.grants_of("alice", 2010, 10))
        .expect("list")
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(listed, [second, first]);
}

pub(super) fn client(id: &str) -> Client {
    Client {
        id: id.into(),
        uid: String::new(),
        secret: None,
        allowed_scopes: vec![],
        token_format: TokenFormat::Reference,
        token_lifetime: 3600,
        enabled: true,
    }
}

pub(super) fn profile(source: ClientSource) -> ClientProfile {
    ClientProfile {
        source,
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        ..ClientProfile::legacy()
    }
}
