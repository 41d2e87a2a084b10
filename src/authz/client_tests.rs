//! Clients looked up one by one: a metadata document fetched, validated, stored and cached;
//! dynamic registrations; what an unknown id costs.

use super::client_cache::{classify, CachePolicy, Cached, ClientCache, ClientIdKind};
use super::code::{grant_from_code, new_code};
use super::memory::AuthzMemory;
use super::records::{ClientProfile, ClientSource};
use super::secrets::{generate_dynamic_id, ClientIdKey};
use super::store::{AppGrants, ClientDirectory, Fetched, MetadataFetcher};
use super::tests::{approved, client, profile, P};
use crate::oauth::authorize::RedirectPolicy;
use crate::oauth::metadata_document::{
    cache_until, fetchable_url, validate_document, CacheBounds, CacheHeaders, DocumentError,
    MAX_DOCUMENT_BYTES,
};
use crate::store::Write;
use crate::token::TokenHash;
use futures::executor::block_on;

const URL: &str = "https://app.example/oauth/client.json";

fn document(name: &str) -> Vec<u8> {
    format!(
        r#"{{"client_id":"{URL}","client_name":"{name}","redirect_uris":["http://127.0.0.1/cb"],"grant_types":["authorization_code","refresh_token"]}}"#
    )
    .into_bytes()
}

/// What the handler will do for an unknown metadata URL: fetch, validate, store, cache.
fn resolve(
    m: &AuthzMemory,
    cache: &mut ClientCache<ClientProfile>,
    id: &str,
    now: i64,
) -> Result<Option<String>, String> {
    let policy = CachePolicy {
        ttl: 30,
        max_stale: 300,
        negative_ttl: 60,
    };
    match cache.get(id, now, &policy) {
        Cached::Found(p) => return Ok(p.display_name.clone()),
        Cached::Missing(_) => return Ok(None),
        Cached::Stale(_) | Cached::Miss => {}
    }
    if let Some((_, p)) = block_on(m.client_profile(id)).map_err(|e| e.0)? {
        if p.metadata_expires_at.is_some_and(|t| now < t) {
            let name = p.display_name.clone();
            cache.put(id, Some(p), now);
            return Ok(name);
        }
    }
    let url = fetchable_url(id, false).map_err(|e| e.to_string())?;
    let fetched = match block_on(m.fetch_metadata(&url, MAX_DOCUMENT_BYTES, 3000)) {
        Ok(f) if f.status == 200 => f,
        _ => {
            cache.put(id, None, now);
            return Ok(None);
        }
    };
    let meta = validate_document(id, &fetched.body, RedirectPolicy::default())
        .map_err(|e| e.to_string())?;
    let headers = CacheHeaders {
        cache_control: fetched.cache_control.as_deref(),
        ..CacheHeaders::default()
    };
    let p = ClientProfile {
        source: ClientSource::MetadataDocument,
        display_name: meta.client_name.clone(),
        redirect_uris: meta.redirect_uris.clone(),
        grant_types: Some(meta.grant_types.clone()),
        metadata_expires_at: Some(cache_until(&headers, now, CacheBounds::default())),
        ..ClientProfile::legacy()
    };
    block_on(m.put_metadata_client(&client(id), &p, now)).map_err(|e| e.0)?;
    cache.put(id, Some(p), now);
    Ok(meta.client_name)
}

#[test]
fn a_metadata_document_client_is_fetched_once_and_refetched_when_its_cache_ends() {
    let m = AuthzMemory::default();
    let mut cache = ClientCache::new(16);
    m.documents.borrow_mut().push((
        URL.into(),
        Fetched {
            status: 200,
            body: document("Agent"),
            cache_control: Some("max-age=600".into()),
            ..Fetched::default()
        },
    ));
    assert_eq!(resolve(&m, &mut cache, URL, 1000), Ok(Some("Agent".into())));
    assert_eq!(resolve(&m, &mut cache, URL, 1010), Ok(Some("Agent".into())));
    assert_eq!(m.fetched.borrow().len(), 1, "cached");
    // another isolate (empty cache) reads D1, not the network, while the document is fresh
    let mut other = ClientCache::new(16);
    assert_eq!(resolve(&m, &mut other, URL, 1500), Ok(Some("Agent".into())));
    assert_eq!(m.fetched.borrow().len(), 1);
    // past its cache life it is fetched again; the uid stays
    let uid = block_on(m.client_profile(URL))
        .expect("read")
        .expect("stored")
        .0
        .uid;
    m.documents.borrow_mut()[0].1.body = document("Agent 2");
    assert_eq!(
        resolve(&m, &mut other, URL, 1000 + 600 + 31),
        Ok(Some("Agent 2".into()))
    );
    assert_eq!(m.fetched.borrow().len(), 2);
    assert_eq!(
        block_on(m.client_profile(URL))
            .expect("read")
            .expect("stored")
            .0
            .uid,
        uid
    );
}

#[test]
fn hostile_documents_never_become_clients() {
    for (body, status, want) in [
        (
            document("A")
                .iter()
                .copied()
                .chain(std::iter::repeat_n(b' ', MAX_DOCUMENT_BYTES))
                .collect::<Vec<u8>>(),
            200,
            Err(DocumentError::TooLarge.to_string()),
        ),
        (
            String::from_utf8(document("A"))
                .expect("utf8")
                .replace(URL, "https://evil.example/c.json")
                .into_bytes(),
            200,
            Err(DocumentError::ClientIdMismatch.to_string()),
        ),
        (document("A"), 302, Ok(None)),
        (document("A"), 404, Ok(None)),
    ] {
        let m = AuthzMemory::default();
        let mut cache = ClientCache::new(16);
        m.documents.borrow_mut().push((
            URL.into(),
            Fetched {
                status,
                body,
                ..Fetched::default()
            },
        ));
        assert_eq!(resolve(&m, &mut cache, URL, 1000), want, "{status}");
        assert!(block_on(m.client_profile(URL)).expect("read").is_none());
    }
    // an unreachable document is remembered as unknown: no second fetch for a minute
    let m = AuthzMemory::default();
    let mut cache = ClientCache::new(16);
    assert_eq!(resolve(&m, &mut cache, URL, 1000), Ok(None));
    assert_eq!(resolve(&m, &mut cache, URL, 1059), Ok(None));
    assert_eq!(m.fetched.borrow().len(), 1);
    assert_eq!(resolve(&m, &mut cache, URL, 1060), Ok(None));
    assert_eq!(m.fetched.borrow().len(), 2);
    // a URL that breaks the client id rules is never fetched
    assert!(resolve(&m, &mut cache, "https://app.example/a/../c.json", 2000).is_err());
    assert_eq!(m.fetched.borrow().len(), 2);
}

#[test]
fn a_forged_dynamic_id_costs_no_read() {
    let m = AuthzMemory::default();
    let key = ClientIdKey::new(&[3u8; 32]).expect("key");
    let id = generate_dynamic_id(&key).expect("rng");
    assert_eq!(
        block_on(m.register_client(&client(&id), &profile(ClientSource::Dynamic), 1))
            .expect("register"),
        Write::Done
    );
    let keys = [key];
    let mut forged = id.clone();
    forged.replace_range(5..6, if &id[5..6] == "a" { "b" } else { "a" });
    assert_eq!(classify(&forged, &keys, false), ClientIdKind::Impossible);
    assert_eq!(classify(&id, &keys, false), ClientIdKind::Dynamic);
    let before = m.calls.get();
    // the handler stops at Impossible: nothing is read
    if classify(&forged, &keys, false) != ClientIdKind::Impossible {
        let _ = block_on(m.client_profile(&forged));
    }
    assert_eq!(m.calls.get(), before);
}

#[test]
fn clients_are_stored_one_by_one_and_keep_their_uid() {
    let m = AuthzMemory::default();
    let url = "https://app.example/c.json";
    let uid =
        block_on(m.put_metadata_client(&client(url), &profile(ClientSource::MetadataDocument), 1))
            .expect("put")
            .expect("stored");
    let mut refetched = profile(ClientSource::MetadataDocument);
    refetched.display_name = Some("Renamed".into());
    assert_eq!(
        block_on(m.put_metadata_client(&client(url), &refetched, 2)).expect("put"),
        Some(uid.clone())
    );
    let (c, p) = block_on(m.client_profile(url))
        .expect("read")
        .expect("client");
    assert_eq!((c.uid, p.display_name.as_deref()), (uid, Some("Renamed")));
    // an administrator's client is never overwritten by a document
    block_on(m.register_client(&client("admin_made"), &profile(ClientSource::Admin), 1))
        .expect("register");
    assert_eq!(
        block_on(m.put_metadata_client(&client("admin_made"), &refetched, 3)).expect("put"),
        None
    );
    assert_eq!(
        block_on(m.register_client(&client("admin_made"), &profile(ClientSource::Dynamic), 1))
            .expect("register"),
        Write::Conflict
    );
    // unused dynamic clients expire, unless a live grant uses them
    block_on(m.register_client(&client("pgd_unused"), &profile(ClientSource::Dynamic), 10))
        .expect("register");
    block_on(m.register_client(&client("pgd_used"), &profile(ClientSource::Dynamic), 10))
        .expect("register");
    block_on(m.touch_client("pgd_used", 500)).expect("touch");
    block_on(m.register_client(&client("pgd_granted"), &profile(ClientSource::Dynamic), 10))
        .expect("register");
    let granted_uid = block_on(m.client_profile("pgd_granted"))
        .expect("read")
        .expect("c")
        .0
        .uid;
    let mut g = grant_from_code(
        &new_code(approved(), TokenHash([1; 32]), "gx".into(), 10),
        10,
        &P,
        false,
    );
    g.client_uid = granted_uid;
    block_on(m.insert_grant(&g, None)).expect("grant");
    assert_eq!(
        block_on(m.expire_dynamic_clients(100, 10)).expect("expire"),
        ["pgd_unused"]
    );
    assert!(
        block_on(m.client_profile(url)).expect("read").is_some(),
        "other sources never expire"
    );
}
