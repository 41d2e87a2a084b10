//! The token pages: the list, "Generate new token" (the token shown once), revoke and
//! regenerate, each a confirmation (GET) then a change (POST), over the tokens capability's face
//! (the same PAT logic as the JSON API).

use super::dates;
use super::identity::{checked_form, csrf_for, viewer, Who};
use super::replay;
use super::respond::{html, message_of, redirect, rng, ucfirst, Fail};
use super::session::{self, Key};
use super::views::{self, FormErrors, NewForm, NewPage, ScopeGroup};
use crate::app::client_auth;
use crate::app::ctx::{Ctx, Outcome};
use crate::app::tokens::{self, CreatePat};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::{Status, TokenRecord, PAT_CLIENT_ID};
use crate::store::Backend;
use crate::token::{PlainToken, TokenKind};

/// Tokens per page of the list.
const PAGE_SIZE: u32 = 20;

pub(super) async fn list<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    who: &Who,
) -> Result<Outcome, Fail> {
    let q = req.query_params()?;
    let sort = tokens::PatSort::parse(q.get("sort"))?;
    let after = q
        .get("cursor")
        .map(|c| tokens::parse_cursor(c, sort))
        .transpose()?;
    let (recs, next) = tokens::list_for(ctx, &who.user, sort, after.as_ref(), PAGE_SIZE).await?;
    let statuses = tokens::statuses(ctx, &recs).await?;
    let csrf = csrf_for(key, who)?;
    let page = views::list_page(
        &viewer(who, &csrf),
        &recs,
        &statuses,
        ctx.now,
        next.as_deref(),
        after.is_none(),
        sort,
    );
    Ok(html(200, page).into())
}

/// The scopes PATs may carry (the PAT client's allowed scopes), grouped by API resource.
async fn scope_groups<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Vec<ScopeGroup>, Error> {
    // A disabled or missing PAT client allows nothing (the form says so; creation refuses).
    let Some(client) = client_auth::load_client(ctx, PAT_CLIENT_ID)
        .await?
        .filter(|c| c.enabled)
    else {
        return Ok(Vec::new());
    };
    let allowed = &client.allowed_scopes;
    // the isolate's copy of the resource table (REGISTRY_CACHE_SECONDS), not a D1 read per page
    let table = client_auth::resources(ctx).await?;
    let mut resources: Vec<_> = table.values().cloned().collect();
    resources.sort_by(|a, b| a.id.cmp(&b.id));
    let mut groups = Vec::new();
    let mut placed: Vec<&String> = Vec::new();
    for r in &resources {
        let mut scopes: Vec<String> = r
            .scopes
            .iter()
            .filter(|s| allowed.contains(s))
            .cloned()
            .collect();
        scopes.sort();
        placed.extend(r.scopes.iter());
        if !scopes.is_empty() {
            groups.push(ScopeGroup {
                resource: Some(r.id.clone()),
                scopes,
            });
        }
    }
    let mut rest: Vec<String> = allowed
        .iter()
        .filter(|s| !placed.contains(s))
        .cloned()
        .collect();
    rest.sort();
    if !rest.is_empty() {
        groups.push(ScopeGroup {
            resource: None,
            scopes: rest,
        });
    }
    Ok(groups)
}

pub(super) async fn new_form<B: Backend>(
    ctx: &Ctx<'_, B>,
    key: &Key,
    who: &Who,
    f: &NewForm,
    form_id: Option<&str>,
    status: u16,
) -> Result<Outcome, Fail> {
    let groups = scope_groups(ctx).await?;
    let csrf = csrf_for(key, who)?;
    let form_id = if let Some(id) = form_id {
        id.to_owned()
    } else {
        session::random_b64(16).map_err(rng)?
    };
    let max_days = ctx.cfg.pat_max_days;
    let page = NewPage {
        csrf: &csrf,
        form_id: &form_id,
        groups: &groups,
        form: f,
        max_days,
        min_date: dates::date(ctx.now + 86_400),
        max_date: dates::date(ctx.now + max_days * 86_400),
    };
    Ok(html(status, views::new_page(&viewer(who, &csrf), &page)).into())
}

/// The expiry the form asks for, as the API's input, or the message to show next to the field.
fn form_expiry(f: &NewForm, now: i64, max_days: i64) -> Result<CreatePat, String> {
    let mut body = CreatePat {
        name: String::new(),
        scopes: Vec::new(),
        expires_at: None,
        expires_in_days: None,
        allow_self_rotation: false,
        revoke_on_reuse: false,
    };
    let range = || {
        format!(
            "Choose a date from {} to {}.",
            dates::date(now + 86_400),
            dates::date(now + max_days * 86_400)
        )
    };
    if f.expiration == "custom" {
        let ts = dates::parse_date(&f.custom_date)
            .ok_or_else(|| format!("Enter the custom date as YYYY-MM-DD. {}", range()))?;
        body.expires_at = Some(crate::time::rfc3339(ts));
    } else {
        let days = f
            .expiration
            .parse::<i64>()
            .ok()
            .filter(|d| views::PRESETS.contains(d) && *d <= max_days)
            .ok_or("Choose one of the expiration options.")?;
        body.expires_in_days = Some(days);
    }
    tokens::validate_expiry(&body, now, max_days).map_err(|_| range())?;
    Ok(body)
}

/// A one-time form id: 16 random bytes, base64url.
fn valid_form_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) async fn create<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    who: &Who,
) -> Result<Outcome, Fail> {
    let f = checked_form(ctx, req, key, &who.binding)?;
    let form_id = f.one("form_id")?;
    if !valid_form_id(form_id) {
        return Err(Error::InvalidRequest("the form is incomplete: reload it".into()).into());
    }
    let mut nf = NewForm {
        name: f.one("name")?.to_owned(),
        expiration: f.one("expiration")?.to_owned(),
        custom_date: f.one("custom_date")?.to_owned(),
        scopes: f.all("scope"),
        allow_self_rotation: false,
        revoke_on_reuse: false,
        errors: FormErrors::default(),
    };
    match (
        f.checkbox("allow_self_rotation"),
        f.checkbox("revoke_on_reuse"),
    ) {
        (Some(self_rotation), Some(reuse)) => {
            nf.allow_self_rotation = self_rotation;
            nf.revoke_on_reuse = reuse;
        }
        // Only a forged form gets here (a checkbox sends `on` or nothing): both shown unchecked.
        _ => nf.errors.options = Some("Lifecycle options can only be checked or unchecked.".into()),
    }
    // The id this form's token gets: a re-posted form (double submit, reload, back) finds it.
    let id = key.derive_id(&who.user, form_id);
    let sealer = replay::Sealer::new(key, &who.user, form_id, &who.binding);
    match tokens::owned(ctx, &who.user, &id).await {
        Ok(rec) => return already_created(ctx, key, who, &sealer, &rec).await,
        Err(Error::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = tokens::validate_name(&nf.name) {
        nf.errors.name = Some(message_of(&e));
    }
    let expiry = form_expiry(&nf, ctx.now, ctx.cfg.pat_max_days);
    if let Err(m) = &expiry {
        nf.errors.expiration = Some(m.clone());
    }
    if nf.scopes.is_empty() {
        nf.errors.scopes = Some("Select at least one scope.".into());
    } else if let Err(e) = tokens::validate_scopes(ctx, &nf.scopes).await {
        match e {
            Error::InvalidScope(m) => nf.errors.scopes = Some(ucfirst(&m)),
            Error::UnauthorizedClient(_) => {
                nf.errors.form = Some(
                    "Personal access tokens cannot be created at the moment: ask your \
                     administrator."
                        .into(),
                );
            }
            e => return Err(e.into()),
        }
    }
    let Ok(mut body) = expiry else {
        return new_form(ctx, key, who, &nf, Some(form_id), 400).await;
    };
    if nf.errors.any() {
        return new_form(ctx, key, who, &nf, Some(form_id), 400).await;
    }
    body.name.clone_from(&nf.name);
    body.scopes.clone_from(&nf.scopes);
    body.allow_self_rotation = nf.allow_self_rotation;
    body.revoke_on_reuse = nf.revoke_on_reuse;
    // Sealed before the PAT exists: a twin POST that finds the PAT also finds its token.
    let token = PlainToken::generate(TokenKind::Pat).map_err(rng)?;
    sealer.keep(ctx, &token).await;
    match tokens::issue_pat_with_id(ctx, who.user.clone(), body, Some((id.clone(), token))).await {
        Ok((rec, token)) => {
            let csrf = csrf_for(key, who)?;
            let page = views::shown_once(&viewer(who, &csrf), &rec, token.expose_secret(), false);
            Ok(html(200, page).into())
        }
        Err(e @ (Error::InvalidRequest(_) | Error::InvalidScope(_))) => {
            nf.errors.form = Some(message_of(&e));
            new_form(ctx, key, who, &nf, Some(form_id), 400).await
        }
        Err(e) => {
            // A twin POST of this form may have stored the PAT first (the insert of the same id
            // failed): show what it created.
            match tokens::owned(ctx, &who.user, &id).await {
                Ok(rec) => already_created(ctx, key, who, &sealer, &rec).await,
                Err(_) => Err(e.into()),
            }
        }
    }
}

/// A POST of a form whose PAT exists: the same token again for a resubmission from the same
/// session within a minute ([`replay`]), else 409 "already created".
async fn already_created<B: Backend>(
    ctx: &Ctx<'_, B>,
    key: &Key,
    who: &Who,
    sealer: &replay::Sealer,
    rec: &TokenRecord,
) -> Result<Outcome, Fail> {
    let csrf = csrf_for(key, who)?;
    if let Some(token) = sealer.shown_again(ctx, rec).await {
        let page = views::shown_once(&viewer(who, &csrf), rec, token.expose_secret(), false);
        return Ok(html(200, page).into());
    }
    let page = views::message(
        Some(&viewer(who, &csrf)),
        "Token already created",
        "This form was already submitted: its token was created and shown, and cannot be shown \
         again. If you did not copy it, regenerate or revoke it.",
        Some(("/tokens", "Back to your tokens")),
    );
    Ok(html(409, page).into())
}

pub(super) async fn confirm_revoke<B: Backend>(
    ctx: &Ctx<'_, B>,
    key: &Key,
    who: &Who,
    id: &str,
) -> Result<Outcome, Fail> {
    let rec = tokens::owned(ctx, &who.user, id).await?;
    let csrf = csrf_for(key, who)?;
    let v = viewer(who, &csrf);
    if rec.revoked_at.is_some() {
        let page = views::message(
            Some(&v),
            "Already revoked",
            "This token is already revoked.",
            Some(("/tokens", "Back to your tokens")),
        );
        return Ok(html(200, page).into());
    }
    Ok(html(200, views::confirm_revoke(&v, &csrf, &rec)).into())
}

pub(super) async fn revoke<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    who: &Who,
    id: &str,
) -> Result<Outcome, Fail> {
    checked_form(ctx, req, key, &who.binding)?;
    let done = tokens::revoke_for(ctx, &who.user, id).await?;
    let response = redirect("/tokens");
    Ok(Outcome {
        response,
        deferred: done.deferred,
    })
}

fn version_of(key: &Key, rec: &TokenRecord) -> String {
    key.version(&rec.id, &rec.hash.0)
}

fn not_active_page(who: &Who, csrf: &str) -> Response {
    html(
        409,
        views::message(
            Some(&viewer(who, csrf)),
            "Cannot regenerate",
            "Only an active token can be regenerated.",
            Some(("/tokens", "Back to your tokens")),
        ),
    )
}

pub(super) async fn confirm_regenerate<B: Backend>(
    ctx: &Ctx<'_, B>,
    key: &Key,
    who: &Who,
    id: &str,
) -> Result<Outcome, Fail> {
    let rec = tokens::owned(ctx, &who.user, id).await?;
    let csrf = csrf_for(key, who)?;
    if rec.status(ctx.now) != Status::Active {
        return Ok(not_active_page(who, &csrf).into());
    }
    let page = views::confirm_regenerate(&viewer(who, &csrf), &csrf, &version_of(key, &rec), &rec);
    Ok(html(200, page).into())
}

pub(super) async fn regenerate<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    who: &Who,
    id: &str,
) -> Result<Outcome, Fail> {
    let f = checked_form(ctx, req, key, &who.binding)?;
    let rec = tokens::owned(ctx, &who.user, id).await?;
    let csrf = csrf_for(key, who)?;
    if rec.status(ctx.now) != Status::Active {
        return Ok(not_active_page(who, &csrf).into());
    }
    let already = |who: &Who| {
        // The token changed since the form was shown: a reload of the answer, another tab, or
        // a concurrent post of the same form.
        let page = views::message(
            Some(&viewer(who, &csrf)),
            "Already regenerated",
            "This token was regenerated since this form was shown; the new token was shown once \
             and cannot be shown again. Nothing was changed now. If you do not have the new \
             token, regenerate it again.",
            Some(("/tokens", "Back to your tokens")),
        );
        Ok(html(409, page).into())
    };
    if !session::ct_eq(f.one("version")?, &version_of(key, &rec)) {
        return already(who);
    }
    // Exactly the version checked is rotated (D1's update is conditional on its hash).
    let r = match tokens::rotate_record(ctx, rec, 0, "api").await {
        Err(Error::Conflict(_)) => return already(who),
        r => r?,
    };
    let page = views::shown_once(
        &viewer(who, &csrf),
        &r.record,
        r.token.expose_secret(),
        true,
    );
    let response = html(200, page);
    Ok(Outcome {
        response,
        deferred: r.deferred,
    })
}
