//! In-memory implementations of the storage traits for host tests, with failure injection and
//! operation counters (the same counters the runtime layer exposes in dev builds).

use crate::gate::route::GateRoute;
use crate::model::{ApiResource, Client, Grant, TokenRecord};
use crate::store::{
    Cursor, GrantCache, JwksFetcher, Registry, StoreError, TokenStore, UsageRecorder, Write,
};
use crate::token::TokenHash;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub kv_get: u32,
    pub kv_put: u32,
    pub kv_delete: u32,
    pub d1_query: u32,
    pub do_call: u32,
}

#[derive(Default)]
pub struct MemoryBackend {
    pub kv: RefCell<HashMap<TokenHash, Grant>>,
    pub tokens: RefCell<Vec<TokenRecord>>,
    pub resources: RefCell<Vec<ApiResource>>,
    pub clients: RefCell<Vec<Client>>,
    pub uses: RefCell<Vec<(String, i64, u32)>>,
    pub jwks: RefCell<Option<String>>,
    pub denied: RefCell<Vec<(String, i64)>>,
    pub routes: RefCell<Vec<GateRoute>>,
    pub counts: Cell<Counts>,
    /// Make every KV call fail.
    pub break_kv: Cell<bool>,
    /// Make every D1 call fail.
    pub break_d1: Cell<bool>,
}

impl MemoryBackend {
    fn bump(&self, f: impl FnOnce(&mut Counts)) {
        let mut c = self.counts.get();
        f(&mut c);
        self.counts.set(c);
    }

    fn kv(&self, f: impl FnOnce(&mut Counts)) -> Result<(), StoreError> {
        self.bump(f);
        if self.break_kv.get() {
            return Err(StoreError("KV is broken (test)".into()));
        }
        Ok(())
    }

    fn d1(&self) -> Result<(), StoreError> {
        self.bump(|c| c.d1_query += 1);
        if self.break_d1.get() {
            return Err(StoreError("D1 is broken (test)".into()));
        }
        Ok(())
    }

    pub fn take_counts(&self) -> Counts {
        self.counts.replace(Counts::default())
    }
}

impl GrantCache for MemoryBackend {
    async fn get_grant(&self, hash: &TokenHash) -> Result<Option<Grant>, StoreError> {
        self.kv(|c| c.kv_get += 1)?;
        Ok(self.kv.borrow().get(hash).cloned())
    }
    async fn put_grant(
        &self,
        hash: &TokenHash,
        grant: &Grant,
        _until: i64,
    ) -> Result<(), StoreError> {
        self.kv(|c| c.kv_put += 1)?;
        self.kv.borrow_mut().insert(*hash, grant.clone());
        Ok(())
    }
    async fn delete_grant(&self, hash: &TokenHash) -> Result<(), StoreError> {
        self.kv(|c| c.kv_delete += 1)?;
        self.kv.borrow_mut().remove(hash);
        Ok(())
    }
    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.kv(|c| c.kv_get += 1)?;
        Ok(self.denied.borrow().iter().any(|(j, _)| j == jti))
    }
    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StoreError> {
        self.kv(|c| c.kv_put += 1)?;
        self.denied.borrow_mut().push((jti.to_owned(), exp));
        Ok(())
    }
}

impl TokenStore for MemoryBackend {
    async fn insert_token(&self, rec: &TokenRecord) -> Result<(), StoreError> {
        self.d1()?;
        self.tokens.borrow_mut().push(rec.clone());
        Ok(())
    }
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        self.d1()?;
        Ok(self
            .tokens
            .borrow()
            .iter()
            .find(|t| t.hash == *hash)
            .cloned())
    }
    async fn pat_for_subject(
        &self,
        subject: &str,
        id: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.d1()?;
        Ok(self
            .tokens
            .borrow()
            .iter()
            .find(|t| t.id == id && t.subject == subject && t.kind == crate::token::TokenKind::Pat)
            .cloned())
    }
    async fn list_pats(
        &self,
        subject: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        self.d1()?;
        let mut v: Vec<TokenRecord> = self
            .tokens
            .borrow()
            .iter()
            .filter(|t| t.subject == subject && t.kind == crate::token::TokenKind::Pat)
            .filter(|t| after.is_none_or(|(ts, id)| (t.created_at, &t.id) < (*ts, id)))
            .cloned()
            .collect();
        v.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        v.truncate(limit as usize);
        Ok(v)
    }
    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        self.d1()?;
        let mut tokens = self.tokens.borrow_mut();
        match tokens
            .iter_mut()
            .find(|t| t.id == id && t.revoked_at.is_none())
        {
            Some(t) => {
                t.revoked_at = Some(now);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn replace_token_hash(
        &self,
        id: &str,
        old: &TokenHash,
        new: &TokenHash,
    ) -> Result<bool, StoreError> {
        self.d1()?;
        let mut tokens = self.tokens.borrow_mut();
        match tokens
            .iter_mut()
            .find(|t| t.id == id && t.hash == *old && t.revoked_at.is_none())
        {
            Some(t) => {
                t.hash = *new;
                Ok(true)
            }
            None => Ok(false),
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

impl UsageRecorder for MemoryBackend {
    async fn record_use(&self, token_id: &str, at: i64, uses: u32) -> Result<(), StoreError> {
        self.bump(|c| c.do_call += 1);
        self.uses.borrow_mut().push((token_id.to_owned(), at, uses));
        Ok(())
    }
}

impl JwksFetcher for MemoryBackend {
    async fn fetch_jwks(&self, _url: &str) -> Result<String, StoreError> {
        self.jwks
            .borrow()
            .clone()
            .ok_or_else(|| StoreError("no JWKS (test)".into()))
    }
}

impl crate::store::AdminStore for MemoryBackend {
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        self.d1()?;
        Ok(self.clients.borrow().clone())
    }
    async fn create_client(&self, c: &Client, _now: i64) -> Result<Write, StoreError> {
        self.d1()?;
        let mut all = self.clients.borrow_mut();
        if all.iter().any(|x| x.id == c.id) {
            return Ok(Write::Conflict);
        }
        all.push(c.clone());
        Ok(Write::Done)
    }
    async fn update_client(&self, c: &Client) -> Result<Write, StoreError> {
        self.d1()?;
        Ok(replace_where(&mut self.clients.borrow_mut(), c, |x| {
            x.id == c.id
        }))
    }
    async fn delete_client(&self, id: &str) -> Result<Write, StoreError> {
        self.d1()?;
        Ok(remove_where(&mut self.clients.borrow_mut(), |x| x.id == id))
    }
    async fn list_resources(&self) -> Result<Vec<ApiResource>, StoreError> {
        self.d1()?;
        Ok(self.resources.borrow().clone())
    }
    async fn create_resource(&self, r: &ApiResource, _now: i64) -> Result<Write, StoreError> {
        self.d1()?;
        let mut all = self.resources.borrow_mut();
        let taken = all
            .iter()
            .any(|x| x.id == r.id || x.scopes.iter().any(|s| r.scopes.contains(s)));
        if taken {
            return Ok(Write::Conflict);
        }
        all.push(r.clone());
        Ok(Write::Done)
    }
    async fn update_resource(&self, r: &ApiResource) -> Result<Write, StoreError> {
        self.d1()?;
        let mut all = self.resources.borrow_mut();
        if all
            .iter()
            .any(|x| x.id != r.id && x.scopes.iter().any(|s| r.scopes.contains(s)))
        {
            return Ok(Write::Conflict);
        }
        Ok(replace_where(&mut all, r, |x| x.id == r.id))
    }
    async fn delete_resource(&self, id: &str) -> Result<Write, StoreError> {
        self.d1()?;
        Ok(remove_where(&mut self.resources.borrow_mut(), |x| {
            x.id == id
        }))
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
