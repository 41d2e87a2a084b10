//! Golden tests: the values each record is written with, and that what D1 hands back (a JSON
//! object per row, as `results()` gives it) reads into the same record. Stored rows outlive the
//! code that wrote them: change these only with a migration.

use super::*;

/// A row as D1 returns it: the columns zipped with the bound values.
fn row_json(columns: &str, values: &[Bind]) -> serde_json::Value {
    let names: Vec<&str> = columns.split(',').map(str::trim).collect();
    assert_eq!(names.len(), values.len(), "one value per column");
    let mut m = serde_json::Map::new();
    for (n, v) in names.iter().zip(values) {
        let j = match v {
            Bind::Text(t) => serde_json::json!(t),
            Bind::OptText(t) => serde_json::json!(t),
            Bind::Int(i) => serde_json::json!(i),
            Bind::OptInt(i) => serde_json::json!(i),
        };
        m.insert((*n).to_owned(), j);
    }
    serde_json::Value::Object(m)
}

fn approved() -> Approved {
    Approved {
        subject: "alice".into(),
        client_id: "https://app.example/c.json".into(),
        client_uid: "cu1".into(),
        redirect_uri: "http://127.0.0.1:5000/cb".into(),
        redirect_key: "http://127.0.0.1/cb".into(),
        code_challenge: CodeChallenge::from_stored("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
            .expect("challenge"),
        audience: Audience {
            resource: "http://localhost:8787/gw/demo/".into(),
            api_id: "demo_api".into(),
            api_uid: "ru1".into(),
        },
        scopes: vec!["demo_api:read".into(), "demo_api:write".into()],
    }
}

#[test]
fn client_profile_format_unchanged() {
    let p = ClientProfile {
        source: ClientSource::MetadataDocument,
        display_name: Some("Agent".into()),
        logo_uri: None,
        redirect_uris: vec!["http://127.0.0.1/cb".into(), "https://a.example/cb".into()],
        grant_types: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
        refresh_tokens: true,
        metadata_expires_at: Some(1_700_003_600),
        last_used_at: None,
    };
    let v = client_profile_values(&p).expect("values");
    assert_eq!(
        v,
        [
            Bind::Text("metadata".into()),
            Bind::OptText(Some("Agent".into())),
            Bind::OptText(None),
            Bind::Text(r#"["http://127.0.0.1/cb","https://a.example/cb"]"#.into()),
            Bind::OptText(Some("authorization_code refresh_token".into())),
            Bind::Int(1),
            Bind::OptInt(Some(1_700_003_600)),
            Bind::OptInt(None),
        ]
    );
    let row: ClientProfileRow =
        serde_json::from_value(row_json(CLIENT_PROFILE_COLUMNS, &v)).expect("row");
    assert_eq!(row.into_profile().expect("reads"), p);
    // the migration's defaults read as an administrator's client from before
    let legacy: ClientProfileRow = serde_json::from_value(serde_json::json!({
        "source": "admin", "display_name": null, "logo_uri": null, "redirect_uris": "[]",
        "grant_types": null, "refresh_tokens": 1, "metadata_expires_at": null, "last_used_at": null
    }))
    .expect("row");
    assert_eq!(
        legacy.into_profile().expect("reads"),
        ClientProfile::legacy()
    );
}

#[test]
fn unreadable_client_profiles_are_errors() {
    let base = serde_json::json!({
        "source": "admin", "display_name": null, "logo_uri": null, "redirect_uris": "[]",
        "grant_types": null, "refresh_tokens": 1, "metadata_expires_at": null, "last_used_at": null
    });
    for (field, value) in [
        ("source", serde_json::json!("robot")),
        ("redirect_uris", serde_json::json!("not json")),
        ("redirect_uris", serde_json::json!("{\"a\":1}")),
        (
            "grant_types",
            serde_json::json!("authorization_code implicit"),
        ),
    ] {
        let mut j = base.clone();
        j[field] = value;
        let row: ClientProfileRow = serde_json::from_value(j).expect("row");
        assert!(row.into_profile().is_err(), "{field}");
    }
}

#[test]
fn consent_and_code_formats_unchanged() {
    let c = PendingConsent {
        handle_hash: TokenHash([0xab; 32]),
        request: approved(),
        state: Some("s p".into()),
        created_at: 100,
        expires_at: 700,
        used_at: None,
    };
    let v = consent_values(&c);
    assert_eq!(
        consent_columns(),
        "handle_hash, subject, client_id, client_uid, redirect_uri, redirect_key, code_challenge, \
         resource, api_id, api_uid, scopes, state, created_at, expires_at, used_at"
    );
    assert_eq!(v[0], Bind::Text("ab".repeat(32)));
    assert_eq!(
        v[6],
        Bind::Text("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into())
    );
    assert_eq!(v[10], Bind::Text("demo_api:read demo_api:write".into()));
    let row: ConsentRow = serde_json::from_value(row_json(&consent_columns(), &v)).expect("row");
    assert_eq!(row.into_record().expect("reads"), c);

    let code = AuthorizationCode {
        hash: TokenHash([0x0f; 32]),
        grant_id: "g1".into(),
        approved: approved(),
        created_at: 100,
        expires_at: 160,
        used_at: Some(101),
    };
    let v = code_values(&code);
    assert_eq!(
        code_columns(),
        "code_hash, grant_id, subject, client_id, client_uid, redirect_uri, redirect_key, \
         code_challenge, resource, api_id, api_uid, scopes, created_at, expires_at, used_at"
    );
    assert_eq!(
        &v[..2],
        [Bind::Text("0f".repeat(32)), Bind::Text("g1".into())]
    );
    let row: CodeRow = serde_json::from_value(row_json(&code_columns(), &v)).expect("row");
    assert_eq!(row.into_record().expect("reads"), code);
    // a stored challenge that is not 32 bytes of base64url, or a bad hash, is an error
    let mut j = row_json(&code_columns(), &v);
    j["code_challenge"] = serde_json::json!("plain-verifier-stored-by-mistake");
    assert!(serde_json::from_value::<CodeRow>(j)
        .expect("row")
        .into_record()
        .is_err());
    let mut j = row_json(&code_columns(), &v);
    j["code_hash"] = serde_json::json!("zz");
    assert!(serde_json::from_value::<CodeRow>(j)
        .expect("row")
        .into_record()
        .is_err());
}

#[test]
#[allow(clippy::many_single_char_names)]
fn grant_refresh_and_approval_formats_unchanged() {
    let g = AppGrant {
        id: "g1".into(),
        subject: "alice".into(),
        client_id: "pgd_x".into(),
        client_uid: "cu1".into(),
        redirect_key: "http://127.0.0.1/cb".into(),
        audience: approved().audience,
        scopes: vec!["demo_api:read".into()],
        created_at: 100,
        last_used_at: Some(150),
        refresh_generation: 3,
        rotated_generation: 2,
        expires_at: 100 + 180 * 86_400,
        revoked_at: Some(200),
        revoked_reason: Some(GrantEnd::RefreshReuse),
    };
    let v = grant_values(&g);
    assert_eq!(v[15], Bind::OptText(Some("refresh_reuse".into())));
    assert_eq!((&v[11], &v[12]), (&Bind::Int(3), &Bind::Int(2)));
    let row: GrantRow = serde_json::from_value(row_json(GRANT_COLUMNS, &v)).expect("row");
    assert_eq!(row.into_record().expect("reads"), g);
    let mut j = row_json(GRANT_COLUMNS, &v);
    j["revoked_reason"] = serde_json::json!("whim");
    assert!(serde_json::from_value::<GrantRow>(j)
        .expect("row")
        .into_record()
        .is_err());

    let r = RefreshTokenRecord {
        hash: TokenHash([1; 32]),
        grant_id: "g1".into(),
        generation: 3,
        created_at: 150,
        idle_expires_at: 150 + 30 * 86_400,
        rotated_at: None,
    };
    let v = refresh_values(&r);
    assert_eq!(v[0], Bind::Text("01".repeat(32)));
    let row: RefreshRow = serde_json::from_value(row_json(REFRESH_COLUMNS, &v)).expect("row");
    assert_eq!(row.into_record().expect("reads"), r);

    let a = RememberedApproval {
        subject: "alice".into(),
        client_uid: "cu1".into(),
        redirect_key: "http://127.0.0.1/cb".into(),
        resource: "http://localhost:8787/gw/demo/".into(),
        scopes: vec!["demo_api:read".into()],
        approved_at: 100,
    };
    let row: ApprovalRow =
        serde_json::from_value(row_json(APPROVAL_COLUMNS, &approval_values(&a))).expect("row");
    assert_eq!(row.into_record(), a);
}

/// The statements the contracts describe, pinned (they were run against the migrated schema;
/// a change needs the same check again).
#[test]
fn conditional_statements_are_pinned() {
    assert!(
        sql::CONSUME_CODE.contains("WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2")
    );
    assert!(sql::TAKE_CONSENT.contains("subject = ?2 AND used_at IS NULL AND expires_at > ?3"));
    assert!(sql::ROTATE_GRANT.contains("refresh_generation = ?2 - 1 AND revoked_at IS NULL"));
    assert!(sql::INSERT_NEXT.starts_with("INSERT OR IGNORE"));
    assert!(sql::PUT_METADATA_CLIENT.contains("WHERE clients.source = 'metadata'"));
    assert!(sql::REVOKE_GRANT_TOKENS.ends_with("RETURNING token_hash"));
}
