//! Tokens: the one decision on a presented token, and everything that reads or changes a token's
//! life. It owns introspection (RFC 7662, and RFC 9701 signed answers), the one status every
//! view shows, revocation (RFC 7009 and the one revocation path every other part uses), issuing
//! reference tokens (D1 then KV), the PAT management API (`/api/pats`: create, list, rotate with
//! grace, revoke) and the one rotation path, self-rotation, reuse detection of rotated-away
//! tokens, leak reports from secret scanning, the expiry scan, and the checks of patgate's own
//! JWTs. It may use the shared pieces of `app/` (context,
//! configuration, isolate, client authentication, user identification, rate limits), storage
//! traits and the pure layer; no other capability. The gate, the OAuth server and the token page
//! use it through this face: the decision, issuing, and a user's PATs.

mod active;
mod decision;
mod expiry;
mod grant_usage;
mod grants;
mod introspect;
mod issuance;
mod jwt;
mod leaks;
mod lifecycle;
mod new_pat;
mod one_status;
mod pat_list;
mod pats;
mod reuse;
mod revocation;
mod revoke;
mod rotation;
mod usage;
mod used_from;

// The decision (introspection, the gate, token exchange).
pub use active::{client_holds, same_uid, Active, Decided, Decision, Source};
pub use decision::{decide, may_exist};
pub use one_status::{status, statuses};
pub use reuse::{check_unknown, MAX_MARKED_PER_ROTATION};

// Endpoints: the router's entry points.
pub use introspect::serve as serve_introspection;
pub use leaks::{
    handle as leak_report, HEADERS as LEAK_REPORT_HEADERS, MAX_MATCHES as MAX_LEAK_MATCHES,
    MAX_REPORT_BODY as MAX_LEAK_REPORT_BODY, PATH as LEAK_REPORT_PATH,
};
pub use lifecycle::rotate_self;
pub use pats::{
    create as create_pat, get as get_pat, list as list_pats, revoke as revoke_pat,
    rotate as rotate_pat,
};
pub use revoke::serve as serve_revocation;
pub use usage::pat_usage;

// Counting uses (introspection, the gate), the usage report and where a token was used from
// (the PAT API, the admin inventory, the token page).
pub use grant_usage::{grant_uses, GRANT_USAGE_DAYS};
pub use usage::{days_param, note_use, usage_response};
pub use used_from::{from_views, FromView};

// The Cron Trigger's scan.
pub use expiry::{release_unqueued as release_unqueued_notices, scan as expiry_scan};
pub use usage::prune as prune_usage;

// Issuing: reference tokens for clients, PATs for users.
pub use issuance::{issue, put_grant_retrying, NewToken};
pub use new_pat::{
    issue as issue_pat, issue_with_id as issue_pat_with_id, validate_expiry, validate_name,
    validate_scopes, CreatePat,
};

// A user's PATs (the token page) and the one revocation path.
pub use grants::{end_grant, end_grant_by_id, purge_hashes};
pub use pat_list::{list_for, parse_cursor, PatCursor, PatSort};
pub use pats::{days_left, owned, revoke_for, EXPIRING_SOON_DAYS};
pub use revocation::{revoke_record, revoke_record_because, revoked_event, Purge};
pub use rotation::{rotate_record, Rotated};
