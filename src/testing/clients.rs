//! In memory: clients one by one with their profiles ([`ClientDirectory`]) and fetched client ID
//! metadata documents ([`MetadataFetcher`]), like D1 `clients` and the runtime's guarded fetch.

use super::{MemoryBackend, Step};
use crate::authz::records::{ClientProfile, ClientSource};
use crate::authz::store::{ClientDirectory, Fetched, MetadataFetcher};
use crate::model::{Client, SecretSet};
use crate::oauth::metadata_document::FetchableUrl;
use crate::secret::SecretHash;
use crate::store::{StoreError, Write};

impl MemoryBackend {
    /// The profile stored for client `id` (an older administrator-made client has none).
    pub fn profile_of(&self, id: &str) -> ClientProfile {
        self.profiles
            .borrow()
            .get(id)
            .cloned()
            .unwrap_or_else(ClientProfile::legacy)
    }

    pub(super) fn is_admin_client(&self, id: &str) -> bool {
        self.profile_of(id).source == ClientSource::Admin
    }

    /// Adds a client with its profile, as a test's setup (no fault, no count).
    pub fn add_client(&self, mut c: Client, p: ClientProfile) -> Client {
        if c.uid.is_empty() {
            c.uid = self.next_uid();
        }
        self.profiles.borrow_mut().insert(c.id.clone(), p);
        self.clients.borrow_mut().push(c.clone());
        c
    }
}

impl ClientDirectory for MemoryBackend {
    async fn client_profile(
        &self,
        id: &str,
    ) -> Result<Option<(Client, ClientProfile)>, StoreError> {
        self.d1()?;
        let found = self.clients.borrow().iter().find(|c| c.id == id).cloned();
        Ok(found.map(|c| {
            let p = self.profile_of(&c.id);
            (c, p)
        }))
    }

    async fn admin_clients(&self) -> Result<Vec<(Client, ClientProfile)>, StoreError> {
        self.d1()?;
        let mut v: Vec<_> = self
            .clients
            .borrow()
            .iter()
            .map(|c| (c.clone(), self.profile_of(&c.id)))
            .filter(|(_, p)| p.source == ClientSource::Admin)
            .collect();
        v.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok(v)
    }

    async fn put_metadata_client(
        &self,
        client: &Client,
        profile: &ClientProfile,
        _now: i64,
    ) -> Result<Option<String>, StoreError> {
        self.d1()?;
        self.write(Step::ClientRegister, || {
            let existing = self
                .clients
                .borrow()
                .iter()
                .find(|c| c.id == client.id)
                .map(|c| c.uid.clone());
            match existing {
                Some(_) if self.profile_of(&client.id).source != ClientSource::MetadataDocument => {
                    None
                }
                Some(uid) => {
                    // The document's members change; the record (uid, created) stays.
                    self.profiles
                        .borrow_mut()
                        .insert(client.id.clone(), profile.clone());
                    Some(uid)
                }
                None => Some(
                    self.add_client(
                        Client {
                            uid: String::new(),
                            ..client.clone()
                        },
                        profile.clone(),
                    )
                    .uid,
                ),
            }
        })
    }

    async fn register_client(
        &self,
        client: &Client,
        profile: &ClientProfile,
        _now: i64,
    ) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ClientRegister, || {
            if self.clients.borrow().iter().any(|c| c.id == client.id) {
                return Write::Conflict;
            }
            self.add_client(
                Client {
                    uid: String::new(),
                    ..client.clone()
                },
                profile.clone(),
            );
            Write::Done
        })
    }

    async fn set_client_secret(
        &self,
        id: &str,
        uid: &str,
        expected: Option<&SecretHash>,
        secret: &SecretSet,
    ) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ClientWrite, || {
            let mut all = self.clients.borrow_mut();
            match all.iter_mut().find(|c| {
                c.id == id && c.uid == uid && c.secret.as_ref().map(|s| &s.current) == expected
            }) {
                Some(c) => {
                    c.secret = Some(secret.clone());
                    Write::Done
                }
                None => Write::NotFound,
            }
        })
    }

    async fn touch_client(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.d1()?;
        self.write(Step::ClientTouch, || {
            if let Some(p) = self.profiles.borrow_mut().get_mut(id) {
                if p.source == ClientSource::Dynamic {
                    p.last_used_at = Some(now);
                }
            }
        })
    }

    async fn expire_dynamic_clients(
        &self,
        unused_since: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.d1()?;
        self.write(Step::ClientWrite, || {
            let grants = self.app_grants.borrow();
            let live = |uid: &str| {
                grants
                    .iter()
                    .any(|g| g.client_uid == uid && g.revoked_at.is_none())
            };
            let gone: Vec<String> = self
                .clients
                .borrow()
                .iter()
                .filter(|c| {
                    let p = self.profile_of(&c.id);
                    p.source == ClientSource::Dynamic
                        && p.last_used_at.is_some_and(|t| t < unused_since)
                        && !live(&c.uid)
                })
                .take(limit as usize)
                .map(|c| c.id.clone())
                .collect();
            self.clients.borrow_mut().retain(|c| !gone.contains(&c.id));
            let mut profiles = self.profiles.borrow_mut();
            for id in &gone {
                profiles.remove(id);
            }
            gone
        })
    }
}

impl MetadataFetcher for MemoryBackend {
    async fn fetch_metadata(
        &self,
        url: &FetchableUrl,
        max_bytes: usize,
        _timeout_ms: u32,
    ) -> Result<Fetched, StoreError> {
        self.fetched.borrow_mut().push(url.as_str().to_owned());
        let answer = self.documents.borrow().get(url.as_str()).cloned();
        match answer {
            Some(Ok(mut f)) => {
                f.body.truncate(max_bytes + 1);
                Ok(f)
            }
            Some(Err(e)) => Err(StoreError(e)),
            None => Err(StoreError(format!(
                "fetch of {} failed (test)",
                url.as_str()
            ))),
        }
    }
}
