//! The page's HTML, as maud templates: compile-time checked Rust, every interpolated value
//! escaped (`PreEscaped` is used only for the constant style sheet and script).

use super::assets::{SCRIPT, STYLE};
use super::dates::{ago, date, exact, expiry_text};
use super::list_sort;
use crate::app::tokens::PatSort;
use crate::model::{Status, TokenRecord};
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Who is looking, and how they sign out.
pub struct Viewer<'a> {
    pub user: &'a str,
    pub sign_out: SignOut<'a>,
}

pub enum SignOut<'a> {
    /// Cloudflare Access: its logout URL on this host.
    Access,
    /// Dev sign-in: a POST form (with its CSRF token).
    Dev { csrf: &'a str },
}

pub const ACCESS_LOGOUT: &str = "/cdn-cgi/access/logout";

pub(super) fn layout(title: &str, viewer: Option<&Viewer<'_>>, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · patgate" }
                link rel="icon" href="/favicon.ico" type="image/svg+xml";
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.brand href="/tokens" { "patgate" }
                    @if let Some(v) = viewer {
                        div.who {
                            span { "Signed in as " strong #signed-in-user { (v.user) } }
                            @match v.sign_out {
                                SignOut::Access => {
                                    a href=(ACCESS_LOGOUT) { "Sign out" }
                                }
                                SignOut::Dev { csrf } => {
                                    form method="post" action="/tokens/sign-out" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button.btn-link type="submit" { "Sign out" }
                                    }
                                }
                            }
                        }
                    }
                }
                main { (body) }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

pub(super) fn time_exact(ts: i64, text: &str) -> Markup {
    html! { time datetime=(crate::time::rfc3339(ts)) title=(exact(ts)) { (text) } }
}

pub(super) fn status_badge(s: Status) -> Markup {
    let (class, text) = match s {
        Status::Active => ("badge s-active", "Active"),
        Status::Expired => ("badge s-expired", "Expired"),
        Status::Revoked => ("badge s-revoked", "Revoked"),
        Status::Inactive => {
            return html! {
                span.badge.s-inactive title="Its client or its APIs were disabled or removed: no API accepts it" { "Inactive" }
            }
        }
    };
    html! { span class=(class) { (text) } }
}

/// The lifecycle options a PAT was created with, as short phrases (empty: neither).
pub fn options_of(r: &TokenRecord) -> Vec<&'static str> {
    let mut v = Vec::new();
    if r.allow_self_rotation {
        v.push("self-rotation allowed");
    }
    if r.revoke_on_reuse {
        v.push("revoke on reuse");
    }
    v
}

fn scopes(list: &[String]) -> Markup {
    html! { @for s in list { span.scope { (s) } " " } }
}

/// The list of the viewer's tokens.
/// `statuses`: each record's one status (`decision::status`), in order.
pub fn list_page(
    viewer: &Viewer<'_>,
    recs: &[TokenRecord],
    statuses: &[Status],
    now: i64,
    next: Option<&str>,
    first_page: bool,
    sort: PatSort,
) -> Markup {
    let body = html! {
        div.bar {
            h1 { "Personal access tokens" }
            a.btn.btn-primary href="/tokens/new" { "Generate new token" }
        }
        p { a href="/tokens/apps" { "Authorized applications" } }
        p.lead { "Tokens you have generated to use with the APIs behind patgate. Treat them like passwords." }
        @if !(recs.is_empty() && first_page) { (list_sort::nav(sort)) }
        @if recs.is_empty() {
            p { @if first_page { "You have no personal access tokens yet." } @else { "No more tokens." } }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "Scopes" }
                    th scope="col" { "Expires" }
                    th scope="col" aria-sort=[list_sort::last_used_aria_sort(sort)] { "Last used" }
                    th scope="col" { "Status" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for (r, s) in recs.iter().zip(statuses) { (row(r, *s, now)) }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if !first_page { a href=(list_sort::list_url(sort, None)) { (list_sort::first_page_label(sort)) } }
            @if let Some(c) = next { a href=(list_sort::list_url(sort, Some(c))) rel="next" { (list_sort::next_page_label(sort)) } }
        }
    };
    layout("Personal access tokens", Some(viewer), &body)
}

/// Where and when the last reuse of a rotated-away token came from (hover text).
fn reuse_title(r: &crate::model::ReuseInfo) -> String {
    let o = &r.last_origin;
    format!(
        "{} time(s); last {} from {} ({}, {})",
        r.count,
        date(r.last_at),
        o.ip.as_deref().unwrap_or("unknown IP"),
        o.colo.as_deref().unwrap_or("-"),
        o.country.as_deref().unwrap_or("-"),
    )
}

fn row(r: &TokenRecord, status: Status, now: i64) -> Markup {
    // Every report's URL (rows revoked before they were kept: the first one only).
    let urls: Vec<&str> = if r.leak_urls.is_empty() {
        r.revoked_url.as_deref().into_iter().collect()
    } else {
        r.leak_urls.iter().map(String::as_str).collect()
    };
    let (exp_text, warn) = expiry_text(r.expires_at, now);
    let name = r.name.as_deref().unwrap_or("");
    html! {
        tr data-token-id=(r.id) {
            // The creation date and the options under the name: fewer, narrower columns, so
            // that the name keeps its room at every width.
            td.token data-label="Name" {
                span.name { (name) }
                br; span.muted.created { "Created " (time_exact(r.created_at, &date(r.created_at))) }
                @for o in options_of(r) { br; span.muted.option { (o) } }
                br; a.usage-link href={ "/tokens/" (r.id) "/usage" } aria-label={ "Usage of " (name) } { "Usage" }
            }
            td.scopes data-label="Scopes" { (scopes(&r.scopes)) }
            td data-label="Expires" {
                @if status == Status::Revoked {
                    span.muted { "Revoked " (time_exact(r.revoked_at.unwrap_or(r.created_at), &date(r.revoked_at.unwrap_or(r.created_at)))) }
                    @if r.revoked_reason.as_deref() == Some("leaked") {
                        br; span.warn.leaked { "⚠ Leaked: found in public" }
                        // Stored only if it is an http(s) URL (secret_scanning::keepable_url).
                        @for (i, url) in urls.iter().enumerate() {
                            " " a href=(url) rel="noopener noreferrer nofollow" {
                                @if i == 0 { "(where)" } @else { "(" (i + 1) ")" }
                            }
                        }
                    }
                    @if r.revoked_reason.as_deref() == Some("reuse") {
                        br; span.warn.leaked { "⚠ Revoked: an old token was reused" }
                    }
                    @if r.revoked_reason.as_deref() == Some("admin") {
                        br; span.warn.leaked { "Revoked by an administrator" }
                        @if let Some(m) = &r.revoked_message { br; span.muted.admin-reason { (m) } }
                    }
                } @else if warn {
                    span.warn.expiry { "⚠ " (exp_text) }
                    br; span.muted { (time_exact(r.expires_at, &date(r.expires_at))) }
                } @else {
                    span.expiry { (exp_text) }
                    br; span.muted { (time_exact(r.expires_at, &date(r.expires_at))) }
                }
            }
            td.last-used data-label="Last used" {
                @if let (Status::Active, Some(reuse)) = (status, &r.reuse) {
                    span.warn.leaked title=(reuse_title(reuse)) {
                        "⚠ An old token was used after rotation"
                    }
                    br;
                }
                @match r.last_used_at {
                    None => { span.muted { "Never used" } }
                    Some(t) => {
                        time datetime=(crate::time::rfc3339(t)) title=(exact(t)) data-ago { (ago(t, now)) }
                                br; span.muted.use-hint { (crate::usage::summary::hint(Some(t), now)) }
                    }
                }
            }
            td data-label="Status" { (status_badge(status)) }
            td.actions data-label="Actions" {
                @if status == Status::Active {
                    a href={ "/tokens/" (r.id) "/regenerate" } aria-label={ "Regenerate " (name) } { "Regenerate" }
                    a.btn-danger href={ "/tokens/" (r.id) "/revoke" } aria-label={ "Revoke " (name) } { "Revoke" }
                } @else if status == Status::Inactive {
                    a.btn-danger href={ "/tokens/" (r.id) "/revoke" } aria-label={ "Revoke " (name) } { "Revoke" }
                } @else {
                    span.muted { "None" }
                }
            }
        }
    }
}

/// The scopes a PAT may carry, grouped by API resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeGroup {
    /// The API resource's id; `None` for allowed scopes that belong to no resource.
    pub resource: Option<String>,
    pub scopes: Vec<String>,
}

/// The "Generate new token" form's values and errors (kept on a failed submission).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewForm {
    pub name: String,
    /// `"7"`, `"30"`, `"60"`, `"90"` or `"custom"`.
    pub expiration: String,
    /// `YYYY-MM-DD` when `expiration` is `"custom"`.
    pub custom_date: String,
    pub scopes: Vec<String>,
    /// The "Allow self-rotation" checkbox (`allow_self_rotation`; off by default).
    pub allow_self_rotation: bool,
    /// The "Revoke on reuse" checkbox (`revoke_on_reuse`; off by default).
    pub revoke_on_reuse: bool,
    pub errors: FormErrors,
}

impl Default for NewForm {
    fn default() -> Self {
        NewForm {
            name: String::new(),
            expiration: "30".into(),
            custom_date: String::new(),
            scopes: Vec::new(),
            allow_self_rotation: false,
            revoke_on_reuse: false,
            errors: FormErrors::default(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormErrors {
    pub name: Option<String>,
    pub expiration: Option<String>,
    pub scopes: Option<String>,
    /// The lifecycle option checkboxes.
    pub options: Option<String>,
    /// Not about one field.
    pub form: Option<String>,
}

impl FormErrors {
    pub fn any(&self) -> bool {
        self.name.is_some()
            || self.expiration.is_some()
            || self.scopes.is_some()
            || self.options.is_some()
            || self.form.is_some()
    }
}

/// Expiration presets, in days.
pub const PRESETS: [i64; 4] = [7, 30, 60, 90];

pub struct NewPage<'a> {
    pub csrf: &'a str,
    pub form_id: &'a str,
    pub groups: &'a [ScopeGroup],
    pub form: &'a NewForm,
    pub max_days: i64,
    /// Bounds of the custom date (`YYYY-MM-DD`).
    pub min_date: String,
    pub max_date: String,
}

fn field_error(id: &str, e: Option<&String>) -> Markup {
    html! { @if let Some(e) = e { p.err id=(id) { "Error: " (e) } } }
}

/// The "Generate new token" form.
pub fn new_page(viewer: &Viewer<'_>, p: &NewPage<'_>) -> Markup {
    let f = p.form;
    let e = &f.errors;
    let body = html! {
        h1 { "New personal access token" }
        p.lead { "Give the token a name, an expiry and only the scopes it needs." }
        @if e.any() {
            div.error-box role="alert" { "The token was not created. Please correct the errors below." }
        }
        @if let Some(m) = &e.form { p.err { (m) } }
        form method="post" action="/tokens/new" novalidate {
            input type="hidden" name="csrf" value=(p.csrf);
            input type="hidden" name="form_id" value=(p.form_id);
            div.field {
                label for="name" { "Name" }
                input #name type="text" name="name" value=(f.name) maxlength="100" required
                    autocomplete="off"
                    aria-describedby=(if e.name.is_some() { "name-hint name-error" } else { "name-hint" })
                    aria-invalid=[e.name.as_ref().map(|_| "true")];
                p.hint #name-hint { "What is this token for? For example: CI deploy." }
                (field_error("name-error", e.name.as_ref()))
            }
            div.field {
                label for="expiration" { "Expiration" }
                select #expiration name="expiration"
                    aria-describedby=(if e.expiration.is_some() { "expiration-hint expiration-error" } else { "expiration-hint" })
                    aria-invalid=[e.expiration.as_ref().map(|_| "true")] {
                    @for d in PRESETS.iter().filter(|d| **d <= p.max_days) {
                        @let v = d.to_string();
                        option value=(v) selected[f.expiration == v] { (d) " days" }
                    }
                    option value="custom" selected[f.expiration == "custom"] { "Custom date" }
                }
                p.hint #expiration-hint { "At most " (p.max_days) " days." }
                (field_error("expiration-error", e.expiration.as_ref()))
            }
            div.field #custom-date-field {
                label for="custom_date" { "Custom expiration date (UTC, used when Expiration is Custom date)" }
                input #custom_date type="date" name="custom_date" value=(f.custom_date)
                    min=(p.min_date) max=(p.max_date);
            }
            fieldset aria-describedby=(if e.scopes.is_some() { "scopes-hint scopes-error" } else { "scopes-hint" }) {
                legend { "Scopes" }
                p.hint #scopes-hint { "Choose at least one. A token can only be used with the APIs whose scopes it carries." }
                (field_error("scopes-error", e.scopes.as_ref()))
                @if p.groups.is_empty() {
                    p { "No scopes are available for personal access tokens. Ask your administrator." }
                }
                @for g in p.groups {
                    fieldset {
                        legend {
                            @match &g.resource {
                                Some(r) => { "API resource " code { (r) } }
                                None => { "Other scopes" }
                            }
                        }
                        @for s in &g.scopes {
                            @let id = format!("scope-{s}");
                            div.check {
                                input type="checkbox" id=(id) name="scope" value=(s) checked[f.scopes.contains(s)];
                                label for=(id) { code { (s) } }
                            }
                        }
                    }
                }
            }
            fieldset #options aria-describedby=[e.options.as_ref().map(|_| "options-error")] {
                legend { "Lifecycle options" }
                (field_error("options-error", e.options.as_ref()))
                div.check {
                    input #allow_self_rotation type="checkbox" name="allow_self_rotation"
                        checked[f.allow_self_rotation] aria-describedby="allow_self_rotation-hint";
                    label for="allow_self_rotation" { "Allow this token to rotate itself" }
                }
                p.hint #allow_self_rotation-hint {
                    "For automation: the token can get its own successor from " code { "POST /api/pats/self/rotate" } ". Anyone holding it can do so."
                }
                div.check {
                    input #revoke_on_reuse type="checkbox" name="revoke_on_reuse"
                        checked[f.revoke_on_reuse] aria-describedby="revoke_on_reuse-hint";
                    label for="revoke_on_reuse" { "Revoke this token if a replaced token is used again" }
                }
                p.hint #revoke_on_reuse-hint {
                    "After Regenerate or a rotation, a use of the old token (likely a stolen copy) revokes this token. Best when only one place holds it."
                }
            }
            div.buttons {
                button.btn.btn-primary type="submit" { "Generate token" }
                a href="/tokens" { "Cancel" }
            }
        }
    };
    layout("New personal access token", Some(viewer), &body)
}

/// The token, shown once (after creation or regeneration).
pub fn shown_once(
    viewer: &Viewer<'_>,
    rec: &TokenRecord,
    token: &str,
    regenerated: bool,
) -> Markup {
    let body = html! {
        h1 { @if regenerated { "Token regenerated" } @else { "Your new personal access token" } }
        div.notice role="status" {
            strong { "Copy your personal access token now. " }
            "It will not be shown again: after you leave or reload this page, no one can see it."
            @if regenerated { " The previous token for this entry has stopped working." }
        }
        div.token-box {
            label.visually-hidden for="new-token" { "Token" }
            input #new-token type="text" readonly value=(token) spellcheck="false" autocomplete="off";
            button.btn type="button" data-copy="new-token" hidden { "Copy" }
        }
        dl {
            dt { "Name" } dd.name { (rec.name.as_deref().unwrap_or("")) }
            dt { "Scopes" } dd { (scopes(&rec.scopes)) }
            dt { "Expires" } dd { (time_exact(rec.expires_at, &exact(rec.expires_at))) }
            dt { "Options" } dd.options {
                @let opts = options_of(rec);
                @if opts.is_empty() { "none" } @else { (opts.join(", ")) }
            }
        }
        p { a href="/tokens" { "Back to your tokens" } }
    };
    layout("Copy your token", Some(viewer), &body)
}

/// Confirmation before revoking.
pub fn confirm_revoke(viewer: &Viewer<'_>, csrf: &str, rec: &TokenRecord) -> Markup {
    let name = rec.name.as_deref().unwrap_or("");
    let body = html! {
        h1 { "Revoke token " q.name { (name) } "?" }
        p { "Anything using this token stops working at once. This cannot be undone." }
        form method="post" action={ "/tokens/" (rec.id) "/revoke" } {
            input type="hidden" name="csrf" value=(csrf);
            div.buttons {
                button.btn.btn-danger-solid type="submit" { "Yes, revoke this token" }
                a href="/tokens" { "Cancel" }
            }
        }
    };
    layout("Revoke token", Some(viewer), &body)
}

/// Confirmation before regenerating.
pub fn confirm_regenerate(
    viewer: &Viewer<'_>,
    csrf: &str,
    version: &str,
    rec: &TokenRecord,
) -> Markup {
    let name = rec.name.as_deref().unwrap_or("");
    let body = html! {
        h1 { "Regenerate token " q.name { (name) } "?" }
        p { "You get a new token with the same name, scopes and expiry (" (time_exact(rec.expires_at, &date(rec.expires_at))) "). "
            "The current token stops working at once: update anything that uses it." }
        form method="post" action={ "/tokens/" (rec.id) "/regenerate" } {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="version" value=(version);
            div.buttons {
                button.btn.btn-primary type="submit" { "Regenerate token" }
                a href="/tokens" { "Cancel" }
            }
        }
    };
    layout("Regenerate token", Some(viewer), &body)
}

/// The local dev sign-in form (`DEV_SIGN_IN`); `action`: where it posts (the sign-in path, with
/// the page to return to, if any).
pub fn sign_in(csrf: &str, user: &str, error: Option<&str>, action: &str) -> Markup {
    let body = html! {
        h1 { "Sign in (local development)" }
        p.notice { "This form exists only because " code { "DEV_SIGN_IN" } " is on. In production the page is behind Cloudflare Access and this form is off." }
        form method="post" action=(action) novalidate {
            input type="hidden" name="csrf" value=(csrf);
            div.field {
                label for="user" { "User id" }
                input #user type="text" name="user" value=(user) required autocomplete="username"
                    aria-describedby=(if error.is_some() { "user-hint user-error" } else { "user-hint" })
                    aria-invalid=[error.map(|_| "true")];
                p.hint #user-hint { "Any id: letters, digits and . _ @ - (for example alice)." }
                @if let Some(e) = error { p.err #user-error { "Error: " (e) } }
            }
            button.btn.btn-primary type="submit" { "Sign in" }
        }
    };
    layout("Sign in", None, &body)
}

/// A page with a heading, a sentence and a link (errors, notices).
pub fn message(
    viewer: Option<&Viewer<'_>>,
    title: &str,
    text: &str,
    link: Option<(&str, &str)>,
) -> Markup {
    let body = html! {
        h1 { (title) }
        p { (text) }
        @if let Some((href, label)) = link { p { a href=(href) { (label) } } }
    };
    layout(title, viewer, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaked_token_says_so_with_its_source_escaped() {
        let now = 1_795_000_000;
        let mut r = TokenRecord {
            name: Some("ci".into()),
            created_at: now - 100,
            revoked_at: Some(now - 10),
            ..crate::testing::pat_record("p1", "alice", crate::token::TokenHash([0; 32]), now)
        };
        assert!(!row(&r, r.status(now), now).into_string().contains("Leaked"));
        r.revoked_reason = Some("leaked".into());
        r.revoked_url = Some("https://github.com/o/r/blob/x/f?a=1&b=\"<x>".into());
        let html = row(&r, r.status(now), now).into_string();
        assert!(html.contains("Leaked: found in public"), "{html}");
        assert!(
            html.contains(r#"href="https://github.com/o/r/blob/x/f?a=1&amp;b=&quot;&lt;x&gt;""#),
            "{html}"
        );
    }

    #[test]
    fn a_reused_token_says_so() {
        let now = 1_795_000_000;
        let mut r = TokenRecord {
            name: Some("ci".into()),
            created_at: now - 100,
            generation: 1,
            ..crate::testing::pat_record("p1", "alice", crate::token::TokenHash([0; 32]), now)
        };
        assert!(!row(&r, r.status(now), now).into_string().contains("reused"));
        assert!(!row(&r, r.status(now), now)
            .into_string()
            .contains("after rotation"));
        r.reuse = Some(crate::model::ReuseInfo {
            count: 2,
            first_at: now - 50,
            last_at: now - 5,
            last_origin: crate::origin::ClientOrigin::new(Some("203.0.113.7"), Some("DFW"), None),
            last_rotated_at: Some(now - 60),
        });
        let html = row(&r, r.status(now), now).into_string();
        assert!(
            html.contains("An old token was used after rotation"),
            "{html}"
        );
        assert!(html.contains("from 203.0.113.7 (DFW, -)"), "{html}");
        r.revoked_at = Some(now - 5);
        r.revoked_reason = Some("reuse".into());
        let html = row(&r, r.status(now), now).into_string();
        assert!(html.contains("Revoked: an old token was reused"), "{html}");
        assert!(!html.contains("after rotation"), "{html}");
    }
}
