//! What a revocation tells the APIs that registered to hear of it: the subject and events of the
//! Security Event Tokens pushed to them (RFC 8417 SETs, RFC 8935 push, signed in
//! `crate::jose::secevent`), from the `OpenID` Continuous Access Evaluation Profile (CAEP 1.0):
//!
//! | what happened | event | `change_type` | subject (`sub_id`) |
//! |---|---|---|---|
//! | a reference token revoked (PAT, client token) | `credential-change` | `revoke` | `opaque`: the token id (the `jti` introspection answers carry) |
//! | a PAT rotated (without or with grace) | `credential-change` | `update` | the same: answers cached for it are stale |
//! | the grace of a rotated-away token ended | `credential-change` | `update` | the same |
//! | a JWT access token revoked | `credential-change` | `revoke` | `jwt_id`: `iss` and `jti` |
//! | an authorization-server grant ended | `session-revoked` | | `complex`: the grant as `session`, its client as `application`, its user as `user` |
//! | a client disabled or deleted | `session-revoked` | | `complex`: the client as `application` |
//!
//! `credential_type` is `bearer-token` (CAEP lets transmitter and receiver agree on a type).
//! With the receiver's consent, a token event also carries `token_hash`: the hex SHA-256 of the
//! token concerned (for a rotation or the end of a grace, of the token that stopped or will stop
//! working), which an API can compute from a token it cached answers for.
//!
//! Pure: the caller gives the time, the SET's `jti` and the revocation's `txn`.

use crate::token::TokenHash;
use serde_json::{json, Map, Value};

/// CAEP 1.0 event type URIs.
pub const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

/// Who caused it (CAEP `initiating_entity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// The token's owner (the PAT API, the token page, RFC 7009 by the holder).
    User,
    /// An operator (the admin API).
    Admin,
    /// A rule: a leak report, a detected reuse.
    Policy,
    /// patgate itself.
    System,
}

impl Initiator {
    pub fn as_str(self) -> &'static str {
        match self {
            Initiator::User => "user",
            Initiator::Admin => "admin",
            Initiator::Policy => "policy",
            Initiator::System => "system",
        }
    }
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A reference token revoked: every token of the record. `hash`: its current token.
    TokenRevoked {
        token_id: String,
        hash: Option<TokenHash>,
    },
    /// A PAT rotated: its previous token stops working now (`grace_until` `None`) or then.
    TokenRotated {
        token_id: String,
        old_hash: TokenHash,
        grace_until: Option<i64>,
    },
    /// The grace of a rotated-away token ended early.
    GraceEnded {
        token_id: String,
        old_hash: TokenHash,
    },
    /// A JWT access token revoked.
    JwtRevoked { jti: String },
    /// An authorization-server grant ended (its access and refresh tokens with it); `user`: the
    /// subject it was granted by.
    GrantRevoked {
        grant_id: String,
        client_id: String,
        user: String,
    },
    /// A client disabled or deleted: its tokens stopped working.
    ClientDisabled { client_id: String },
}

/// One revocation to push: what changed, when, who caused it and why (free text for the
/// receiver's administrators, CAEP `reason_admin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub change: Change,
    /// Unix seconds.
    pub at: i64,
    pub initiator: Initiator,
    pub reason: &'static str,
}

/// What a receiver asked for when it registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    /// The `aud` of its SETs.
    pub audience: String,
    /// Whether its token events carry `token_hash`.
    pub token_hash: bool,
}

/// The subject (`sub_id`) and `events` of the SET telling `receiver` of `notice`; `issuer` is
/// patgate's (a JWT subject names it).
pub fn subject_and_events(notice: &Notice, issuer: &str, receiver: &Receiver) -> (Value, Value) {
    let mut event = Map::new();
    let opaque = |id: &str| json!({"format": "opaque", "id": id});
    let (event_type, subject, change_type, hash) = match &notice.change {
        Change::TokenRevoked { token_id, hash } => (
            CREDENTIAL_CHANGE,
            opaque(token_id),
            Some("revoke"),
            hash.as_ref(),
        ),
        Change::TokenRotated {
            token_id, old_hash, ..
        }
        | Change::GraceEnded { token_id, old_hash } => (
            CREDENTIAL_CHANGE,
            opaque(token_id),
            Some("update"),
            Some(old_hash),
        ),
        Change::JwtRevoked { jti } => (
            CREDENTIAL_CHANGE,
            json!({"format": "jwt_id", "iss": issuer, "jti": jti}),
            Some("revoke"),
            None,
        ),
        Change::GrantRevoked {
            grant_id,
            client_id,
            user,
        } => (
            SESSION_REVOKED,
            json!({"format": "complex", "session": opaque(grant_id),
                "application": opaque(client_id), "user": opaque(user)}),
            None,
            None,
        ),
        Change::ClientDisabled { client_id } => (
            SESSION_REVOKED,
            json!({"format": "complex", "application": opaque(client_id)}),
            None,
            None,
        ),
    };
    if let Some(change_type) = change_type {
        event.insert("credential_type".into(), json!("bearer-token"));
        event.insert("change_type".into(), json!(change_type));
    }
    event.insert("event_timestamp".into(), json!(notice.at));
    event.insert("initiating_entity".into(), json!(notice.initiator.as_str()));
    event.insert("reason_admin".into(), json!({"en": notice.reason}));
    if let Change::TokenRotated {
        grace_until: Some(g),
        ..
    } = &notice.change
    {
        // The previous token keeps working until then (a patgate member: receivers that do not
        // know it ignore it).
        event.insert("grace_until".into(), json!(g));
    }
    if let Some(h) = hash.filter(|_| receiver.token_hash) {
        event.insert("token_hash".into(), json!(h.to_hex()));
    }
    let mut events = Map::new();
    events.insert(event_type.into(), Value::Object(event));
    (subject, Value::Object(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://patgate.test";

    fn notice(change: Change) -> Notice {
        Notice {
            change,
            at: 1_795_000_000,
            initiator: Initiator::User,
            reason: "revoked by its owner",
        }
    }

    fn with_hash() -> Receiver {
        Receiver {
            audience: "https://api.example".into(),
            token_hash: true,
        }
    }

    /// The events receivers parse: pinned.
    #[test]
    fn events_are_caep() {
        let h = TokenHash([0xab; 32]);
        let (sub, events) = subject_and_events(
            &notice(Change::TokenRevoked {
                token_id: "tok1".into(),
                hash: Some(h),
            }),
            ISS,
            &with_hash(),
        );
        assert_eq!(sub, json!({"format": "opaque", "id": "tok1"}));
        assert_eq!(
            events,
            json!({CREDENTIAL_CHANGE: {
                "credential_type": "bearer-token", "change_type": "revoke",
                "event_timestamp": 1_795_000_000, "initiating_entity": "user",
                "reason_admin": {"en": "revoked by its owner"}, "token_hash": "ab".repeat(32)
            }})
        );
        // without consent, no hash
        let no_hash = Receiver {
            token_hash: false,
            ..with_hash()
        };
        let (_, events) = subject_and_events(
            &notice(Change::TokenRevoked {
                token_id: "tok1".into(),
                hash: Some(h),
            }),
            ISS,
            &no_hash,
        );
        assert!(events[CREDENTIAL_CHANGE].get("token_hash").is_none());

        let (sub, events) = subject_and_events(
            &notice(Change::TokenRotated {
                token_id: "tok1".into(),
                old_hash: h,
                grace_until: Some(1_795_000_600),
            }),
            ISS,
            &with_hash(),
        );
        assert_eq!(sub["id"], "tok1");
        assert_eq!(events[CREDENTIAL_CHANGE]["change_type"], "update");
        assert_eq!(events[CREDENTIAL_CHANGE]["grace_until"], 1_795_000_600);
        assert_eq!(events[CREDENTIAL_CHANGE]["token_hash"], "ab".repeat(32));

        let (sub, events) = subject_and_events(
            &notice(Change::JwtRevoked { jti: "j1".into() }),
            ISS,
            &with_hash(),
        );
        assert_eq!(sub, json!({"format": "jwt_id", "iss": ISS, "jti": "j1"}));
        assert_eq!(events[CREDENTIAL_CHANGE]["change_type"], "revoke");

        let (sub, events) = subject_and_events(
            &Notice {
                initiator: Initiator::Admin,
                ..notice(Change::ClientDisabled {
                    client_id: "c1".into(),
                })
            },
            ISS,
            &with_hash(),
        );
        assert_eq!(
            sub,
            json!({"format": "complex", "application": {"format": "opaque", "id": "c1"}})
        );
        assert_eq!(
            events,
            json!({SESSION_REVOKED: {"event_timestamp": 1_795_000_000, "initiating_entity": "admin",
                "reason_admin": {"en": "revoked by its owner"}}})
        );

        let (sub, _) = subject_and_events(
            &notice(Change::GrantRevoked {
                grant_id: "g1".into(),
                client_id: "c1".into(),
                user: "alice".into(),
            }),
            ISS,
            &with_hash(),
        );
        assert_eq!(
            sub,
            json!({"format": "complex", "session": {"format": "opaque", "id": "g1"},
                "application": {"format": "opaque", "id": "c1"},
                "user": {"format": "opaque", "id": "alice"}})
        );
    }
}
