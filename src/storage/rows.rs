//! D1 rows as the runtime reads them, and their mapping to the core's records. The runtime
//! (`src/edge/d1/`) runs the SQL and deserializes each result row into one of these; nothing else
//! reads D1 columns. Unknown enum values, malformed hashes and unreadable JSON columns are errors
//! (the request fails with 503), never a default that would change what a token may do.

use crate::gate::route::{GateRoute, Rule};
use crate::model::{ApiResource, Client, ReuseInfo, SecretSet, TokenFormat, TokenRecord};
use crate::origin::ClientOrigin;
use crate::secret::SecretHash;
use crate::store::{Retired, StoreError};
use crate::token::{TokenHash, TokenKind};
use serde::Deserialize;

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(e)
}

#[derive(Deserialize)]
pub struct TokenRow {
    pub id: String,
    pub kind: String,
    pub token_hash: String,
    pub subject: String,
    pub client_id: String,
    pub name: Option<String>,
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub use_count: i64,
    pub generation: i64,
    pub client_uid: Option<String>,
    pub scope_owners: Option<String>,
    pub revoked_reason: Option<String>,
    pub revoked_url: Option<String>,
    pub allow_self_rotation: i64,
    pub revoke_on_reuse: i64,
    pub reuse_count: i64,
    pub first_reuse_at: Option<i64>,
    pub last_reuse_at: Option<i64>,
    pub last_reuse_ip: Option<String>,
    pub last_reuse_colo: Option<String>,
    pub last_reuse_country: Option<String>,
    pub last_reuse_rotated_at: Option<i64>,
    pub daily_uses: Option<String>,
    pub last_used_from: Option<String>,
    pub revoked_message: Option<String>,
    /// [`LEAK_URLS_COLUMN`]: a JSON array of `[url, reported_at, rowid]` (the rowid orders
    /// reports of the same second: a URL first reported later is newer).
    pub leak_urls: Option<String>,
    pub grant_id: Option<String>,
    pub audience: Option<String>,
}

impl TokenRow {
    pub fn into_record(self) -> Result<TokenRecord, StoreError> {
        let reuse = (self.reuse_count > 0).then(|| ReuseInfo {
            count: self.reuse_count,
            first_at: self.first_reuse_at.unwrap_or_default(),
            last_at: self.last_reuse_at.unwrap_or_default(),
            last_origin: ClientOrigin::new(
                self.last_reuse_ip.as_deref(),
                self.last_reuse_colo.as_deref(),
                self.last_reuse_country.as_deref(),
            ),
            last_rotated_at: self.last_reuse_rotated_at,
        });
        let leak_urls = match self.leak_urls.as_deref() {
            None => Vec::new(),
            Some(json) => {
                let mut rows: Vec<(String, i64, i64)> = serde_json::from_str(json)
                    .map_err(|e| err(format!("bad leak_urls in D1: {e}")))?;
                rows.sort_by_key(|(_, at, seq)| std::cmp::Reverse((*at, *seq)));
                rows.truncate(crate::model::MAX_LEAK_URLS);
                rows.into_iter().map(|(url, ..)| url).collect()
            }
        };
        Ok(TokenRecord {
            kind: TokenKind::from_db(&self.kind).ok_or_else(|| err("bad token kind in D1"))?,
            hash: TokenHash::from_hex(&self.token_hash)
                .ok_or_else(|| err("bad token hash in D1"))?,
            id: self.id,
            subject: self.subject,
            client_id: self.client_id,
            name: self.name,
            scopes: crate::scopes::split(&self.scopes),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
            use_count: self.use_count,
            generation: self.generation,
            client_uid: self.client_uid,
            scope_owners: self.scope_owners.as_deref().map(crate::scopes::split),
            revoked_reason: self.revoked_reason,
            revoked_url: self.revoked_url,
            allow_self_rotation: self.allow_self_rotation != 0,
            revoke_on_reuse: self.revoke_on_reuse != 0,
            reuse,
            daily_uses: crate::usage::summary::DailyUses::parse(self.daily_uses.as_deref())
                .map_err(|_| err("unreadable tokens.daily_uses in D1"))?,
            last_used_from: crate::usage::summary::parse_from(self.last_used_from.as_deref())
                .map_err(|_| err("unreadable tokens.last_used_from in D1"))?,
            revoked_message: self.revoked_message,
            leak_urls,
            grant_id: self.grant_id,
            audience: self.audience,
        })
    }
}

#[derive(Deserialize)]
pub struct RetiredRow {
    pub token_hash: String,
    pub token_id: String,
    pub retired_at: i64,
    pub grace_until: Option<i64>,
}

impl RetiredRow {
    pub fn into_retired(self) -> Result<Retired, StoreError> {
        Ok(Retired {
            hash: TokenHash::from_hex(&self.token_hash)
                .ok_or_else(|| err("bad retired hash in D1"))?,
            token_id: self.token_id,
            retired_at: self.retired_at,
            grace_until: self.grace_until,
        })
    }
}

pub const TOKEN_COLUMNS: &str = "id, kind, token_hash, subject, client_id, name, scopes, \
    created_at, expires_at, revoked_at, last_used_at, use_count, generation, client_uid, \
    scope_owners, revoked_reason, revoked_url, allow_self_rotation, revoke_on_reuse, \
    reuse_count, first_reuse_at, last_reuse_at, last_reuse_ip, last_reuse_colo, \
    last_reuse_country, last_reuse_rotated_at, daily_uses, last_used_from, revoked_message, \
    grant_id, audience";

/// Selected with [`TOKEN_COLUMNS`] from `tokens` (`SELECT {TOKEN_COLUMNS}, {LEAK_URLS_COLUMN}
/// FROM tokens ...`): the token's leak report URLs (D1 `leak_reports`, at most
/// [`crate::model::MAX_LEAK_URLS`] rows per token) with their times and rowids (the order the
/// writer keeps them by), `[]` when there are none.
pub const LEAK_URLS_COLUMN: &str = "(SELECT json_group_array(json_array(url, reported_at, rowid)) \
    FROM leak_reports WHERE leak_reports.token_id = tokens.id) AS leak_urls";

fn secret_set(
    current: &str,
    previous: Option<String>,
    until: Option<i64>,
) -> Result<SecretSet, StoreError> {
    Ok(SecretSet {
        current: SecretHash::from_hex(current).ok_or_else(|| err("bad secret hash in D1"))?,
        previous: match (previous, until) {
            (Some(p), Some(u)) => Some((
                SecretHash::from_hex(&p).ok_or_else(|| err("bad previous secret hash in D1"))?,
                u,
            )),
            _ => None,
        },
    })
}

#[derive(Deserialize)]
pub struct ResourceRow {
    pub id: String,
    pub secret_hash: String,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub enabled: i64,
    pub scopes: Option<String>,
    pub uid: Option<String>,
    /// A JSON array of `[scope, description]` (`json_group_array`), `NULL` or absent: none.
    #[serde(default)]
    pub descriptions: Option<String>,
    /// `api_resources.resource_uri` (absent in rows read by older queries: none).
    #[serde(default)]
    pub resource_uri: Option<String>,
}

#[derive(Deserialize)]
pub struct ClientRow {
    pub id: String,
    pub secret_hash: Option<String>,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub allowed_scopes: String,
    pub token_format: String,
    pub token_lifetime: i64,
    pub enabled: i64,
    pub uid: Option<String>,
}

impl ResourceRow {
    pub fn into_model(self) -> Result<ApiResource, StoreError> {
        Ok(ApiResource {
            secret: secret_set(
                &self.secret_hash,
                self.previous_secret_hash,
                self.previous_secret_expires_at,
            )?,
            id: self.id,
            uid: self.uid.unwrap_or_default(),
            enabled: self.enabled != 0,
            scopes: crate::scopes::split(self.scopes.as_deref().unwrap_or("")),
            descriptions: self
                .descriptions
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default(),
            resource_uri: self.resource_uri,
        })
    }
}

impl ClientRow {
    pub fn into_model(self) -> Result<Client, StoreError> {
        Ok(Client {
            secret: self
                .secret_hash
                .as_deref()
                .map(|h| {
                    secret_set(
                        h,
                        self.previous_secret_hash,
                        self.previous_secret_expires_at,
                    )
                })
                .transpose()?,
            id: self.id,
            uid: self.uid.unwrap_or_default(),
            allowed_scopes: crate::scopes::split(&self.allowed_scopes),
            // An unknown value is an error, never silently a reference token.
            token_format: match self.token_format.as_str() {
                "jwt" => TokenFormat::Jwt,
                "reference" => TokenFormat::Reference,
                other => return Err(err(format!("unknown token_format {other:?} in D1"))),
            },
            token_lifetime: self.token_lifetime,
            enabled: self.enabled != 0,
        })
    }
}

/// A row of D1 `gate_routes`.
#[derive(Deserialize)]
pub struct RouteRow {
    pub id: String,
    pub host: String,
    pub path_prefix: String,
    pub upstream: String,
    pub resource_id: String,
    pub rules: String,
    /// `gate_routes.cors` (migration 0010): the [`crate::gate::cors::Cors`] JSON, or NULL (off).
    #[serde(default)]
    pub cors: Option<String>,
}

impl RouteRow {
    /// `gate_routes.rules` as stored: a JSON array of `{"methods": [...], "scopes": [...]}`.
    pub fn rules_column(rules: &[Rule]) -> Result<String, StoreError> {
        serde_json::to_string(rules).map_err(err)
    }

    /// `gate_routes.cors` as stored: the policy's JSON, or NULL when the route has none.
    pub fn cors_column(
        cors: Option<&crate::gate::cors::Cors>,
    ) -> Result<Option<String>, StoreError> {
        cors.map(serde_json::to_string).transpose().map_err(err)
    }

    pub fn into_model(self) -> Result<GateRoute, StoreError> {
        Ok(GateRoute {
            id: self.id,
            host: (!self.host.is_empty()).then_some(self.host),
            path_prefix: self.path_prefix,
            upstream: self.upstream,
            resource: self.resource_id,
            rules: serde_json::from_str(&self.rules)
                .map_err(|e| err(format!("gate_routes.rules: {e}")))?,
            cors: self
                .cors
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| err(format!("gate_routes.cors: {e}")))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A row as D1 returns it: every column in `columns`, in order, with `values`.
    fn row(columns: &str, values: &[Value]) -> Value {
        let names: Vec<&str> = columns.split(',').map(str::trim).collect();
        assert_eq!(names.len(), values.len(), "one value per column");
        Value::Object(
            names
                .into_iter()
                .map(str::to_owned)
                .zip(values.iter().cloned())
                .collect(),
        )
    }

    const HASH: &str = "ab0000000000000000000000000000000000000000000000000000000000000f";

    fn token_values(kind: &str) -> Vec<Value> {
        vec![
            json!("tok1"),
            json!(kind),
            json!(HASH),
            json!("alice"),
            json!("pat_client"),
            json!("ci"),
            json!("demo_api:read demo_api:write"),
            json!(100),
            json!(200),
            Value::Null,
            json!(150),
            json!(3),
            json!(2),
            json!("cu1"),
            json!("ru1 ru1"),
            Value::Null,
            Value::Null,
            json!(1),
            // revoke_on_reuse, reuse_count, first/last reuse, last IP, colo, country, rotated_at
            json!(1),
            json!(2),
            json!(300),
            json!(400),
            json!("203.0.113.7"),
            json!("AMS"),
            json!("NL"),
            json!(250),
            // daily_uses, last_used_from (the LastUsed object's), revoked_message
            json!(r#"{"days":[[20000,3]]}"#),
            json!(r#"[{"via":"gate","name":"demo","ip":"203.0.113.7","first_at":1,"last_at":2}]"#),
            json!("rotate your CI keys"),
            // grant_id, audience
            Value::Null,
            Value::Null,
        ]
    }

    /// Golden: the `tokens` columns the runtime selects and how each becomes a [`TokenRecord`]
    /// (scopes space-delimited, booleans as 0/1, the hash as lowercase hex). The column list and
    /// the row type must agree: a column added to one only fails here, not in production.
    #[test]
    fn token_row_contract() {
        let v = row(TOKEN_COLUMNS, &token_values("pat"));
        let rec = serde_json::from_value::<TokenRow>(v)
            .unwrap()
            .into_record()
            .unwrap();
        assert_eq!(rec.kind, TokenKind::Pat);
        assert_eq!(rec.hash.to_hex(), HASH);
        assert_eq!(rec.scopes, ["demo_api:read", "demo_api:write"]);
        assert_eq!(
            rec.scope_owners.as_deref(),
            Some(&["ru1".to_owned(), "ru1".to_owned()][..])
        );
        assert_eq!(
            (rec.created_at, rec.expires_at, rec.revoked_at),
            (100, 200, None)
        );
        assert_eq!(
            (rec.last_used_at, rec.use_count, rec.generation),
            (Some(150), 3, 2)
        );
        assert_eq!(rec.client_uid.as_deref(), Some("cu1"));
        assert!(rec.allow_self_rotation && rec.revoke_on_reuse);
        let reuse = rec.reuse.as_ref().unwrap();
        assert_eq!((reuse.count, reuse.first_at, reuse.last_at), (2, 300, 400));
        assert_eq!(reuse.last_rotated_at, Some(250));
        assert_eq!(rec.daily_uses.days, [(20_000, 3)]);
        assert_eq!(rec.last_used_from.len(), 1);
        assert_eq!(rec.last_used_from[0].ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(rec.revoked_message.as_deref(), Some("rotate your CI keys"));
        // never used (the object never wrote): empty usage
        let mut values = token_values("pat");
        values[26] = Value::Null;
        values[27] = Value::Null;
        let unused = serde_json::from_value::<TokenRow>(row(TOKEN_COLUMNS, &values))
            .unwrap()
            .into_record()
            .unwrap();
        assert!(unused.daily_uses.days.is_empty() && unused.last_used_from.is_empty());
        let mut values = token_values("pat");
        values[19] = json!(0);
        let none = row(TOKEN_COLUMNS, &values);
        let rec = serde_json::from_value::<TokenRow>(none)
            .unwrap()
            .into_record()
            .unwrap();
        assert!(rec.reuse.is_none(), "no detection: no reuse view");
        let access = row(TOKEN_COLUMNS, &token_values("access"));
        let rec = serde_json::from_value::<TokenRow>(access)
            .unwrap()
            .into_record()
            .unwrap();
        assert_eq!(rec.kind, TokenKind::Access);
    }

    /// [`LEAK_URLS_COLUMN`]: `[url, reported_at]` pairs in any order become the URLs newest
    /// first, at most `MAX_LEAK_URLS`; `[]` (no report) or an absent column, none; unreadable
    /// JSON is an error.
    #[test]
    fn leak_urls_column_contract() {
        assert!(LEAK_URLS_COLUMN.ends_with(" AS leak_urls"));
        let with = |json: Value| {
            let mut v = row(TOKEN_COLUMNS, &token_values("pat"));
            v.as_object_mut().unwrap().insert("leak_urls".into(), json);
            serde_json::from_value::<TokenRow>(v).unwrap().into_record()
        };
        let rec = with(json!(
            r#"[["https://a/1",5,1],["https://a/2",9,2],["https://a/3",7,3],["https://a/4",7,4]]"#
        ))
        .unwrap();
        assert_eq!(
            rec.leak_urls,
            ["https://a/2", "https://a/4", "https://a/3", "https://a/1"]
        );
        assert!(with(json!("[]")).unwrap().leak_urls.is_empty());
        assert!(with(Value::Null).unwrap().leak_urls.is_empty());
        let many: Vec<Value> = (0..15)
            .map(|i| json!([format!("https://a/{i}"), 100, i]))
            .collect();
        let rec = with(json!(Value::Array(many).to_string())).unwrap();
        assert_eq!(rec.leak_urls.len(), crate::model::MAX_LEAK_URLS);
        assert_eq!(rec.leak_urls[0], "https://a/14");
        assert!(with(json!("not json")).is_err());
        assert!(with(json!(r#"[["https://a/1", 5]]"#)).is_err());
    }

    /// An unknown kind or a malformed hash is an error, never a default.
    #[test]
    fn token_row_refuses_unknown_values() {
        let bad_kind = row(TOKEN_COLUMNS, &token_values("robot"));
        assert!(serde_json::from_value::<TokenRow>(bad_kind)
            .unwrap()
            .into_record()
            .is_err());
        let mut values = token_values("pat");
        values[2] = json!("ZZ");
        let bad_hash = row(TOKEN_COLUMNS, &values);
        assert!(serde_json::from_value::<TokenRow>(bad_hash)
            .unwrap()
            .into_record()
            .is_err());
        // Unreadable usage columns are errors, like every other column.
        for (i, junk) in [(26, "[1,2]"), (27, "{}")] {
            let mut values = token_values("pat");
            values[i] = json!(junk);
            assert!(
                serde_json::from_value::<TokenRow>(row(TOKEN_COLUMNS, &values))
                    .unwrap()
                    .into_record()
                    .is_err()
            );
        }
        // A missing column (an old schema) does not deserialize.
        let mut missing = row(TOKEN_COLUMNS, &token_values("pat"));
        missing.as_object_mut().unwrap().remove("generation");
        assert!(serde_json::from_value::<TokenRow>(missing).is_err());
    }

    #[test]
    fn retired_row_contract() {
        let v =
            json!({"token_hash": HASH, "token_id": "tok1", "retired_at": 10, "grace_until": 20});
        let r = serde_json::from_value::<RetiredRow>(v)
            .unwrap()
            .into_retired()
            .unwrap();
        assert_eq!(
            (r.hash.to_hex().as_str(), r.token_id.as_str()),
            (HASH, "tok1")
        );
        assert_eq!((r.retired_at, r.grace_until), (10, Some(20)));
        let bad =
            json!({"token_hash": "x", "token_id": "tok1", "retired_at": 10, "grace_until": null});
        assert!(serde_json::from_value::<RetiredRow>(bad)
            .unwrap()
            .into_retired()
            .is_err());
    }

    /// Golden: `clients.token_format` is `reference` or `jwt`; anything else is an error (it was
    /// once silently a reference token).
    #[test]
    fn client_row_contract() {
        let base = |format: &str| {
            json!({"id": "c1", "uid": "u1", "secret_hash": HASH, "previous_secret_hash": null,
                   "previous_secret_expires_at": null, "allowed_scopes": "a:read  b:write",
                   "token_format": format, "token_lifetime": 3600, "enabled": 1})
        };
        let c = serde_json::from_value::<ClientRow>(base("jwt"))
            .unwrap()
            .into_model()
            .unwrap();
        assert_eq!(c.token_format, TokenFormat::Jwt);
        assert_eq!(c.allowed_scopes, ["a:read", "b:write"]);
        assert!(c.enabled && c.secret.is_some() && c.uid == "u1");
        let c = serde_json::from_value::<ClientRow>(base("reference"))
            .unwrap()
            .into_model()
            .unwrap();
        assert_eq!(c.token_format, TokenFormat::Reference);
        for bad in ["JWT", "opaque", ""] {
            let r = serde_json::from_value::<ClientRow>(base(bad))
                .unwrap()
                .into_model();
            assert!(r.is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn resource_row_contract() {
        let v = json!({"id": "api", "uid": null, "secret_hash": HASH,
                       "previous_secret_hash": HASH, "previous_secret_expires_at": 99,
                       "enabled": 0, "scopes": "api:read api:write"});
        let r = serde_json::from_value::<ResourceRow>(v)
            .unwrap()
            .into_model()
            .unwrap();
        assert_eq!(r.scopes, ["api:read", "api:write"]);
        assert!(!r.enabled);
        assert_eq!(r.secret.previous.as_ref().map(|p| p.1), Some(99));
        assert_eq!(r.resource_uri, None);
        let no_scopes = json!({"id": "api", "uid": "u", "secret_hash": HASH,
                       "previous_secret_hash": null, "previous_secret_expires_at": null,
                       "enabled": 1, "scopes": null, "resource_uri": "https://api.example/v1"});
        let r = serde_json::from_value::<ResourceRow>(no_scopes)
            .unwrap()
            .into_model()
            .unwrap();
        assert!(r.scopes.is_empty());
        assert_eq!(r.resource_uri.as_deref(), Some("https://api.example/v1"));
    }

    /// Golden: `gate_routes.rules` JSON. A change here makes stored routes unreadable (503 for
    /// every gated request) or changes what they allow.
    #[test]
    fn route_rules_column_unchanged() {
        let rules = vec![Rule {
            methods: vec!["GET".into(), "HEAD".into()],
            scopes: vec!["api:read".into()],
        }];
        let text = RouteRow::rules_column(&rules).unwrap();
        assert_eq!(
            text,
            r#"[{"methods":["GET","HEAD"],"scopes":["api:read"]}]"#
        );
        let v = json!({"id": "r1", "host": "", "path_prefix": "/api/", "upstream": "https://u.example",
                       "resource_id": "api", "rules": text});
        let route = serde_json::from_value::<RouteRow>(v)
            .unwrap()
            .into_model()
            .unwrap();
        assert_eq!(route.rules, rules);
        assert_eq!(route.host, None);
        assert_eq!(route.cors, None, "a row without the cors column: no policy");
        // the cors column: NULL is no policy, the JSON a policy, anything else unreadable
        let with_cors = |cors: Value| {
            serde_json::from_value::<RouteRow>(json!({"id": "r1", "host": "", "path_prefix": "/api/",
                "upstream": "https://u.example", "resource_id": "api", "rules": "[]", "cors": cors}))
            .unwrap()
            .into_model()
        };
        assert_eq!(with_cors(Value::Null).unwrap().cors, None);
        let policy = r#"{"allowed_origins":["https://app.example"],"allowed_methods":["GET"]}"#;
        let c = with_cors(json!(policy)).unwrap().cors.expect("a policy");
        assert_eq!(c.allowed_origins, ["https://app.example"]);
        assert_eq!(
            RouteRow::cors_column(Some(&c)).unwrap().as_deref(),
            Some(
                r#"{"allowed_origins":["https://app.example"],"allowed_methods":["GET"],"allowed_headers":["authorization","content-type"],"exposed_headers":[],"allow_credentials":false,"max_age":600}"#
            )
        );
        assert_eq!(RouteRow::cors_column(None).unwrap(), None);
        assert!(with_cors(json!("{")).is_err());
        let broken = json!({"id": "r1", "host": "h", "path_prefix": "/", "upstream": "https://u",
                            "resource_id": "api", "rules": "[{"});
        assert!(serde_json::from_value::<RouteRow>(broken)
            .unwrap()
            .into_model()
            .is_err());
    }
}
