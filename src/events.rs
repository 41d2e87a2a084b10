//! Security events: one structured JSON log line each (`{"event":"pat.revoked",...}`), with ids
//! and outcome, never a secret or a token. Handlers emit them into this isolate's sink
//! ([`crate::app::IsolateState::emit`]); the runtime writes each as one line after the request (or,
//! for work after the response, right away). JSON escaping keeps user-controlled strings (names,
//! ids, paths) from forging lines.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event")]
pub enum Event {
    #[serde(rename = "pat.created")]
    PatCreated {
        pat_id: String,
        sub: String,
        scopes: Vec<String>,
        expires_at: i64,
    },
    #[serde(rename = "pat.revoked")]
    PatRevoked {
        pat_id: String,
        /// False when it was revoked before (a repeat that only evicted KV again).
        newly: bool,
        /// `api` (the owner), `rfc7009` (anyone holding the token), `leaked` (a secret
        /// scanning report) or `reuse` (a detected reuse, the owner chose `revoke_on_reuse`).
        via: &'static str,
    },
    /// A secret scanning partner reported a patgate token found in public: the token was revoked
    /// (`newly`: by this report), or a rotated-away token's grace ended (`grace_ended`).
    #[serde(rename = "token.leaked")]
    TokenLeaked {
        token_id: String,
        kind: &'static str,
        newly: bool,
        grace_ended: bool,
        /// Where it was found (the report's URL, if it was a plain web URL).
        url: Option<String>,
        /// The report's `source` (`content`, `commit`, ...), at most 64 characters.
        source: Option<String>,
    },
    /// A client access token (not a PAT) revoked through RFC 7009.
    #[serde(rename = "token.revoked")]
    TokenRevoked { token_id: String, client_id: String },
    /// The expiry scan: a PAT expires within `threshold_days` (30, 7 or 1). Once per PAT and
    /// threshold.
    #[serde(rename = "pat.expiring")]
    PatExpiring {
        pat_id: String,
        sub: String,
        expires_at: i64,
        threshold_days: i64,
    },
    /// The expiry scan: a PAT expired within the last day. Once per PAT.
    #[serde(rename = "pat.expired")]
    PatExpired {
        pat_id: String,
        sub: String,
        expires_at: i64,
    },
    /// A token rotated away from PAT `pat_id` (at `rotated_at`) was used after it stopped
    /// working (its grace ended, or it was rotated without grace): probably a copy. Where the
    /// request came from, as Cloudflare reported it (`null` when unknown). `family_revoked`: the
    /// owner chose `revoke_on_reuse` and this detection revoked the PAT (a `pat.revoked` with
    /// `via: "reuse"` goes with it). Never the token or its hash.
    #[serde(rename = "pat.reuse_detected")]
    PatReuseDetected {
        pat_id: String,
        sub: String,
        rotated_at: i64,
        ip: Option<String>,
        colo: Option<String>,
        country: Option<String>,
        family_revoked: bool,
    },
    #[serde(rename = "pat.rotated")]
    PatRotated {
        pat_id: String,
        generation: i64,
        /// The old token works until then (rotation with grace).
        #[serde(skip_serializing_if = "Option::is_none")]
        grace_until: Option<i64>,
        /// `api` (the owner) or `self` (the PAT rotated itself).
        via: &'static str,
    },
    /// A client access token was issued (`client_credentials`) or a JWT minted by exchange.
    #[serde(rename = "token.issued")]
    TokenIssued {
        client_id: String,
        sub: String,
        format: &'static str,
        grant: &'static str,
    },
    /// A change through the admin API (clients, resources, secrets): the action and its outcome.
    #[serde(rename = "admin.change")]
    AdminChange {
        method: &'static str,
        target: String,
        status: u16,
        outcome: &'static str,
    },
    /// A client registered itself: `source` `dynamic` (RFC 7591) or `metadata` (a client ID
    /// metadata document, fetched for the first time). Anyone can cause it: webhooks sample it.
    #[serde(rename = "client.registered")]
    ClientRegistered {
        client_id: String,
        source: &'static str,
    },
    /// A user approved an app and its first code was exchanged: a grant (the family of the
    /// app's access and refresh tokens for one resource) began.
    #[serde(rename = "grant.created")]
    GrantCreated {
        grant_id: String,
        sub: String,
        client_id: String,
        resource: String,
        scopes: Vec<String>,
    },
    /// A grant ended with all its tokens. `via`: `user` (the token page), `admin`, `code_reuse`
    /// (its code presented twice), `refresh_reuse` (a rotated-away refresh token presented),
    /// `replaced` (a newer grant of the same app, redirect URI and resource), `token_revoked`
    /// (RFC 7009 of its refresh token). `newly`: false when it had ended before.
    #[serde(rename = "grant.revoked")]
    GrantRevoked {
        grant_id: String,
        sub: String,
        client_id: String,
        newly: bool,
        via: &'static str,
    },
    /// A rotated-away refresh token of a grant was presented: the grant was revoked (a
    /// `grant.revoked` with `via: "refresh_reuse"` goes with it). Where the request came from,
    /// as for `pat.reuse_detected`. Never the token or its hash.
    #[serde(rename = "grant.reuse_detected")]
    GrantReuseDetected {
        grant_id: String,
        sub: String,
        client_id: String,
        ip: Option<String>,
        colo: Option<String>,
        country: Option<String>,
        family_revoked: bool,
    },
    /// The cron deleted a dynamic registration that went unused.
    #[serde(rename = "client.expired")]
    ClientExpired { client_id: String },
    #[serde(rename = "client_auth.failed")]
    ClientAuthFailed {
        client_id: String,
        ip: String,
        reason: String,
    },
    #[serde(rename = "rate_limited")]
    RateLimited { limit: &'static str, key: String },
    /// A webhook endpoint failed every delivery attempt for `WEBHOOK_DISABLE_AFTER_SECONDS` and
    /// was disabled (an operator enables it again).
    #[serde(rename = "webhook_endpoint.disabled")]
    WebhookEndpointDisabled {
        endpoint: String,
        failing_since: i64,
        reason: String,
    },
    /// A revocation to push to Security Event Token receivers (webhook endpoints of format
    /// `secevent`, see [`crate::revocation::push`]): never a Standard Webhooks event. Its line
    /// names the change's kind and subject, never a token hash.
    #[serde(rename = "revocation.notice")]
    RevocationNotice {
        change: &'static str,
        subject: String,
        #[serde(skip)]
        notice: Box<crate::revocation::push::Notice>,
    },
    /// Something went wrong that did not change the answer (a KV delete retried later, a rate
    /// limiter that failed open, ...).
    #[serde(rename = "warning")]
    Warning { message: String },
    /// The cause behind an error answer ([`crate::error::Error::cause`]): which check failed,
    /// which storage call broke. For operators only: never sent to the client, and not
    /// delivered to webhooks (one per refused request).
    #[serde(rename = "error")]
    ErrorCause {
        status: u16,
        error: &'static str,
        cause: String,
    },
}

impl Event {
    /// The `error` event of an error answer, if its error has a cause worth logging.
    pub fn error_cause(e: &crate::error::Error) -> Option<Self> {
        e.cause().map(|cause| Event::ErrorCause {
            status: e.status(),
            error: e.code(),
            cause,
        })
    }

    /// The notice of a revocation for Security Event Token receivers.
    pub fn revocation_notice(notice: crate::revocation::push::Notice) -> Self {
        use crate::revocation::push::Change;
        let (change, subject) = match &notice.change {
            Change::TokenRevoked { token_id, .. } => ("token_revoked", token_id.clone()),
            Change::TokenRotated { token_id, .. } => ("token_rotated", token_id.clone()),
            Change::GraceEnded { token_id, .. } => ("grace_ended", token_id.clone()),
            Change::JwtRevoked { jti } => ("jwt_revoked", jti.clone()),
            Change::GrantRevoked { grant_id, .. } => ("grant_revoked", grant_id.clone()),
            Change::ClientDisabled { client_id } => ("client_disabled", client_id.clone()),
        };
        Event::RevocationNotice {
            change,
            subject,
            notice: Box::new(notice),
        }
    }

    /// The log line: one line of JSON.
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"event":"unserializable"}"#.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operators build alerts on these lines: the shape must not change silently.
    #[test]
    fn lines_are_pinned_and_cannot_be_forged() {
        let e = Event::PatRevoked {
            pat_id: "p1".into(),
            newly: true,
            via: "api",
        };
        assert_eq!(
            e.line(),
            r#"{"event":"pat.revoked","pat_id":"p1","newly":true,"via":"api"}"#
        );
        // The cause behind an error answer: from an Error, with its status and code.
        let e = Event::error_cause(&crate::error::Error::InvalidClient(
            "unknown client \"x\"\n{\"event\":\"forged\"}".into(),
        ))
        .expect("a cause");
        assert_eq!(
            e.line(),
            r#"{"event":"error","status":401,"error":"invalid_client","cause":"invalid_client: unknown client \"x\"\n{\"event\":\"forged\"}"}"#
        );
        assert!(Event::error_cause(&crate::error::Error::NotFound).is_none());
        assert_eq!(crate::webhook::event_type(&e), None, "never delivered");
        let e = Event::TokenLeaked {
            token_id: "p1".into(),
            kind: "pat",
            newly: true,
            grace_ended: false,
            url: Some("https://github.com/o/r/blob/x/f#L1".into()),
            source: Some("content".into()),
        };
        assert_eq!(
            e.line(),
            r#"{"event":"token.leaked","token_id":"p1","kind":"pat","newly":true,"grace_ended":false,"url":"https://github.com/o/r/blob/x/f#L1","source":"content"}"#
        );
        let e = Event::PatExpiring {
            pat_id: "p1".into(),
            sub: "alice".into(),
            expires_at: 1_800_000_000,
            threshold_days: 7,
        };
        assert_eq!(
            e.line(),
            r#"{"event":"pat.expiring","pat_id":"p1","sub":"alice","expires_at":1800000000,"threshold_days":7}"#
        );
        let e = Event::PatRotated {
            pat_id: "p1".into(),
            generation: 2,
            grace_until: Some(1_800_000_000),
            via: "self",
        };
        assert_eq!(
            e.line(),
            r#"{"event":"pat.rotated","pat_id":"p1","generation":2,"grace_until":1800000000,"via":"self"}"#
        );
        let e = Event::PatReuseDetected {
            pat_id: "p1".into(),
            sub: "alice".into(),
            rotated_at: 1_800_000_000,
            ip: Some("203.0.113.7".into()),
            colo: Some("DFW".into()),
            country: None,
            family_revoked: true,
        };
        assert_eq!(
            e.line(),
            r#"{"event":"pat.reuse_detected","pat_id":"p1","sub":"alice","rotated_at":1800000000,"ip":"203.0.113.7","colo":"DFW","country":null,"family_revoked":true}"#
        );
        let e = Event::ClientRegistered {
            client_id: "pgd_x".into(),
            source: "dynamic",
        };
        assert_eq!(
            e.line(),
            r#"{"event":"client.registered","client_id":"pgd_x","source":"dynamic"}"#
        );
        assert_eq!(
            Event::ClientExpired {
                client_id: "pgd_x".into()
            }
            .line(),
            r#"{"event":"client.expired","client_id":"pgd_x"}"#
        );
        let forged = Event::ClientAuthFailed {
            client_id: "x\n{\"event\":\"pat.created\"}".into(),
            ip: "192.0.2.1".into(),
            reason: "unknown client".into(),
        };
        let line = forged.line();
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(line.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["event"], "client_auth.failed");
    }

    #[test]
    fn grant_event_lines_are_pinned() {
        let e = Event::GrantCreated {
            grant_id: "g1".into(),
            sub: "alice".into(),
            client_id: "app".into(),
            resource: "https://api.example/mcp".into(),
            scopes: vec!["demo_api:read".into()],
        };
        assert_eq!(
            e.line(),
            r#"{"event":"grant.created","grant_id":"g1","sub":"alice","client_id":"app","resource":"https://api.example/mcp","scopes":["demo_api:read"]}"#
        );
        let e = Event::GrantRevoked {
            grant_id: "g1".into(),
            sub: "alice".into(),
            client_id: "app".into(),
            newly: true,
            via: "refresh_reuse",
        };
        assert_eq!(
            e.line(),
            r#"{"event":"grant.revoked","grant_id":"g1","sub":"alice","client_id":"app","newly":true,"via":"refresh_reuse"}"#
        );
        let e = Event::GrantReuseDetected {
            grant_id: "g1".into(),
            sub: "alice".into(),
            client_id: "app".into(),
            ip: None,
            colo: Some("DFW".into()),
            country: None,
            family_revoked: true,
        };
        assert_eq!(
            e.line(),
            r#"{"event":"grant.reuse_detected","grant_id":"g1","sub":"alice","client_id":"app","ip":null,"colo":"DFW","country":null,"family_revoked":true}"#
        );
    }
}
