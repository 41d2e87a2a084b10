//! `/admin/routes`: the operator's API for gate routes (same authentication, id syntax and error
//! style as `/admin/resources`; the caller in `admin` has authorized the request).
//!
//! Reads and writes go to D1. This isolate forgets its cached route table at once; other
//! isolates within `REGISTRY_CACHE_SECONDS`.

use super::checks::{check_id, written};
use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::gate::route::{GateRoute, RouteInput};
use crate::gate::validate;
use crate::http::{Method, Request, Response};
use crate::store::{Backend, Write};
use serde_json::json;

pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    rest: &[&str],
) -> Result<Response, Error> {
    match (rest, req.method) {
        ([], Method::Get) => {
            let all = ctx.backend.list_routes().await?;
            Ok(Response::json(200, &json!({ "routes": all })))
        }
        ([], _) => Err(Error::MethodNotAllowed("GET")),
        ([id], Method::Get) => {
            let all = ctx.backend.list_routes().await?;
            let r = all.iter().find(|r| r.id == *id).ok_or(Error::NotFound)?;
            Ok(Response::json(200, r))
        }
        ([id], Method::Put) => put(ctx, req, id).await,
        ([id], Method::Delete) => {
            written(ctx.backend.delete_route(id).await?)?;
            ctx.isolate.forget_routes();
            Ok(Response::empty(204))
        }
        ([_], _) => Err(Error::MethodNotAllowed("GET, PUT, DELETE")),
        _ => Err(Error::NotFound),
    }
}

async fn put<B: Backend>(ctx: &Ctx<'_, B>, req: &Request, id: &str) -> Result<Response, Error> {
    check_id(id)?;
    let input: RouteInput = req.json()?;
    let r = validate::validate(id, input)?;
    // Fresh reads: the operator must see the result of a change at once.
    let resource = ctx
        .backend
        .api_resource(&r.resource)
        .await?
        .ok_or_else(|| {
            Error::InvalidRequest(format!("resource: no API resource {}", r.resource))
        })?;
    validate::check_rule_scopes(&r, &resource.scopes)?;
    let all = ctx.backend.list_routes().await?;
    if all.iter().any(|x| same_place(x, &r) && x.id != r.id) {
        return Err(conflict());
    }
    let existed = all.iter().any(|x| x.id == r.id);
    match ctx.backend.put_route(&r, ctx.now).await? {
        Write::Conflict => return Err(conflict()),
        w => written(w)?,
    }
    ctx.isolate.forget_routes();
    Ok(if existed {
        Response::json(200, &r)
    } else {
        Response::json(201, &r).with_header("location", format!("/admin/routes/{}", r.id))
    })
}

fn same_place(a: &GateRoute, b: &GateRoute) -> bool {
    a.host == b.host && a.path_prefix == b.path_prefix
}

fn conflict() -> Error {
    Error::Conflict("another route has the same host and path_prefix".into())
}
