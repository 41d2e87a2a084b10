//! The uses of an app's authorization grants, for "Authorized applications" and
//! `GET /admin/grants`: each grant's access tokens are counted like PATs (the same
//! [`super::note_use`] on introspection and the gate, the same coalesced Durable Object call per
//! token), and a grant shows their sum, read from D1 when a page or the admin API asks (one
//! storage call for all the listed grants, none on the tokens' path).

use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::store::Backend;
use crate::store_usage::GrantUses;
use crate::usage::day_of;
use std::collections::BTreeMap;

/// The days of uses shown per grant (today included).
pub const GRANT_USAGE_DAYS: i64 = 30;

/// The uses of the grants `ids`, by grant id (a grant none of whose tokens exist is absent).
pub async fn grant_uses<B: Backend>(
    ctx: &Ctx<'_, B>,
    ids: &[String],
) -> Result<BTreeMap<String, GrantUses>, Error> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let from_day = day_of(ctx.now) - GRANT_USAGE_DAYS + 1;
    Ok(ctx
        .backend
        .grant_uses(ids, from_day)
        .await?
        .into_iter()
        .map(|u| (u.grant_id.clone(), u))
        .collect())
}
