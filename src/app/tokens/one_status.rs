//! The one status of a token record, as the management API, the token page and every other view
//! report it: what the record says, then what the decision checks besides for every resource.

use super::active::{client_holds, visible_in};
use crate::app::client_auth;
use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::model::{Status, TokenRecord};
use crate::store::Backend;

/// The one status of a token record, as the management API, the token page and every other view
/// report it. What the record says (revoked, expired) first; then what [`super::decide`] checks besides
/// for every resource: the client ([`client_holds`]), and an enabled API resource that sees at
/// least one of its scopes ([`super::visible_scopes`]; disabled resources cannot introspect, and the
/// gate refuses their routes). Failing either is [`Status::Inactive`]: a token shown `active`
/// is one that introspection answers active for some API resource, from the same isolate caches.
/// Costs no D1 read while the isolate's registry copies are fresh.
pub async fn status<B: Backend>(ctx: &Ctx<'_, B>, rec: &TokenRecord) -> Result<Status, Error> {
    let recorded = rec.status(ctx.now);
    if recorded != Status::Active {
        return Ok(recorded);
    }
    if !client_holds(ctx, &rec.client_id, rec.client_uid.as_deref()).await? {
        return Ok(Status::Inactive);
    }
    let resources = client_auth::resources(ctx).await?;
    let owners = rec.scope_owners.as_deref();
    let seen = resources
        .values()
        .any(|r| r.enabled && !visible_in(&rec.scopes, owners, r).is_empty());
    Ok(if seen {
        Status::Active
    } else {
        Status::Inactive
    })
}

/// [`status`] of each record, in order.
pub async fn statuses<B: Backend>(
    ctx: &Ctx<'_, B>,
    recs: &[TokenRecord],
) -> Result<Vec<Status>, Error> {
    let mut out = Vec::with_capacity(recs.len());
    for rec in recs {
        out.push(status(ctx, rec).await?);
    }
    Ok(out)
}
