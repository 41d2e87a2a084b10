//! What operators register: the endpoint URL (absolute `https`, no credentials, no private
//! hosts unless local development allows `http://localhost`) and the event type filter.

/// Event types an endpoint can subscribe to: every security event (`pat.reuse_detected` comes
/// with reuse detection), plus `*` (all). `webhook.*` delivery outcomes are log lines only.
pub const EVENT_TYPES: [&str; 19] = [
    "pat.created",
    "pat.rotated",
    "pat.revoked",
    "pat.expiring",
    "pat.expired",
    "pat.reuse_detected",
    "token.leaked",
    "token.revoked",
    "token.issued",
    "admin.change",
    "client.registered",
    "client.expired",
    "grant.created",
    "grant.revoked",
    "grant.reuse_detected",
    "client_auth.failed",
    "rate_limited",
    "warning",
    "webhook_endpoint.disabled",
];

/// Most event types one endpoint lists.
pub const MAX_EVENT_TYPES: usize = 32;

/// Checks an endpoint's event type filter: 1 to [`MAX_EVENT_TYPES`] known names (or `*`), no
/// repeats.
pub fn check_event_types(types: &[String]) -> Result<(), String> {
    if types.is_empty() || types.len() > MAX_EVENT_TYPES {
        return Err(format!(
            "event_types must list 1 to {MAX_EVENT_TYPES} event types"
        ));
    }
    for (i, t) in types.iter().enumerate() {
        if t != "*" && !EVENT_TYPES.contains(&t.as_str()) {
            let shown: String = t.chars().take(64).collect();
            return Err(format!(
                "unknown event type {shown:?} (known: *, {})",
                EVENT_TYPES.join(", ")
            ));
        }
        if types[..i].contains(t) {
            return Err(format!("event type {t} is repeated"));
        }
    }
    Ok(())
}

/// Whether an endpoint with filter `types` gets events of type `ty`.
pub fn subscribed(types: &[String], ty: &str) -> bool {
    !ty.starts_with("webhook.") && types.iter().any(|t| t == "*" || t == ty)
}

/// Longest endpoint URL.
pub const MAX_URL_LEN: usize = crate::net_guard::MAX_URL_LEN;

/// Checks an endpoint URL with [`crate::net_guard::public_https_url`]: absolute `https` to a
/// public DNS name (no numeric, loopback, private or link-local host, no `localhost`), no
/// credentials, no fragment, at most [`MAX_URL_LEN`]. With `allow_local`
/// (`WEBHOOK_ALLOW_HTTP_LOCALHOST`, local development and tests only) any host over `https`, and
/// plain `http` to `localhost`, `127.0.0.1` or `[::1]`.
pub fn check_url(url: &str, allow_local: bool) -> Result<(), String> {
    crate::net_guard::public_https_url(url, allow_local)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Event;
    use crate::webhook::payload::{event_type, payload};

    /// Every event the service emits today can be subscribed to by name.
    #[test]
    #[allow(clippy::too_many_lines)]
    fn every_event_type_is_subscribable() {
        let all = [
            Event::PatCreated {
                pat_id: "p".into(),
                sub: "s".into(),
                scopes: vec![],
                expires_at: 0,
            },
            Event::PatRevoked {
                pat_id: "p".into(),
                newly: true,
                via: "api",
            },
            Event::TokenLeaked {
                token_id: "t".into(),
                kind: "pat",
                newly: true,
                grace_ended: false,
                url: None,
                source: None,
            },
            Event::TokenRevoked {
                token_id: "t".into(),
                client_id: "c".into(),
            },
            Event::PatExpiring {
                pat_id: "p".into(),
                sub: "s".into(),
                expires_at: 0,
                threshold_days: 1,
            },
            Event::PatExpired {
                pat_id: "p".into(),
                sub: "s".into(),
                expires_at: 0,
            },
            Event::PatRotated {
                pat_id: "p".into(),
                generation: 1,
                grace_until: None,
                via: "api",
            },
            Event::TokenIssued {
                client_id: "c".into(),
                sub: "s".into(),
                format: "reference",
                grant: "client_credentials",
            },
            Event::AdminChange {
                method: "POST",
                target: "clients".into(),
                status: 201,
                outcome: "ok",
            },
            Event::ClientAuthFailed {
                client_id: "c".into(),
                ip: "ip".into(),
                reason: "r".into(),
            },
            Event::RateLimited {
                limit: "l",
                key: "k".into(),
            },
            Event::Warning {
                message: "m".into(),
            },
            Event::PatReuseDetected {
                pat_id: "p".into(),
                sub: "s".into(),
                rotated_at: 1,
                ip: None,
                colo: None,
                country: None,
                family_revoked: true,
            },
            Event::GrantCreated {
                grant_id: "g".into(),
                sub: "s".into(),
                client_id: "c".into(),
                resource: "https://r/".into(),
                scopes: vec!["a".into()],
            },
            Event::GrantRevoked {
                grant_id: "g".into(),
                sub: "s".into(),
                client_id: "c".into(),
                newly: true,
                via: "user",
            },
            Event::GrantReuseDetected {
                grant_id: "g".into(),
                sub: "s".into(),
                client_id: "c".into(),
                ip: None,
                colo: None,
                country: None,
                family_revoked: true,
            },
        ];
        for e in &all {
            let ty = event_type(e).expect("type");
            assert!(EVENT_TYPES.contains(&ty.as_str()), "{ty}");
            assert_eq!(payload(e, 0).expect("payload").0, ty);
        }
    }

    #[test]
    fn event_type_filters() {
        let ok =
            |v: &[&str]| check_event_types(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert!(ok(&["pat.revoked"]).is_ok());
        assert!(ok(&["*"]).is_ok());
        assert!(ok(&["pat.revoked", "pat.reuse_detected"]).is_ok());
        assert!(ok(&[]).is_err());
        assert!(ok(&["pat.revoked", "pat.revoked"]).is_err());
        assert!(ok(&["pat.*"]).is_err());
        assert!(ok(&["PAT.REVOKED"]).is_err());
        assert!(ok(&["webhook.failed"]).is_err());
        assert!(ok(&["pat.revoked\n"]).is_err());
        let long = "x".repeat(10_000);
        let e = ok(&[long.as_str()]).expect_err("long");
        assert!(e.len() < 1000, "the error does not echo huge input");
        let many: Vec<String> = (0..33).map(|_| "*".to_owned()).collect();
        assert!(check_event_types(&many).is_err());
        let types = vec!["pat.revoked".to_owned()];
        assert!(subscribed(&types, "pat.revoked"));
        assert!(!subscribed(&types, "pat.created"));
        assert!(subscribed(&["*".to_owned()], "pat.created"));
        assert!(!subscribed(&["*".to_owned()], "webhook.failed"));
    }

    #[test]
    fn urls_are_https_without_credentials() {
        for ok in [
            "https://hooks.example.com/patgate",
            "https://hooks.example.com",
            "https://hooks.example.com:8443/a/b?x=1",
        ] {
            assert_eq!(check_url(ok, false), Ok(()), "{ok}");
        }
        // Numeric hosts (the guard's own tests cover every form and range).
        for bad in [
            "https://[2001:db8::1]:443/h",
            "https://192.0.2.7/h",
            "https://127.0.0.1/h",
            "https://[::1]/h",
            "https://169.254.169.254/h",
            "https://10.0.0.1/h",
            "https://2130706433/h",
            "https://localhost/h",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
            assert!(check_url(bad, true).is_ok(), "{bad} in local development");
        }
        assert_eq!(check_url("http://127.0.0.1:8989/h", true), Ok(()));
        assert_eq!(check_url("http://localhost:8989/h", true), Ok(()));
        assert_eq!(check_url("http://LOCALHOST/h", true), Ok(()));
        for bad in [
            "http://127.0.0.1:8989/h",
            "http://hooks.example.com/h",
            "ftp://hooks.example.com/h",
            "javascript:alert(1)",
            "//hooks.example.com/h",
            "https://user:pw@hooks.example.com/h",
            "https://user@hooks.example.com/h",
            "https://hooks.example.com/h#frag",
            "https://hooks.example.com/a b",
            "https://hooks.example.com/\n",
            "https:///h",
            "https://hooks..example.com/",
            "https://hooks.example.com:99999/",
            "https://hooks.example.com:/",
            "https://hooks.example.com:12a/",
            "https://ho_st.example.com/",
            "https://hooks.example.com\\@evil.example/",
            "https://[::1/",
            "https://hooks.example.com/ü",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        // Even with the flag, http is for the local machine only.
        assert!(check_url("http://127.0.0.2/h", true).is_err());
        assert!(check_url("http://localhost.evil.example/h", true).is_err());
        assert!(check_url("http://localhost@evil.example/h", true).is_err());
        let long = format!("https://h.example/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_url(&long, false).is_err());
    }
}
