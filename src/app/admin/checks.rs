//! What every admin endpoint shares: ids a URL can address, entity tags and `If-Match`
//! (RFC 9110), and the outcome of a D1 write as an answer.

use crate::authz::records::ClientProfile;
use crate::error::Error;
use crate::http::{Request, Response};
use crate::model::{Client, SecretSet};
use crate::store::Write;
use serde::{Deserialize, Deserializer};

pub(super) fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
}

/// An id must be addressable as one URL path segment afterwards (`/admin/clients/{id}`): `.`
/// and `..` are dot-segments that every URL parser removes (RFC 3986 5.2.4, and WHATWG also for
/// `%2e` forms, which the alphabet already excludes).
pub(super) fn check_id(id: &str) -> Result<(), Error> {
    if id == "." || id == ".." {
        return Err(Error::InvalidRequest(
            "id must not be . or .. (a URL cannot address it)".into(),
        ));
    }
    if valid_name(id, 64) {
        Ok(())
    } else {
        Err(Error::InvalidRequest(
            "id must be 1 to 64 characters of A-Z a-z 0-9 _ - . :".into(),
        ))
    }
}

/// The entity tag of a record: a strong `ETag` (RFC 9110 8.8.3), the first 16 bytes of SHA-256
/// over everything stored for it (its `Debug` form, which lists every field, plus the secret
/// hashes that `Debug` redacts), so any change, a secret rotation included, changes it.
pub(super) fn etag(record: &impl std::fmt::Debug, secret: Option<&SecretSet>) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(format!("{record:?}").as_bytes());
    if let Some(s) = secret {
        h.update(s.current.to_hex().as_bytes());
        if let Some((p, until)) = &s.previous {
            h.update(format!("|{}|{until}", p.to_hex()).as_bytes());
        }
    }
    let digest = h.finalize();
    format!("\"{}\"", crate::encoding::hex(&digest[..16]))
}

/// A client's entity tag (its record and profile, secret hashes included).
pub(super) fn client_etag(c: &Client, p: &ClientProfile) -> String {
    // The uid never changes after creation (and is assigned by the store): not part of the tag.
    let c = Client {
        uid: String::new(),
        ..c.clone()
    };
    etag(&(&c, p), c.secret.as_ref())
}

/// `If-Match` (RFC 9110 13.1.1): absent, `*`, or a list naming the record's current entity tag
/// (strong comparison: a weak `W/"..."` tag never matches). Otherwise 412: another operator
/// changed the record since this one read it. A write without `If-Match` is unconditional.
pub(super) fn check_if_match(req: &Request, current: &str) -> Result<(), Error> {
    let Some(h) = req.get_header("if-match")? else {
        return Ok(());
    };
    let h = h.trim();
    if h == "*" || h.split(',').any(|t| t.trim() == current) {
        Ok(())
    } else {
        Err(Error::PreconditionFailed)
    }
}

pub(super) fn with_etag(r: Response, tag: String) -> Response {
    r.with_header("etag", tag)
}

pub(super) fn written(w: Write) -> Result<(), Error> {
    match w {
        Write::Done => Ok(()),
        Write::NotFound => Err(Error::NotFound),
        Write::Conflict => Err(Error::Conflict("it already exists".into())),
    }
}

/// A PATCH member that may be left out (keep), sent as `null` (clear) or given a value.
#[derive(Default)]
pub(super) enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Change<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(d)?.map_or(Change::Clear, Change::Set))
    }
}

impl<T> Change<T> {
    /// Applies the change to `field`.
    pub(super) fn apply(self, field: &mut Option<T>) {
        match self {
            Change::Keep => {}
            Change::Clear => *field = None,
            Change::Set(v) => *field = Some(v),
        }
    }
}
