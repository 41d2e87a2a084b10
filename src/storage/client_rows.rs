//! D1 `clients` read whole, one by one: a client's record (`model::Client`) and its
//! authorization-code side (`authz::records::ClientProfile`) in one row, and the statements that
//! read and write clients one at a time (self-registered clients can number in the tens of
//! thousands: nothing here reads the whole table, and the admin table is only `source = 'admin'`).

use super::authz_rows::{client_profile_values, Bind, ClientProfileRow, CLIENT_PROFILE_COLUMNS};
use super::rows::ClientRow;
use crate::authz::records::ClientProfile;
use crate::model::{Client, TokenFormat};
use crate::store::StoreError;
use serde::Deserialize;

/// The columns of [`FullClientRow`], in a `SELECT` over `clients`.
pub fn full_client_select() -> String {
    format!(
        "SELECT id, uid, secret_hash, previous_secret_hash, previous_secret_expires_at, \
         allowed_scopes, token_format, token_lifetime, enabled, {CLIENT_PROFILE_COLUMNS} FROM clients"
    )
}

/// One client by id (`?1`).
pub fn select_client_by_id() -> String {
    format!("{} WHERE id = ?1", full_client_select())
}

/// The administrator-made clients, by id (index `clients_by_source`): the isolate's admin table
/// and the admin API's list.
pub fn select_admin_clients() -> String {
    format!(
        "{} WHERE source = 'admin' ORDER BY id",
        full_client_select()
    )
}

/// A client row with its profile (flat: every column once).
#[derive(Deserialize)]
pub struct FullClientRow {
    pub id: String,
    pub uid: Option<String>,
    pub secret_hash: Option<String>,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub allowed_scopes: String,
    pub token_format: String,
    pub token_lifetime: i64,
    pub enabled: i64,
    pub source: String,
    pub display_name: Option<String>,
    pub logo_uri: Option<String>,
    pub redirect_uris: String,
    pub grant_types: Option<String>,
    pub refresh_tokens: i64,
    pub metadata_expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl FullClientRow {
    pub fn into_records(self) -> Result<(Client, ClientProfile), StoreError> {
        let profile = ClientProfileRow {
            source: self.source,
            display_name: self.display_name,
            logo_uri: self.logo_uri,
            redirect_uris: self.redirect_uris,
            grant_types: self.grant_types,
            refresh_tokens: self.refresh_tokens,
            metadata_expires_at: self.metadata_expires_at,
            last_used_at: self.last_used_at,
        }
        .into_profile()?;
        let client = ClientRow {
            id: self.id,
            secret_hash: self.secret_hash,
            previous_secret_hash: self.previous_secret_hash,
            previous_secret_expires_at: self.previous_secret_expires_at,
            allowed_scopes: self.allowed_scopes,
            token_format: self.token_format,
            token_lifetime: self.token_lifetime,
            enabled: self.enabled,
            uid: self.uid,
        }
        .into_model()?;
        Ok((client, profile))
    }
}

fn format_db(f: TokenFormat) -> &'static str {
    match f {
        TokenFormat::Reference => "reference",
        TokenFormat::Jwt => "jwt",
    }
}

/// Registering a dynamic client (RFC 7591): a public client with its profile; the uid comes from
/// the insert trigger. A taken id is a constraint violation (`Conflict`).
pub fn register_client_sql() -> String {
    format!(
        "INSERT INTO clients (id, secret_hash, allowed_scopes, token_format, token_lifetime, \
         enabled, created_at, {CLIENT_PROFILE_COLUMNS}) \
         VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    )
}

/// The values of [`register_client_sql`].
pub fn register_client_values(
    c: &Client,
    p: &ClientProfile,
    now: i64,
) -> Result<Vec<Bind>, StoreError> {
    let mut v = vec![
        Bind::Text(c.id.clone()),
        Bind::Text(crate::scopes::join(&c.allowed_scopes)),
        Bind::Text(format_db(c.token_format).to_owned()),
        Bind::Int(c.token_lifetime),
        Bind::Int(i64::from(c.enabled)),
        Bind::Int(now),
    ];
    v.extend(client_profile_values(p)?);
    Ok(v)
}

/// The values of `authz_rows::sql::PUT_METADATA_CLIENT` (`?1` to `?10`).
pub fn put_metadata_client_values(
    c: &Client,
    p: &ClientProfile,
    now: i64,
) -> Result<Vec<Bind>, StoreError> {
    let profile = client_profile_values(p)?;
    // The profile's columns in CLIENT_PROFILE_COLUMNS order: source, display_name, logo_uri,
    // redirect_uris, grant_types, refresh_tokens, metadata_expires_at, last_used_at. The
    // statement fixes the source and leaves last_used_at alone.
    let mut it = profile.into_iter().skip(1);
    let mut next = || {
        it.next()
            .ok_or_else(|| StoreError("client profile columns changed".into()))
    };
    Ok(vec![
        Bind::Text(c.id.clone()),
        Bind::Text(crate::scopes::join(&c.allowed_scopes)),
        Bind::Int(c.token_lifetime),
        Bind::Int(now),
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
    ])
}

/// A dynamic client's use (`?1` id, `?2` now).
pub const TOUCH_CLIENT: &str =
    "UPDATE clients SET last_used_at = ?2 WHERE id = ?1 AND source = 'dynamic'";

/// [`crate::authz::store::ClientDirectory::set_client_secret`]: `?1` id, `?2` uid, `?3` the
/// current secret hash expected (hex, `NULL`: a public client; `IS` compares `NULL` too), `?4`
/// .. `?6` the new current hash, previous hash and the previous one's end.
pub const SET_CLIENT_SECRET: &str = "UPDATE clients SET secret_hash = ?4, \
    previous_secret_hash = ?5, previous_secret_expires_at = ?6 \
    WHERE id = ?1 AND uid = ?2 AND secret_hash IS ?3";

/// Deletes at most `?2` dynamic clients last used before `?1` (registration sets `last_used_at`:
/// it counts as a use) that no live grant names, returning their ids (index
/// `clients_dynamic_by_use`). A grant is live until it is revoked; ended grants are deleted by
/// their own clean-up.
pub const EXPIRE_DYNAMIC_CLIENTS: &str = "DELETE FROM clients WHERE id IN (SELECT c.id \
    FROM clients c WHERE c.source = 'dynamic' AND c.last_used_at < ?1 \
    AND NOT EXISTS (SELECT 1 FROM app_grants g WHERE g.client_uid = c.uid \
    AND g.revoked_at IS NULL) LIMIT ?2) AND source = 'dynamic' RETURNING id";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::records::ClientSource;
    use crate::oauth::client_metadata::GrantType;

    fn client(id: &str) -> Client {
        Client {
            id: id.into(),
            uid: String::new(),
            secret: None,
            allowed_scopes: vec!["demo_api:read".into(), "demo_api:write".into()],
            token_format: TokenFormat::Reference,
            token_lifetime: 3600,
            enabled: true,
        }
    }

    fn profile() -> ClientProfile {
        ClientProfile {
            source: ClientSource::Dynamic,
            display_name: Some("MCP CLI".into()),
            logo_uri: None,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
            refresh_tokens: true,
            metadata_expires_at: None,
            last_used_at: Some(1_700_000_000),
        }
    }

    /// The statements and their values must line up: every `?N` bound once, in order.
    #[test]
    fn values_match_their_statements() {
        let reg = register_client_values(&client("pgd_x"), &profile(), 1_700_000_000).expect("v");
        assert_eq!(reg.len(), 14);
        assert!(register_client_sql().contains("?14)"));
        assert_eq!(
            reg[..6],
            [
                Bind::Text("pgd_x".into()),
                Bind::Text("demo_api:read demo_api:write".into()),
                Bind::Text("reference".into()),
                Bind::Int(3600),
                Bind::Int(1),
                Bind::Int(1_700_000_000),
            ]
        );
        assert_eq!(reg[6], Bind::Text("dynamic".into()));
        let mut p = profile();
        p.source = ClientSource::MetadataDocument;
        p.metadata_expires_at = Some(1_700_003_600);
        let put = put_metadata_client_values(&client("https://a.example/c"), &p, 5).expect("v");
        assert_eq!(put.len(), 10);
        assert!(crate::storage::authz_rows::sql::PUT_METADATA_CLIENT.contains("?10"));
        assert_eq!(put[4], Bind::OptText(Some("MCP CLI".into())));
        assert_eq!(put[6], Bind::Text(r#"["http://127.0.0.1/cb"]"#.into()));
        assert_eq!(
            put[7],
            Bind::OptText(Some("authorization_code refresh_token".into()))
        );
        assert_eq!(put[8], Bind::Int(1));
        assert_eq!(put[9], Bind::OptInt(Some(1_700_003_600)));
    }

    #[test]
    fn a_full_row_reads_back() {
        let row: FullClientRow = serde_json::from_str(
            r#"{"id":"pgd_x","uid":"u1","secret_hash":null,"previous_secret_hash":null,
            "previous_secret_expires_at":null,"allowed_scopes":"demo_api:read","token_format":"reference",
            "token_lifetime":3600,"enabled":1,"source":"dynamic","display_name":"MCP CLI","logo_uri":null,
            "redirect_uris":"[\"http://127.0.0.1/cb\"]","grant_types":"authorization_code refresh_token",
            "refresh_tokens":1,"metadata_expires_at":null,"last_used_at":1700000000}"#,
        )
        .expect("row");
        let (c, p) = row.into_records().expect("records");
        assert_eq!(
            (c.id.as_str(), c.uid.as_str(), c.secret.is_none()),
            ("pgd_x", "u1", true)
        );
        assert_eq!(p, profile());
        let bad: FullClientRow = serde_json::from_str(
            r#"{"id":"x","uid":"u","secret_hash":null,"previous_secret_hash":null,
            "previous_secret_expires_at":null,"allowed_scopes":"","token_format":"reference",
            "token_lifetime":1,"enabled":1,"source":"someone","display_name":null,"logo_uri":null,
            "redirect_uris":"[]","grant_types":null,"refresh_tokens":1,"metadata_expires_at":null,
            "last_used_at":null}"#,
        )
        .expect("row");
        assert!(bad.into_records().is_err(), "an unknown source is an error");
    }
}
