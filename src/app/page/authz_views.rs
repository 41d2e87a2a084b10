//! The authorization server's pages, in the token page's layout and style: the consent page,
//! "Authorized applications" (with the uses of each app's tokens) and its revoke confirmation, and the authorization endpoint's
//! error page. Every value is escaped by maud.

use super::dates::{ago, date};
use super::views::{layout, time_exact, Viewer};
use crate::app::server::ConsentView;
use crate::app::tokens::GRANT_USAGE_DAYS;
use crate::authz::records::AppGrant;
use crate::store_usage::GrantUses;
use maud::{html, Markup};

/// The consent page: who asks, where the code goes, for which API and scopes; Approve or Deny.
pub fn consent(viewer: &Viewer<'_>, csrf: &str, v: &ConsentView) -> Markup {
    let body = html! {
        h1 { "Authorize " q.name { (v.client_name) } "?" }
        p.lead { "An application asks to act as you on an API behind patgate." }
        dl {
            dt { "Application" }
            dd { span.name { (v.client_name) } " " span.muted { "(" code { (v.client_id) } ", " (v.identity) ")" } }
            dt { "Sends you back to" }
            dd {
                code { (v.destination) }
                @if v.local {
                    " " span.warn { "an app on this device" }
                }
            }
            dt { "API" }
            dd { code { (v.resource) } " " span.muted { "(" (v.api_id) ")" } }
        }
        @if v.local {
            p.notice { "The authorization goes to an application running on this device ("
                (v.destination) "), not to a web site. Approve only if you just started it." }
        }
        h2 { "It will be able to" }
        ul.consent-scopes {
            @for (scope, description) in &v.scopes {
                li {
                    span.scope { (scope) }
                    @if let Some(d) = description { " " (d) }
                }
            }
        }
        p.muted { "Approving remembers your choice for this application, destination and API until you revoke it under "
            a href="/tokens/apps" { "Authorized applications" } "." }
        form method="post" action="/authorize/consent" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="handle" value=(v.handle);
            div.buttons {
                button.btn.btn-primary type="submit" name="decision" value="approve" { "Approve" }
                button.btn type="submit" name="decision" value="deny" { "Deny" }
            }
        }
    };
    layout("Authorize application", Some(viewer), &body)
}

/// One authorized application, as the list shows it.
pub struct AppRow {
    pub grant: AppGrant,
    pub name: String,
    pub identity: String,
    /// The uses of its access tokens (`None`: not read).
    pub uses: Option<GrantUses>,
}

/// Where an app's token was last used from, in words (the most recent place only).
fn used_from(u: &GrantUses) -> Option<String> {
    let f = u.last_used_from.first()?;
    let mut parts = vec![match f.via.as_str() {
        "gate" => format!("Gate route {}", f.name),
        "introspection" => format!("API {}", f.name),
        other => format!("{other} {}", f.name),
    }];
    parts.extend(
        [&f.colo, &f.country, &f.ip]
            .into_iter()
            .filter_map(Clone::clone),
    );
    Some(parts.join(" · "))
}

/// The "Last used" and "Uses" cells of an app.
fn usage_cells(u: Option<&GrantUses>, now: i64) -> Markup {
    html! {
        td.last-used data-label="Last used" {
            @match u.map(|u| (u, u.last_used_at)) {
                None => span.muted { "Unknown" },
                Some((_, None)) => span.muted { "Never used" },
                Some((u, Some(t))) => {
                    (time_exact(t, &ago(t, now)))
                    @if let Some(from) = used_from(u) { br; span.muted.used-from { "from " (from) } }
                }
            }
        }
        td.uses data-label={ "Uses, last " (GRANT_USAGE_DAYS) " days" } {
            @match u {
                None => span.muted { "—" },
                Some(u) => (u.recent_uses),
            }
        }
    }
}

/// "Authorized applications": the user's live grants, newest first.
pub fn apps(viewer: &Viewer<'_>, rows: &[AppRow], now: i64, counted: bool) -> Markup {
    let body = html! {
        div.bar {
            h1 { "Authorized applications" }
            a href="/tokens" { "Personal access tokens" }
        }
        p.lead { "Applications you allowed to act as you on an API. Revoking one ends its access at once." }
        @if rows.is_empty() {
            p { "You have not authorized any application." }
        } @else {
            @if !counted { p.notice { "How the applications were used cannot be shown right now." } }
            table {
                thead { tr {
                    th scope="col" { "Application" }
                    th scope="col" { "API" }
                    th scope="col" { "Scopes" }
                    th scope="col" { "Approved" }
                    th scope="col" { "Last used" }
                    th scope="col" { "Uses, last " (GRANT_USAGE_DAYS) " days" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td data-label="Application" { span.name { (r.name) } br; span.muted { (r.identity) } }
                            td data-label="API" { code { (r.grant.audience.resource) } }
                            td.scopes data-label="Scopes" { @for s in &r.grant.scopes { span.scope { (s) } " " } }
                            td data-label="Approved" { (time_exact(r.grant.created_at, &date(r.grant.created_at))) }
                            (usage_cells(r.uses.as_ref(), now))
                            td.actions {
                                a.btn-danger href={ "/tokens/apps/" (r.grant.id) "/revoke" } { "Revoke" span.visually-hidden { " " (r.name) } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Authorized applications", Some(viewer), &body)
}

/// Confirmation before revoking an application's access.
pub fn confirm_revoke_app(viewer: &Viewer<'_>, csrf: &str, row: &AppRow) -> Markup {
    let body = html! {
        h1 { "Revoke " q.name { (row.name) } "?" }
        p { "It loses access to " code { (row.grant.audience.resource) } " at once: its access and refresh tokens stop working. To use it again you approve it again." }
        form method="post" action={ "/tokens/apps/" (row.grant.id) "/revoke" } {
            input type="hidden" name="csrf" value=(csrf);
            div.buttons {
                button.btn.btn-danger-solid type="submit" { "Yes, revoke its access" }
                a href="/tokens/apps" { "Cancel" }
            }
        }
    };
    layout("Revoke application", Some(viewer), &body)
}

/// An authorization request that cannot go back to its application (its client or redirect URI
/// is not known good, or the consent expired): a page, never a redirect.
pub fn authorize_error(viewer: Option<&Viewer<'_>>, why: &str) -> Markup {
    let body = html! {
        h1 { "This authorization request cannot be completed" }
        p.error-box { (why) }
        p { "Nothing was shared with the application. Start again from the application." }
    };
    layout("Authorization failed", viewer, &body)
}
