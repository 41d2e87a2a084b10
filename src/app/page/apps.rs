//! "Authorized applications" (`GET /tokens/apps`, `GET, POST /tokens/apps/{id}/revoke`): the
//! signed-in user's live grants (each app approved for one API, with its scopes, when approved,
//! and the uses of its access tokens: when and where last used, how often in the last 30 days) and Revoke, which ends the grant with every access and refresh token issued
//! from it at once (`tokens::end_grant`) and forgets the remembered approval, so the next
//! authorization asks again.

use super::authz_views::{self, AppRow};
use super::identity::{checked_form, csrf_for, viewer, Who};
use super::respond::{html, redirect, Fail};
use super::session::Key;
use crate::app::clients::{self, Freshness};
use crate::app::ctx::{Ctx, Outcome};
use crate::app::server::client_identity as identity;
use crate::app::tokens;
use crate::authz::records::{AppGrant, GrantEnd};
use crate::error::Error;
use crate::http::Request;
use crate::store::Backend;
use crate::store_usage::GrantUses;

/// Most applications listed.
const MAX_APPS: u32 = 50;

async fn row<B: Backend>(ctx: &Ctx<'_, B>, g: &AppGrant) -> Result<AppRow, Error> {
    let c = clients::stored(ctx, &g.client_id, Freshness::Cached).await?;
    let (name, ident) = match c.filter(|c| c.client.uid == g.client_uid) {
        Some(c) => (
            c.profile
                .display_name
                .clone()
                .unwrap_or_else(|| g.client_id.clone()),
            identity(&c),
        ),
        None => (g.client_id.clone(), "no longer registered".into()),
    };
    Ok(AppRow {
        grant: g.clone(),
        name,
        identity: ident,
        uses: None,
    })
}

pub(super) async fn list<B: Backend>(
    ctx: &Ctx<'_, B>,
    key: &Key,
    who: &Who,
) -> Result<Outcome, Fail> {
    let grants = ctx
        .backend
        .grants_of(&who.user, ctx.now, MAX_APPS)
        .await
        .map_err(Error::from)?;
    let mut rows = Vec::with_capacity(grants.len());
    for g in &grants {
        rows.push(row(ctx, g).await?);
    }
    // The uses are extra: when they cannot be read the list (and Revoke) still shows, saying so.
    let ids: Vec<String> = grants.iter().map(|g| g.id.clone()).collect();
    let counted = match tokens::grant_uses(ctx, &ids).await {
        Ok(mut uses) => {
            for r in &mut rows {
                r.uses = Some(uses.remove(&r.grant.id).unwrap_or_else(|| GrantUses {
                    grant_id: r.grant.id.clone(),
                    last_used_at: None,
                    use_count: 0,
                    recent_uses: 0,
                    last_used_from: Vec::new(),
                }));
            }
            true
        }
        Err(e) => {
            ctx.isolate
                .warn(format!("authorized applications: uses not read: {e:?}"));
            false
        }
    };
    let csrf = csrf_for(key, who)?;
    let page = authz_views::apps(&viewer(who, &csrf), &rows, ctx.now, counted);
    Ok(html(200, page).into())
}

/// The user's live grant `id` (another user's, or an ended one, is not found).
async fn owned<B: Backend>(ctx: &Ctx<'_, B>, who: &Who, id: &str) -> Result<AppGrant, Fail> {
    match ctx.backend.grant(id).await.map_err(Error::from)? {
        Some(g) if g.subject == who.user && g.is_live(ctx.now) => Ok(g),
        _ => Err(Error::NotFound.into()),
    }
}

pub(super) async fn confirm_revoke<B: Backend>(
    ctx: &Ctx<'_, B>,
    key: &Key,
    who: &Who,
    id: &str,
) -> Result<Outcome, Fail> {
    let g = owned(ctx, who, id).await?;
    let r = row(ctx, &g).await?;
    let csrf = csrf_for(key, who)?;
    Ok(html(
        200,
        authz_views::confirm_revoke_app(&viewer(who, &csrf), &csrf, &r),
    )
    .into())
}

pub(super) async fn revoke<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    who: &Who,
    id: &str,
) -> Result<Outcome, Fail> {
    checked_form(ctx, req, key, &who.binding)?;
    let g = owned(ctx, who, id).await?;
    // The approval first: once revoked, the app must ask again (a failure here changes nothing
    // and the user tries again).
    ctx.backend
        .forget_approvals(&g.subject, &g.client_uid)
        .await
        .map_err(Error::from)?;
    let purge = tokens::end_grant(ctx, &g, GrantEnd::User).await?;
    Ok(Outcome {
        response: redirect("/tokens/apps"),
        deferred: purge.map(|p| p.deferred).unwrap_or_default(),
    })
}
