//! The in-memory registry and operator data: API resources and clients, the JWKS fetcher, the
//! admin writes, gate routes, rate limits and expiry notices.

use super::{MemoryBackend, Step};
use crate::authz::records::ClientProfile;
use crate::gate::route::GateRoute;
use crate::model::{ApiResource, Client};
use crate::revocation::feed::Key;
use crate::storage::feed::{FeedStamp, Kind};
use crate::store::{JwksFetcher, Registry, StoreError, Write};

impl MemoryBackend {
    /// The `c` entry of client `id` (its uid), if it exists: what D1's batch appends before the
    /// update or delete.
    fn client_changed(&self, id: &str, feed: &FeedStamp) {
        let uid = self
            .clients
            .borrow()
            .iter()
            .find(|x| x.id == id)
            .map(|x| x.uid.clone());
        if let Some(uid) = uid {
            self.append_feed_entry(Key::Client(uid), Kind::Client, feed);
        }
    }
}

impl Registry for MemoryBackend {
    async fn api_resource(&self, id: &str) -> Result<Option<ApiResource>, StoreError> {
        self.d1()?;
        Ok(self.resources.borrow().iter().find(|r| r.id == id).cloned())
    }
    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        self.d1()?;
        Ok(self.clients.borrow().iter().find(|c| c.id == id).cloned())
    }
}

impl JwksFetcher for MemoryBackend {
    async fn fetch_jwks(&self, _url: &str) -> Result<String, StoreError> {
        self.jwks_fetches.set(self.jwks_fetches.get() + 1);
        self.jwks
            .borrow()
            .clone()
            .ok_or_else(|| StoreError("no JWKS (test)".into()))
    }
}

impl crate::store::AdminStore for MemoryBackend {
    async fn create_client(
        &self,
        c: &Client,
        profile: &ClientProfile,
        _now: i64,
    ) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ClientWrite, || {
            let mut all = self.clients.borrow_mut();
            if all.iter().any(|x| x.id == c.id) {
                return Write::Conflict;
            }
            let mut c = c.clone();
            c.uid = self.next_uid();
            self.profiles
                .borrow_mut()
                .insert(c.id.clone(), profile.clone());
            all.push(c);
            Write::Done
        })
    }
    async fn update_client(
        &self,
        c: &Client,
        profile: &ClientProfile,
        feed: &FeedStamp,
    ) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ClientWrite, || {
            if !self.is_admin_client(&c.id) {
                return Write::NotFound;
            }
            self.client_changed(&c.id, feed);
            let w = replace_where(&mut self.clients.borrow_mut(), c, |x| x.id == c.id);
            if w == Write::Done {
                self.profiles
                    .borrow_mut()
                    .insert(c.id.clone(), profile.clone());
            }
            w
        })
    }
    async fn delete_client(&self, id: &str, feed: &FeedStamp) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ClientWrite, || {
            if !self.is_admin_client(id) {
                return Write::NotFound;
            }
            self.profiles.borrow_mut().remove(id);
            self.client_changed(id, feed);
            remove_where(&mut self.clients.borrow_mut(), |x| x.id == id)
        })
    }
    async fn list_resources(&self) -> Result<Vec<ApiResource>, StoreError> {
        self.d1()?;
        Ok(self.resources.borrow().clone())
    }
    async fn create_resource(&self, r: &ApiResource, _now: i64) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ResourceWrite, || {
            let mut all = self.resources.borrow_mut();
            let taken = all.iter().any(|x| {
                x.id == r.id || x.scopes.iter().any(|s| r.scopes.contains(s)) || same_uri(x, r)
            });
            if taken {
                return Write::Conflict;
            }
            let mut r = r.clone();
            r.uid = self.next_uid();
            all.push(r);
            Write::Done
        })
    }
    async fn update_resource(&self, r: &ApiResource) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ResourceWrite, || {
            let mut all = self.resources.borrow_mut();
            if all.iter().any(|x| {
                x.id != r.id && (x.scopes.iter().any(|s| r.scopes.contains(s)) || same_uri(x, r))
            }) {
                return Write::Conflict;
            }
            replace_where(&mut all, r, |x| x.id == r.id)
        })
    }
    async fn delete_resource(&self, id: &str) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ResourceWrite, || {
            remove_where(&mut self.resources.borrow_mut(), |x| x.id == id)
        })
    }
}

impl crate::store::RouteStore for MemoryBackend {
    async fn list_routes(&self) -> Result<Vec<GateRoute>, StoreError> {
        self.d1()?;
        let mut v = self.routes.borrow().clone();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }
    async fn put_route(&self, r: &GateRoute, _now: i64) -> Result<Write, StoreError> {
        self.d1()?;
        let mut all = self.routes.borrow_mut();
        if all
            .iter()
            .any(|x| x.id != r.id && x.host == r.host && x.path_prefix == r.path_prefix)
        {
            return Ok(Write::Conflict);
        }
        all.retain(|x| x.id != r.id);
        all.push(r.clone());
        Ok(Write::Done)
    }
    async fn delete_route(&self, id: &str) -> Result<Write, StoreError> {
        self.d1()?;
        Ok(remove_where(&mut self.routes.borrow_mut(), |x| x.id == id))
    }
}

fn replace_where<T: Clone>(all: &mut [T], item: &T, same: impl Fn(&T) -> bool) -> Write {
    match all.iter_mut().find(|x| same(x)) {
        Some(x) => {
            *x = item.clone();
            Write::Done
        }
        None => Write::NotFound,
    }
}

fn remove_where<T>(all: &mut Vec<T>, matches: impl Fn(&T) -> bool) -> Write {
    let before = all.len();
    all.retain(|x| !matches(x));
    if all.len() < before {
        Write::Done
    } else {
        Write::NotFound
    }
}

impl crate::store::RateLimiter for MemoryBackend {
    async fn over_limit(&self, limit: crate::store::Limit, key: &str) -> Result<bool, StoreError> {
        if self.break_limiter.get() {
            return Err(StoreError("rate limiter is broken (test)".into()));
        }
        let Some(max) = self.limits.borrow().get(&limit).copied() else {
            return Ok(false);
        };
        let mut counts = self.limit_counts.borrow_mut();
        let n = counts.entry((limit, key.to_owned())).or_insert(0);
        *n += 1;
        Ok(*n > max)
    }
}

impl crate::store::ExpiryNotices for MemoryBackend {
    async fn claim_expiry_notices(
        &self,
        threshold_days: i64,
        from: i64,
        to: i64,
        _now: i64,
        limit: u32,
    ) -> Result<Vec<crate::store::ExpiryNotice>, StoreError> {
        self.d1()?;
        let mut notices = self.notices.borrow_mut();
        let mut out = Vec::new();
        for t in self.tokens.borrow().iter() {
            if out.len() >= limit as usize {
                break;
            }
            let due = t.kind == crate::token::TokenKind::Pat
                && t.revoked_at.is_none()
                && t.expires_at > from
                && t.expires_at <= to;
            let key = (t.id.clone(), threshold_days);
            if due && !notices.contains(&key) {
                notices.push(key);
                out.push(crate::store::ExpiryNotice {
                    token_id: t.id.clone(),
                    subject: t.subject.clone(),
                    expires_at: t.expires_at,
                });
            }
        }
        Ok(out)
    }

    async fn release_expiry_notices(&self, released: &[(String, i64)]) -> Result<(), StoreError> {
        self.d1()?;
        self.write(Step::NoticeRelease, || {
            self.notices.borrow_mut().retain(|n| !released.contains(n));
        })
    }
}

/// D1's unique index on `api_resources.resource_uri` (NULLs never collide).
fn same_uri(a: &ApiResource, b: &ApiResource) -> bool {
    a.resource_uri.is_some() && a.resource_uri == b.resource_uri
}
