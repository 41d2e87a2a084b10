//! Registered clients are public unless an administrator says otherwise:
//! `POST /admin/clients/{id}/confidential` gives a public client a secret, shown once and stored
//! only as its hash. It works for every client an administrator can name, including
//! self-registered ones (RFC 7591 `pgd_` ids, metadata document URLs), which the rest of the
//! admin API neither lists nor changes (their metadata belongs to their registration or their
//! document; they can number in the tens of thousands). Only the secret columns change, in one
//! conditional statement on the client's uid and its current secret: never the source, the
//! profile or the uid, so grants and tokens stay bound to the same client.
//!
//! From then on the token endpoint refuses the client without its secret (`none` is
//! `invalid_client`): the code and refresh grants read the client from D1 on every request, so
//! at once; token exchange and revocation, which use the isolate's copy, within
//! `REGISTRY_CACHE_SECONDS`. Its live access tokens work until they expire; a refresh needs the
//! secret. `rotate-secret` then rotates it ([`rotate`]). There is no way back to public: delete
//! the client (administrator-made) or let the registration expire.

use super::checks::{check_if_match, client_etag, with_etag};
use super::registry::new_secret;
use crate::app::ctx::Ctx;
use crate::authz::records::ClientSource;
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::{Client, SecretSet, PAT_CLIENT_ID};
use crate::secret::SecretHash;
use crate::store::{Backend, Write};
use serde::Deserialize;
use serde_json::json;

/// The request's body: empty or `{}` (nothing to choose; patgate accepts `client_secret_basic`
/// and `client_secret_post` from every confidential client).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

fn source_name(s: ClientSource) -> &'static str {
    match s {
        ClientSource::Admin => "admin",
        ClientSource::MetadataDocument => "metadata",
        ClientSource::Dynamic => "dynamic",
    }
}

/// The client id a path segment names: percent-decoded, so that a metadata document client
/// (whose id is an https URL) can be named as `https%3A%2F%2Fapp.example%2Fclient.json`. A `+`
/// stays a `+` (a path is not a form).
///
/// # Errors
/// `invalid_request` for a malformed escape or one that is not UTF-8.
pub(super) fn client_id_segment(segment: &str) -> Result<String, Error> {
    if !segment.contains('%') {
        return Ok(segment.to_owned());
    }
    crate::http::percent_decode(segment.replace('+', "%2B").as_bytes())
        .map_err(|e| Error::InvalidRequest(format!("client id in the path: {e}")))
}

/// `POST /admin/clients/{id}/confidential` (conditional with `If-Match`).
pub async fn make_confidential<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    let id = &client_id_segment(id)?;
    if !req.body.is_empty() {
        let _: NoOptions = req.json()?;
    }
    if id == PAT_CLIENT_ID {
        return Err(Error::Conflict(
            "the PAT client stays public: self-registered clients get its scopes".into(),
        ));
    }
    let (c, p) = ctx
        .backend
        .client_profile(id)
        .await?
        .ok_or(Error::NotFound)?;
    check_if_match(req, &client_etag(&c, &p))?;
    if c.secret.is_some() {
        return Err(Error::Conflict(
            "the client is already confidential: rotate-secret gives it a new secret".into(),
        ));
    }
    let fresh = new_secret()?;
    let set = SecretSet {
        current: fresh.hash(),
        previous: None,
    };
    store(ctx, &c, None, &set).await?;
    let c = Client {
        secret: Some(set),
        ..c
    };
    Ok(with_etag(
        Response::json(
            200,
            &json!({
                "client_id": c.id,
                "source": source_name(p.source),
                "token_endpoint_auth_method": "client_secret_basic",
                "client_secret": fresh.expose_secret(),
            }),
        ),
        client_etag(&c, &p),
    ))
}

/// A self-registered client's new secrets `next` (`rotate-secret`, after the caller checked
/// `If-Match`): only if its current secret is still `current`.
pub(super) async fn rotate<B: Backend>(
    ctx: &Ctx<'_, B>,
    c: &Client,
    current: &SecretHash,
    next: &SecretSet,
) -> Result<(), Error> {
    store(ctx, c, Some(current), next).await
}

async fn store<B: Backend>(
    ctx: &Ctx<'_, B>,
    c: &Client,
    expected: Option<&SecretHash>,
    set: &SecretSet,
) -> Result<(), Error> {
    match ctx
        .backend
        .set_client_secret(&c.id, &c.uid, expected, set)
        .await?
    {
        Write::Done => {}
        Write::NotFound | Write::Conflict => {
            return Err(Error::Conflict(
                "the client changed meanwhile (deleted, or its secret set by another request): \
                 read it again"
                    .into(),
            ))
        }
    }
    ctx.isolate.forget_client(&c.id);
    Ok(())
}
