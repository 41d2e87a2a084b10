//! The clean-up of ended authorization state (`authz::store::EndedState` over D1): bounded
//! deletes, oldest first, each reading an index (`authorization_codes_by_expiry`,
//! `consent_requests_by_expiry`, `app_grants_by_end`), returning a row per row deleted. `?1` the
//! time before which the state ended, `?2` the most rows one statement deletes.

/// Authorization codes that expired before `?1`.
pub const DELETE_EXPIRED_CODES: &str = "DELETE FROM authorization_codes WHERE code_hash IN \
    (SELECT code_hash FROM authorization_codes WHERE expires_at < ?1 \
    ORDER BY expires_at LIMIT ?2) RETURNING 1";

/// Consent requests that expired before `?1`.
pub const DELETE_EXPIRED_CONSENTS: &str = "DELETE FROM consent_requests WHERE handle_hash IN \
    (SELECT handle_hash FROM consent_requests WHERE expires_at < ?1 \
    ORDER BY expires_at LIMIT ?2) RETURNING 1";

/// When a grant ended (revoked, or at the latest at its absolute expiry): the expression of
/// the index `app_grants_by_end` (migration 0015), which `SQLite` uses only for this exact text.
pub const GRANT_END: &str = "coalesce(revoked_at, expires_at)";

/// The grants that ended before `?1`, oldest first, at most `?2` (the same rows for both
/// statements of the batch: a total order, and nothing between them changes `app_grants`).
macro_rules! ended_grants {
    () => {
        "SELECT id FROM app_grants WHERE coalesce(revoked_at, expires_at) < ?1 \
         ORDER BY coalesce(revoked_at, expires_at), id LIMIT ?2"
    };
}

/// First in the batch: the refresh tokens of those grants.
pub const DELETE_ENDED_GRANTS_REFRESH: &str = concat!(
    "DELETE FROM refresh_tokens WHERE grant_id IN (",
    ended_grants!(),
    ")"
);

/// Second: the grants themselves, returning their ids (how many were deleted).
pub const DELETE_ENDED_GRANTS: &str = concat!(
    "DELETE FROM app_grants WHERE id IN (",
    ended_grants!(),
    ") RETURNING id"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements read the index migration 0015 creates: its expression is theirs, word
    /// for word (`SQLite` matches index expressions textually).
    #[test]
    fn grant_statements_use_the_indexed_expression() {
        let migration = include_str!("../../migrations/0015_authz_cleanup.sql");
        assert!(
            migration.contains(&format!("ON app_grants({GRANT_END})")),
            "{migration}"
        );
        for sql in [DELETE_ENDED_GRANTS_REFRESH, DELETE_ENDED_GRANTS] {
            assert_eq!(
                sql.matches(&format!("{GRANT_END} < ?1")).count(),
                1,
                "{sql}"
            );
            assert!(
                sql.contains(&format!("ORDER BY {GRANT_END}, id LIMIT ?2")),
                "{sql}"
            );
        }
        assert!(DELETE_ENDED_GRANTS.ends_with("RETURNING id"));
        for sql in [DELETE_EXPIRED_CODES, DELETE_EXPIRED_CONSENTS] {
            assert!(
                sql.contains("WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2"),
                "{sql}"
            );
            assert!(sql.ends_with("RETURNING 1"), "{sql}");
        }
    }
}
