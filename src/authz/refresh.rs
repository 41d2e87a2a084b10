//! Refresh tokens: rotated on every use, with reuse detection (RFC 9700 4.14.2, the MCP
//! specification's "MUST rotate for public clients"), as a pure decision over the stored
//! records.
//!
//! A grant's refresh tokens form a chain of generations 1, 2, 3, ...; only the latest
//! (`AppGrant::refresh_generation`) is current. Presenting:
//!
//! - the current one, unexpired: [`Outcome::Rotate`]: the next generation is issued and this one
//!   is marked rotated, in one conditional write (`RefreshTokens::rotate_refresh`, which fails if
//!   another request rotated first);
//! - the last one presented and rotated ([`AppGrant::rotated_generation`]), again, within
//!   [`RefreshPolicy::retry_grace_secs`] of that rotation, while no later token has been
//!   presented: [`Outcome::Retry`]: the client most likely never received the answer (a
//!   timeout); it gets a new successor, and the one it never received is retired unused. A
//!   thief racing the client inside that window gains nothing lasting: the client's next refresh
//!   then presents a retired token, which is a reuse;
//! - any other rotated-away one: [`Outcome::Reuse`]: the whole grant is revoked (its access and
//!   refresh tokens), with the reuse event PATs have;
//! - an expired one (idle or absolute), one of a revoked grant, or one of another client:
//!   `invalid_grant` and nothing else ([`Outcome::Refused`]).

use super::records::{AppGrant, RefreshTokenRecord};
use crate::error::Error;
use crate::oauth::authorize::ResourceIndicator;
use crate::scopes::Scopes;
use crate::token::TokenHash;

/// Refresh token lifetimes (`REFRESH_IDLE_SECONDS`, `REFRESH_ABSOLUTE_SECONDS`,
/// `REFRESH_RETRY_GRACE_SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// An unused refresh token dies after this long.
    pub idle_secs: i64,
    /// A grant's refresh tokens die this long after its creation, used or not.
    pub absolute_secs: i64,
    /// How long after a rotation the previous token may be presented again (a lost answer).
    pub retry_grace_secs: i64,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            idle_secs: 30 * 86_400,
            absolute_secs: 180 * 86_400,
            retry_grace_secs: 60,
        }
    }
}

/// What presenting a refresh token leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Rotate,
    Retry,
    Reuse,
    /// `invalid_grant` with this description; nothing changes.
    Refused(&'static str),
}

/// Decides on `token` (found by its hash) of `grant`, presented by the client `client_uid`.
pub fn decide(
    token: &RefreshTokenRecord,
    grant: &AppGrant,
    client_uid: &str,
    now: i64,
    policy: &RefreshPolicy,
) -> Outcome {
    if token.grant_id != grant.id {
        return Outcome::Refused("unknown refresh token");
    }
    if grant.client_uid != client_uid {
        return Outcome::Refused("the refresh token was issued to another client");
    }
    if grant.revoked_at.is_some() {
        return Outcome::Refused("the grant was revoked");
    }
    if now >= grant.expires_at {
        return Outcome::Refused("the refresh token expired");
    }
    match token.rotated_at {
        None if token.generation == grant.refresh_generation => {
            if now >= token.idle_expires_at {
                Outcome::Refused("the refresh token expired")
            } else {
                Outcome::Rotate
            }
        }
        Some(at)
            if token.generation == grant.rotated_generation
                && token.generation < grant.refresh_generation
                && now < at.saturating_add(policy.retry_grace_secs) =>
        {
            Outcome::Retry
        }
        // rotated away, retired unused by a retry, or (defensively) an older generation never
        // marked rotated
        _ => Outcome::Reuse,
    }
}

/// The refresh token issued next for `grant` at `now` (generation `refresh_generation + 1`).
pub fn successor(
    grant: &AppGrant,
    hash: TokenHash,
    now: i64,
    policy: &RefreshPolicy,
) -> RefreshTokenRecord {
    RefreshTokenRecord {
        hash,
        grant_id: grant.id.clone(),
        generation: grant.refresh_generation + 1,
        created_at: now,
        idle_expires_at: now.saturating_add(policy.idle_secs).min(grant.expires_at),
        rotated_at: None,
    }
}

/// The first refresh token of a new grant (generation 1).
pub fn first(
    grant: &AppGrant,
    hash: TokenHash,
    now: i64,
    policy: &RefreshPolicy,
) -> RefreshTokenRecord {
    RefreshTokenRecord {
        generation: 1,
        ..successor(grant, hash, now, policy)
    }
}

/// The scopes of the access token a refresh issues: the grant's, or the requested subset
/// (RFC 6749 6: "MUST NOT include any scope not originally granted"); `resource`, if sent, must
/// name the grant's.
///
/// # Errors
/// [`Error::InvalidTarget`] for another resource, [`Error::InvalidScope`] for a scope the grant
/// does not hold.
pub fn token_scopes(
    grant: &AppGrant,
    scope: Option<&Scopes>,
    resource: Option<&ResourceIndicator<'_>>,
) -> Result<Vec<String>, Error> {
    if resource.is_some_and(|r| !r.names(&grant.audience.resource)) {
        return Err(Error::InvalidTarget(
            "resource is not the one this grant is for".into(),
        ));
    }
    match scope {
        None => Ok(grant.scopes.clone()),
        Some(s) => {
            if let Some(extra) = s.first_outside(&grant.scopes) {
                return Err(Error::InvalidScope(format!(
                    "scope {extra} was not granted"
                )));
            }
            Ok(s.clone().into_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::{Audience, GrantEnd};
    use super::*;
    use std::borrow::Cow;

    const P: RefreshPolicy = RefreshPolicy {
        idle_secs: 1000,
        absolute_secs: 10_000,
        retry_grace_secs: 60,
    };

    fn grant(generation: i64) -> AppGrant {
        AppGrant {
            id: "g1".into(),
            subject: "alice".into(),
            client_id: "c".into(),
            client_uid: "u1".into(),
            redirect_key: "http://127.0.0.1/cb".into(),
            audience: Audience {
                resource: "https://api.example/mcp".into(),
                api_id: "demo_api".into(),
                api_uid: "r1".into(),
            },
            scopes: vec!["a".into(), "b".into()],
            created_at: 0,
            last_used_at: None,
            refresh_generation: generation,
            rotated_generation: generation - 1,
            expires_at: 10_000,
            revoked_at: None,
            revoked_reason: None,
        }
    }

    fn token(generation: i64, rotated_at: Option<i64>) -> RefreshTokenRecord {
        RefreshTokenRecord {
            hash: TokenHash([generation as u8; 32]),
            grant_id: "g1".into(),
            generation,
            created_at: 0,
            idle_expires_at: 1000,
            rotated_at,
        }
    }

    #[test]
    fn the_state_machine() {
        let g = grant(3);
        let d = |t: &RefreshTokenRecord, now| decide(t, &g, "u1", now, &P);
        assert_eq!(d(&token(3, None), 10), Outcome::Rotate);
        assert_eq!(d(&token(3, None), 999), Outcome::Rotate);
        assert_eq!(
            d(&token(3, None), 1000),
            Outcome::Refused("the refresh token expired")
        );
        // the previous one: a retry within the grace, a reuse after it
        assert_eq!(d(&token(2, Some(500)), 559), Outcome::Retry);
        assert_eq!(d(&token(2, Some(500)), 560), Outcome::Reuse);
        // older ones are always a reuse, even within a grace window
        assert_eq!(d(&token(1, Some(550)), 551), Outcome::Reuse);
        // a token a retry replaced before it was ever presented is a reuse too
        let mut retried = grant(4);
        retried.rotated_generation = 2;
        assert_eq!(
            decide(&token(2, Some(500)), &retried, "u1", 510, &P),
            Outcome::Retry,
            "a second retry"
        );
        assert_eq!(
            decide(&token(3, Some(505)), &retried, "u1", 510, &P),
            Outcome::Reuse
        );
        assert_eq!(d(&token(1, None), 10), Outcome::Reuse);
        // the client, the grant's state and its absolute end come first
        assert_eq!(
            decide(&token(3, None), &g, "u2", 10, &P),
            Outcome::Refused("the refresh token was issued to another client")
        );
        assert_eq!(
            decide(&token(1, Some(5)), &g, "u2", 10, &P),
            Outcome::Refused("the refresh token was issued to another client")
        );
        let mut revoked = grant(3);
        revoked.revoked_at = Some(5);
        revoked.revoked_reason = Some(GrantEnd::User);
        assert_eq!(
            decide(&token(3, None), &revoked, "u1", 10, &P),
            Outcome::Refused("the grant was revoked")
        );
        assert_eq!(
            decide(&token(2, Some(9)), &revoked, "u1", 10, &P),
            Outcome::Refused("the grant was revoked"),
            "no second revocation"
        );
        assert_eq!(
            decide(&token(3, None), &g, "u1", 10_000, &P),
            Outcome::Refused("the refresh token expired")
        );
        let mut other = token(3, None);
        other.grant_id = "g2".into();
        assert_eq!(d(&other, 10), Outcome::Refused("unknown refresh token"));
    }

    #[test]
    fn successors_never_outlive_the_grant() {
        let g = grant(3);
        let n = successor(&g, TokenHash([9; 32]), 100, &P);
        assert_eq!(
            (n.generation, n.idle_expires_at, n.rotated_at),
            (4, 1100, None)
        );
        let late = successor(&g, TokenHash([9; 32]), 9_500, &P);
        assert_eq!(late.idle_expires_at, 10_000);
        assert_eq!(first(&grant(0), TokenHash([9; 32]), 0, &P).generation, 1);
    }

    #[test]
    fn refresh_may_narrow_scopes_but_not_change_the_resource() {
        let g = grant(1);
        assert_eq!(
            token_scopes(&g, None, None),
            Ok(vec!["a".into(), "b".into()])
        );
        let b = Scopes::parse("b").expect("scope");
        assert_eq!(token_scopes(&g, Some(&b), None), Ok(vec!["b".into()]));
        let c = Scopes::parse("a c").expect("scope");
        assert_eq!(
            token_scopes(&g, Some(&c), None),
            Err(Error::InvalidScope("scope c was not granted".into()))
        );
        let same = ResourceIndicator::parse(Cow::Borrowed("https://API.example/mcp")).expect("uri");
        assert!(token_scopes(&g, None, Some(&same)).is_ok());
        let other =
            ResourceIndicator::parse(Cow::Borrowed("https://api.example/other")).expect("uri");
        assert_eq!(
            token_scopes(&g, None, Some(&other)),
            Err(Error::InvalidTarget(
                "resource is not the one this grant is for".into()
            ))
        );
    }

    proptest::proptest! {
        /// Whatever the records, only the current generation rotates, only its predecessor
        /// retries, and a revoked or expired grant never issues anything.
        #[test]
        fn only_the_chain_head_issues(gen in 0i64..6, current in 1i64..6, rotated in proptest::option::of(0i64..2000), now in 0i64..12_000, revoked in proptest::bool::ANY) {
            let mut g = grant(current);
            if revoked { g.revoked_at = Some(0); }
            let t = token(gen, rotated);
            match decide(&t, &g, "u1", now, &P) {
                Outcome::Rotate => proptest::prop_assert!(gen == current && rotated.is_none() && !revoked && now < 1000),
                Outcome::Retry => proptest::prop_assert!(gen + 1 == current && rotated.is_some_and(|r| now < r + 60) && !revoked && now < 10_000),
                // (here the grant's rotated generation is always current - 1)
                Outcome::Reuse => proptest::prop_assert!(!revoked && now < 10_000 && !(gen == current && rotated.is_none())),
                Outcome::Refused(_) => {}
            }
        }
    }
}
