//! The Plan Réseau API and the engine's reports, as PRODUCT.md's contract writes them: keys,
//! the balance, launches with their Idempotency-Key, refusals in the check order, bad input,
//! and the caps under concurrency (with two processes).

use std::sync::Arc;

use nanoclip::services::generations::{self, LaunchOutcome, LaunchRequest, Via};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, spawn_app_with, test_config, text};
use crate::credits::assert_ledger_clean;

const ENGINE_TOKEN: &str = "engine-token-for-the-tests-0123456789abcdef";

async fn app() -> TestApp {
    let mut config = test_config();
    config.engine_token = Some(ENGINE_TOKEN.into());
    config.engine = nanoclip::config::Engine::External;
    spawn_app_with(config, None).await
}

/// A Plan Réseau organisation (150 credits) and an API key for it.
async fn reseau_key(app: &TestApp) -> (Uuid, String) {
    let owner = app.owner("reseau").await;
    let (_, key) = nanoclip::services::api_keys::create(
        &app.pool,
        owner.org(),
        true,
        "Tests",
        "cli",
        None,
        app.clock.now(),
    )
    .await
    .unwrap();
    (owner.org(), key)
}

/// How many holds the organisation has (any state).
async fn holds_of(app: &TestApp, org: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(DISTINCT hold_id) FROM credit_ledger WHERE organisation_id = $1 AND kind = 'hold'")
        .bind(org)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn raise(app: &TestApp, org: Uuid, daily: i32, monthly: i64, concurrent: i32) {
    let mut conn = app.pool.acquire().await.unwrap();
    let today = nanoclip::db::credits::paris_date(&mut conn, app.clock.now())
        .await
        .unwrap();
    nanoclip::db::generations::raise_limits(
        &mut conn,
        org,
        daily,
        monthly,
        concurrent,
        today,
        today + time::Duration::days(1),
        "test",
        "cli",
        app.clock.now(),
    )
    .await
    .unwrap();
}

async fn post(app: &TestApp, key: &str, idempotency: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url("/api/v1/generations"))
        .bearer_auth(key)
        .json(body);
    if let Some(k) = idempotency {
        request = request.header("Idempotency-Key", k);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, key: &str, path: &str) -> (u16, Value) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn report(app: &TestApp, id: &str, status: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/moteur/generations/{id}")))
        .bearer_auth(ENGINE_TOKEN)
        .json(&json!({ "status": status }))
        .send()
        .await
        .unwrap();
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_contract_s_examples_are_answered_as_written() {
    let app = app().await;
    let (org, key) = reseau_key(&app).await;
    let (status, solde) = get(&app, &key, "/api/v1/solde").await;
    assert_eq!(status, 200);
    assert_eq!(solde["available"], 150);
    assert_eq!(solde["held"], 0);
    assert_eq!(solde["buckets"][0]["source"], "allotment");
    assert_eq!(solde["buckets"][0]["remaining"], 150);
    assert_eq!(solde["buckets"][0]["restricted_to"], Value::Null);
    assert!(
        solde["buckets"][0]["expires_at"]
            .as_str()
            .unwrap()
            .ends_with(":00:00Z"),
        "{solde}"
    );
    assert_eq!(
        solde["limits"],
        json!({"daily": {"used": 0, "cap": 60}, "monthly": {"used": 0, "cap": 450}, "concurrent": {"used": 0, "cap": 4}})
    );
    assert_eq!(solde["low_balance_threshold"], 5);

    let body = json!({"type": "video", "duree": 10, "format": "16:9", "prompt": "Une vidéo de Noël pour la paroisse"});
    let (status, launched) = post(&app, &key, Some("noel-1"), &body).await;
    assert_eq!(status, 201, "{launched}");
    assert_eq!(launched["status"], "running");
    assert_eq!(launched["credits_held"], 3);
    assert_eq!(launched["available"], 147);
    let id = launched["id"].as_str().unwrap().to_owned();
    // The same key and body: the same answer, no second hold.
    let (again_status, again) = post(&app, &key, Some("noel-1"), &body).await;
    assert_eq!((again_status, &again), (201, &launched));
    // The same key, another body: 422.
    let (status, conflict) = post(&app, &key, Some("noel-1"), &json!({"type": "image"})).await;
    assert_eq!(status, 422);
    assert_eq!(conflict["error"]["code"], "idempotency_conflict");
    let (_, solde) = get(&app, &key, "/api/v1/solde").await;
    assert_eq!(
        (solde["available"].clone(), solde["held"].clone()),
        (json!(147), json!(3))
    );
    assert_eq!(solde["limits"]["concurrent"]["used"], 1);

    let (status, one) = get(&app, &key, &format!("/api/v1/generations/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["type"], "video");
    assert_eq!(one["status"], "running");
    assert_eq!(one["credits_held"], 3);
    assert_eq!(one["credits_charged"], 0);
    assert_eq!(one["finished_at"], Value::Null);
    assert!(one["created_at"].as_str().unwrap().ends_with('Z'));
    let (status, list) = get(&app, &key, "/api/v1/generations?status=running&limit=50").await;
    assert_eq!(status, 200);
    assert_eq!(list["generations"].as_array().unwrap().len(), 1);
    assert_eq!(list["generations"][0], one);

    // The engine reports: succeeded captures; the same report again, the same 200; the other
    // outcome, 409.
    let (status, done) = report(&app, &id, "succeeded").await;
    assert_eq!(status, 200);
    assert_eq!(
        done,
        json!({"id": id, "status": "succeeded", "credits_charged": 3})
    );
    assert_eq!(report(&app, &id, "succeeded").await, (200, done));
    // Read through the open holds: a finished generation is no longer running.
    let (_, list) = get(&app, &key, "/api/v1/generations?status=running&limit=50").await;
    assert_eq!(list["generations"], json!([]));
    let (status, refused) = report(&app, &id, "failed").await;
    assert_eq!(status, 409);
    assert_eq!(refused["error"]["code"], "conflict");
    assert_eq!(
        report(&app, &Uuid::new_v4().to_string(), "failed").await.0,
        404
    );
    let (_, solde) = get(&app, &key, "/api/v1/solde").await;
    assert_eq!(
        (solde["available"].clone(), solde["held"].clone()),
        (json!(147), json!(0))
    );
    // Failed: released.
    let (_, second) = post(&app, &key, Some("noel-2"), &json!({"type": "image"})).await;
    let second = second["id"].as_str().unwrap().to_owned();
    assert_eq!(
        report(&app, &second, "failed").await.1["credits_charged"],
        0
    );
    let (_, solde) = get(&app, &key, "/api/v1/solde").await;
    assert_eq!(solde["available"], 147);
    // Another organisation's generation is not found.
    let (_, other_key) = reseau_key(&app).await;
    assert_eq!(
        get(&app, &other_key, &format!("/api/v1/generations/{id}"))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&app, &other_key, "/api/v1/generations/pas-un-uuid")
            .await
            .0,
        404
    );
    let _ = org;
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn keys_are_checked_and_the_plan_must_have_the_api() {
    let app = app().await;
    let (org, key) = reseau_key(&app).await;
    for auth in [
        None,
        Some("Bearer nanoclip_live_inconnue"),
        Some("Basic abc"),
        Some("Bearer "),
    ] {
        let mut request = app.client.get(app.url("/api/v1/solde"));
        if let Some(a) = auth {
            request = request.header("Authorization", a);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    // A revoked key.
    let keys = nanoclip::services::api_keys::list(&app.pool, org)
        .await
        .unwrap();
    nanoclip::services::api_keys::revoke(&app.pool, org, keys[0].id, app.clock.now())
        .await
        .unwrap();
    assert_eq!(get(&app, &key, "/api/v1/solde").await.0, 401);
    // A plan without the API: 403, and no key can be made for it.
    let (org, key) = reseau_key(&app).await;
    sqlx::query("UPDATE organisations SET plan_id = 'eglise' WHERE id = $1")
        .bind(org)
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, body) = get(&app, &key, "/api/v1/solde").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    let refused = nanoclip::services::api_keys::create(
        &app.pool,
        org,
        false,
        "x",
        "cli",
        None,
        app.clock.now(),
    )
    .await;
    assert!(matches!(
        refused,
        Err(nanoclip::services::api_keys::KeyError::PlanWithoutApi)
    ));
}

#[tokio::test]
async fn bad_input_gets_the_contract_s_json_never_html_nor_a_500() {
    let app = app().await;
    let (_, key) = reseau_key(&app).await;
    let send = |body: Vec<u8>, content_type: &'static str, idempotency: Option<&'static str>| {
        let mut request = app
            .client
            .post(app.url("/api/v1/generations"))
            .bearer_auth(&key)
            .header("Content-Type", content_type)
            .body(body);
        if let Some(k) = idempotency {
            request = request.header("Idempotency-Key", k);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let body: Value = response.json().await.unwrap();
            (status, content_type, body)
        }
    };
    type Case = (
        Vec<u8>,
        &'static str,
        Option<&'static str>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            b"{\"type\": \"video\"".to_vec(),
            "application/json",
            Some("a"),
            400,
            "body",
        ),
        (
            b"[1, 2]".to_vec(),
            "application/json",
            Some("b"),
            400,
            "body",
        ),
        (
            b"type=video".to_vec(),
            "application/x-www-form-urlencoded",
            Some("c"),
            400,
            "Content-Type",
        ),
        (
            b"{\"type\": \"video\", \"duree\": 10}".to_vec(),
            "application/json",
            None,
            400,
            "Idempotency-Key",
        ),
        (
            b"{\"type\": \"video\", \"duree\": 99}".to_vec(),
            "application/json",
            Some("d"),
            400,
            "duree",
        ),
        (
            b"{\"type\": \"hologramme\"}".to_vec(),
            "application/json",
            Some("e"),
            400,
            "type",
        ),
        // The prompt is text: a number is refused, not taken for its digits (schemathesis,
        // ST201: `{"type": "image", "prompt": 12}` was launched).
        (
            b"{\"type\": \"image\", \"prompt\": 12}".to_vec(),
            "application/json",
            Some("e-prompt"),
            400,
            "prompt",
        ),
        (
            b"{\"type\": \"image\", \"quantite\": 2}".to_vec(),
            "application/json",
            Some("f"),
            400,
            "quantite",
        ),
        (
            b"{\"type\": \"image\", \"duree\": [1]}".to_vec(),
            "application/json",
            Some("g"),
            400,
            "duree",
        ),
    ];
    for (body, content_type, idempotency, want, field) in cases {
        let (status, got_type, json) = send(body.clone(), content_type, idempotency).await;
        assert_eq!(status, want, "{}", String::from_utf8_lossy(&body));
        assert!(got_type.starts_with("application/json"));
        assert!(
            json["errors"][field]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{field}: {json}"
        );
    }
    // Worded for what is wrong: one render per request (not « entre 1 et 1 »), a negative
    // duration out of range (not « not a whole number »).
    for (body, key, field, message) in [
        (
            "{\"type\": \"image\", \"quantite\": 2}",
            "f2",
            "quantite",
            "Une génération à la fois ici\u{202f}: la quantité vaut 1, ou s’omet.",
        ),
        (
            "{\"type\": \"video\", \"duree\": -5}",
            "f3",
            "duree",
            "La durée doit être comprise entre 5 et 15 secondes pour ce type de création.",
        ),
    ] {
        let (_, _, json) = send(body.as_bytes().to_vec(), "application/json", Some(key)).await;
        assert_eq!(json["errors"][field], message, "{json}");
    }
    let (status, _, json) = send(vec![b' '; 70 * 1024], "application/json", Some("h")).await;
    assert_eq!(status, 413);
    assert_eq!(json["error"]["code"], "payload_too_large");
    let long_key: &'static str = Box::leak("k".repeat(256).into_boxed_str());
    let (status, _, json) = send(b"{}".to_vec(), "application/json", Some(long_key)).await;
    assert_eq!(status, 400);
    assert!(json["errors"]["Idempotency-Key"].is_string());
    for path in [
        "/api/v1/generations?status=perdu",
        "/api/v1/generations?limit=0",
        "/api/v1/generations?limit=201",
        "/api/v1/generations?limit=abc",
    ] {
        let (status, json) = get(&app, &key, path).await;
        assert_eq!(status, 400, "{path}");
        assert!(json["errors"].is_object(), "{path}");
    }
    // A stored 400 is replayed for the same key and body.
    let (first, _, one) = send(
        b"{\"type\": \"video\", \"duree\": 99}".to_vec(),
        "application/json",
        Some("d"),
    )
    .await;
    assert_eq!((first, one["errors"]["duree"].is_string()), (400, true));
}

/// A raw `POST /api/v1/generations` (any content type and body), with its Idempotency-Key.
async fn post_raw(
    app: &TestApp,
    key: &str,
    idempotency: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/generations"))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency)
        .header("Content-Type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_answer_given_before_the_launch_is_kept_with_its_key_too() {
    let app = app().await;
    let (org, key) = reseau_key(&app).await;
    let json = "application/json";
    // A key once launched: another body, even one refused before any launch, is 422; the
    // same body, whatever its content type, gets the first answer again.
    let (status, first) = post_raw(&app, &key, "k-lancee", json, r#"{"type":"image"}"#).await;
    assert_eq!(status, 201, "{first}");
    for (content_type, body) in [
        (json, r#"{"type":["video"]}"#),
        (json, "{\"type\":"),
        ("text/plain", "x"),
    ] {
        let (status, answer) = post_raw(&app, &key, "k-lancee", content_type, body).await;
        assert_eq!(status, 422, "{content_type} {body}: {answer}");
        assert_eq!(answer["error"]["code"], "idempotency_conflict");
    }
    let (status, again) =
        post_raw(&app, &key, "k-lancee", "text/plain", r#"{"type":"image"}"#).await;
    assert_eq!((status, &again), (201, &first));
    // A key first answered 400 before any launch (not JSON, a wrong content type, a field of the
    // wrong type) keeps that answer: the same body gets it again, another body 422, and the key
    // never launches.
    for (n, (content_type, body)) in [
        (json, "{\"type\":"),
        ("text/plain", r#"{"type":"video"}"#),
        (json, r#"{"type":["video"]}"#),
    ]
    .into_iter()
    .enumerate()
    {
        let idempotency = format!("k-400-{n}");
        let (status, refused) = post_raw(&app, &key, &idempotency, content_type, body).await;
        assert_eq!(status, 400, "{body}: {refused}");
        assert!(refused["errors"].is_object(), "{refused}");
        let (status, again) = post_raw(&app, &key, &idempotency, content_type, body).await;
        assert_eq!((status, &again), (400, &refused));
        let (status, other) = post(&app, &key, Some(&idempotency), &json!({"type": "image"})).await;
        assert_eq!(status, 422, "{body}: {other}");
    }
    assert_eq!(holds_of(&app, org).await, 1);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = app().await;
    let (_, key) = reseau_key(&app).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = app
            .client
            .get(app.url("/api/v1/solde"))
            .header("Authorization", format!("{scheme} {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
        let response = app
            .client
            .post(app.url("/api/v1/moteur/generations/00000000-0000-0000-0000-000000000000"))
            .header("Authorization", format!("{scheme} {ENGINE_TOKEN}"))
            .json(&json!({"status": "succeeded"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{scheme}");
    }
}

/// JSON Schema's `integer` (the OpenAPI document's) holds `10.0`: the launch takes it as 10,
/// and a fraction is still not a whole number.
#[tokio::test]
async fn a_whole_number_written_with_a_decimal_point_is_that_number() {
    let app = app().await;
    let (_, key) = reseau_key(&app).await;
    let body = json!({"type": "mini-livre", "pages": 10.0, "quantite": 1.0});
    let (status, launched) = post(&app, &key, Some("decimal-1"), &body).await;
    assert_eq!(status, 201, "{launched}");
    let body = json!({"type": "mini-livre", "pages": 10.5});
    let (status, invalid) = post(&app, &key, Some("decimal-2"), &body).await;
    assert_eq!(status, 400, "{invalid}");
    assert!(invalid["errors"]["pages"].is_string(), "{invalid}");
}

#[tokio::test]
async fn refusals_come_in_the_check_order_with_their_status_and_hold_nothing() {
    let app = app().await;
    let (org, key) = reseau_key(&app).await;
    let (status, body) = post(
        &app,
        &key,
        Some("p"),
        &json!({"type": "image", "prompt": "une image sexy et suggestive"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["refusal"]["rule"], "prompt");
    for i in 0..4 {
        assert_eq!(
            post(
                &app,
                &key,
                Some(&format!("c{i}")),
                &json!({"type": "image"})
            )
            .await
            .0,
            201
        );
    }
    let (status, body) = post(&app, &key, Some("c5"), &json!({"type": "image"})).await;
    assert_eq!(status, 429);
    assert_eq!(body["refusal"]["rule"], "concurrency");
    assert!(
        body["refusal"]["message"]
            .as_str()
            .unwrap()
            .contains("Attendez la fin d’un rendu")
    );
    // The prompt comes before concurrency.
    let (_, body) = post(
        &app,
        &key,
        Some("c6"),
        &json!({"type": "image", "prompt": "de la drogue et de l’alcool à volonté"}),
    )
    .await;
    assert_eq!(body["refusal"]["rule"], "prompt");
    // Balance: 146 left; 20 pages of rich mini-book cost 16 on Réseau; with the caps raised,
    // ten of them leave too little.
    raise(&app, org, 100, 10_000, 100).await;
    let mut last = (0, Value::Null);
    for i in 0..10 {
        last = post(
            &app,
            &key,
            Some(&format!("b{i}")),
            &json!({"type": "mini-livre", "pages": 20, "illustrations": "riches"}),
        )
        .await;
    }
    assert_eq!(last.0, 402, "{}", last.1);
    assert_eq!(last.1["refusal"]["rule"], "balance");
    // Suspended: 403 before anything else.
    sqlx::query("UPDATE organisations SET suspended_at = now() WHERE id = $1")
        .bind(org)
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, body) = post(&app, &key, Some("s"), &json!({"type": "image"})).await;
    assert_eq!(
        (status, body["refusal"]["rule"].clone()),
        (403, json!("suspended"))
    );
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM generations WHERE status = 'refused' AND hold_id IS NOT NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(held, 0);
    assert_ledger_clean(&app.pool).await;
}

fn rules() -> nanoclip::domain::prompt::PromptRules {
    let text =
        std::fs::read_to_string(crate::common::project_dir().join("content/prompt-rules.toml"))
            .unwrap();
    nanoclip::domain::prompt::PromptRules::from_toml(&text).unwrap()
}

/// A launch of an image through `via`'s service: the portal's form (`launch`), or the API's
/// (`launch_idempotent`, its own Idempotency-Key); answered `launched`, the rule that refused
/// it, or `error`.
async fn service_launch(
    pool: &sqlx::PgPool,
    catalog: &nanoclip::services::catalog::Catalog,
    rules: &nanoclip::domain::prompt::PromptRules,
    org: Uuid,
    who: String,
    via: Via,
) -> &'static str {
    let raw: nanoclip::domain::simulation::RawSimulation =
        serde_urlencoded::from_str("type=image").unwrap();
    let key = format!("key-{who}");
    let request = LaunchRequest {
        organisation: org,
        raw,
        via,
        launched_by: &who,
        key: (via == Via::Api).then_some(key.as_str()),
    };
    let now = time::OffsetDateTime::now_utc();
    let outcome = if via == Via::Portal {
        generations::launch(pool, catalog, rules, &request, now).await
    } else {
        let answer = |outcome: &LaunchOutcome| generations::Answer {
            status: if matches!(outcome, LaunchOutcome::Launched { .. }) {
                201
            } else {
                429
            },
            // The balance after the hold in a launch's answer, as the API's (the one-statement
            // launch writes it there); the rule in a refusal's.
            body: match outcome {
                LaunchOutcome::Launched { available, .. } => available.0.to_string(),
                LaunchOutcome::Refused { refusal, .. } => refusal.rule().to_owned(),
                LaunchOutcome::Invalid(_) => String::new(),
            },
        };
        match generations::launch_idempotent(pool, catalog, rules, &request, "fp", answer, now)
            .await
        {
            Ok(generations::Idempotent::Answer(a)) if a.status == 201 => return "launched",
            Ok(generations::Idempotent::Answer(a)) => {
                return match a.body.as_str() {
                    "daily_cap" => "daily_cap",
                    "balance" => "balance",
                    "concurrency" => "concurrency",
                    "monthly_cap" => "monthly_cap",
                    _ => "refused",
                };
            }
            Ok(other) => {
                eprintln!("launch error: {other:?}");
                return "error";
            }
            Err(error) => Err(error),
        }
    };
    match outcome {
        Ok(LaunchOutcome::Launched { .. }) => "launched",
        Ok(LaunchOutcome::Refused { refusal, .. }) => refusal.rule(),
        Ok(LaunchOutcome::Invalid(_)) => "invalid",
        Err(error) => {
            // Said, so that a failure of a storm test tells which error it met.
            eprintln!("launch error: {error:?}");
            "error"
        }
    }
}

/// `n` launches of an image at once, through `via`'s service: the portal's form, or the API
/// with an Idempotency-Key each. Through the API the first is made alone: an organisation's first
/// launch in a process runs in a transaction, the others may be made in one statement with the
/// context it found.
async fn concurrent_launches(
    pool: &sqlx::PgPool,
    org: Uuid,
    n: usize,
    tag: &str,
    via: Via,
) -> Vec<&'static str> {
    let catalog = nanoclip::services::catalog::CatalogCache::default()
        .get(pool)
        .await
        .unwrap();
    let rules = rules();
    let (catalog, rules) = (&catalog, &rules);
    let launch = move |i: usize| async move {
        let who = match via {
            Via::Api => format!("api-key:{tag}-{i}"),
            Via::Portal => format!("user:{tag}-{i}"),
        };
        service_launch(pool, catalog, rules, org, who, via).await
    };
    let mut outcomes = Vec::new();
    if via == Via::Api && n > 0 {
        outcomes.push(launch(0).await);
    }
    let launches = (outcomes.len()..n).map(launch);
    outcomes.extend(futures_util::future::join_all(launches).await);
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_launches_against_a_daily_cap_of_15_launch_exactly_15() {
    let app = app().await;
    let (org, _) = reseau_key(&app).await;
    raise(&app, org, 15, 10_000, 100).await;
    let outcomes = concurrent_launches(&app.pool, org, 50, "a", Via::Portal).await;
    assert_eq!(
        outcomes.iter().filter(|o| **o == "launched").count(),
        15,
        "{outcomes:?}"
    );
    assert_eq!(outcomes.iter().filter(|o| **o == "daily_cap").count(), 35);
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrency_cap_of_4_never_lets_a_fifth_render_run() {
    let app = app().await;
    let (org, _) = reseau_key(&app).await;
    let outcomes = concurrent_launches(&app.pool, org, 30, "a", Via::Portal).await;
    assert_eq!(
        outcomes.iter().filter(|o| **o == "launched").count(),
        4,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| *o == "launched" || *o == "concurrency")
    );
    let running: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM generations WHERE organisation_id = $1 AND status = 'running'",
    )
    .bind(org)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(running, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_of_one_key_hold_once() {
    let app = app().await;
    let (org, key) = reseau_key(&app).await;
    let body = json!({"type": "image"});
    let requests: Vec<_> = (0..12)
        .map(|_| post(&app, &key, Some("same-key"), &body))
        .collect();
    let answers = futures_util::future::join_all(requests).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|b| b["id"] == created[0]["id"]),
        "one generation: {answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 201
                || (*s == 409 && b["error"]["code"] == "idempotency_in_progress")),
        "{answers:?}"
    );
    assert_eq!(holds_of(&app, org).await, 1);
}

/// The same key while another instance of the portal is still answering it (its transaction
/// holds the key's advisory lock): 409 `idempotency_in_progress`, nothing held; once that
/// instance is done (here: it died, its transaction rolled back), the key launches as new.
/// `launched_before`: the launches made first (none: the organisation's first launch, made in
/// the portal's transaction; one: its context is known, the launch is the one statement
/// `generation_launch_fast`, which takes the key's lock itself).
async fn a_key_being_answered_elsewhere(launched_before: i64) {
    let app = app().await;
    let (org, key) = reseau_key(&app).await;
    let body = json!({"type": "image"});
    for i in 0..launched_before {
        let (status, first) = post(&app, &key, Some(&format!("avant-{i}")), &body).await;
        assert_eq!(status, 201, "{first}");
    }
    let mut other_instance = app.pool.begin().await.unwrap();
    let locked =
        nanoclip::db::generations::try_lock_idempotency_key(&mut other_instance, org, "ailleurs")
            .await
            .unwrap();
    assert!(locked);
    let (status, answer) = post(&app, &key, Some("ailleurs"), &body).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "idempotency_in_progress");
    assert_eq!(holds_of(&app, org).await, launched_before);
    other_instance.rollback().await.unwrap();
    let (status, answer) = post(&app, &key, Some("ailleurs"), &body).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(holds_of(&app, org).await, launched_before + 1);
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn a_key_being_answered_by_another_instance_is_in_progress() {
    a_key_being_answered_elsewhere(0).await;
}

#[tokio::test]
async fn a_key_being_answered_elsewhere_is_in_progress_for_the_one_statement_launch_too() {
    a_key_being_answered_elsewhere(1).await;
}

/// A burst of launches on one organisation waits for its turn inside the portal, not on pooled
/// connections (#12): while the organisation's account is locked for longer than the pool's
/// acquire timeout (3 s), 60 launches on it (3 times the pool's 20 connections) wait, another
/// organisation's launch is answered meanwhile, and once the lock is gone all 60 are answered
/// 201. Before the turns, the burst held every connection while waiting for the row: the others
/// got « pool timed out » (503), the other organisation's launch too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_on_one_organisation_waits_its_turn_without_taking_the_pool() {
    let app = app().await;
    let (org, key) = reseau_key(&app).await;
    raise(&app, org, 100, 10_000, 100).await;
    let (_, other_key) = reseau_key(&app).await;
    let body = json!({"type": "image"});
    let mut locker = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM credit_accounts WHERE organisation_id = $1 FOR UPDATE")
        .bind(org)
        .execute(&mut *locker)
        .await
        .unwrap();
    let keys: Vec<String> = (0..60).map(|i| format!("rafale-{i}")).collect();
    let burst = futures_util::future::join_all(
        keys.iter()
            .map(|k| post(&app, &key, Some(k.as_str()), &body)),
    );
    let other = async {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        post(&app, &other_key, Some("ailleurs"), &body).await
    };
    let unlock = async {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        locker.commit().await.unwrap();
    };
    let (answers, other, ()) = tokio::join!(burst, other, unlock);
    assert_eq!(other.0, 201, "{other:?}");
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s != 201).collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(holds_of(&app, org).await, 60);
    assert_ledger_clean(&app.pool).await;
}

/// Run by the two-process test: 100 launches of an image through the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by two_hundred_launches_on_100_credits_from_two_processes_launch_exactly_100"]
async fn launch_storm_second_process() {
    let Ok(url) = std::env::var("NANOCLIP_STORM_DATABASE_URL") else {
        return;
    };
    let org: Uuid = std::env::var("NANOCLIP_STORM_ORGANISATION")
        .unwrap()
        .parse()
        .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect(&url)
        .await
        .unwrap();
    let n = std::env::var("NANOCLIP_STORM_LAUNCHES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let via = if std::env::var("NANOCLIP_STORM_VIA").as_deref() == Ok("api") {
        Via::Api
    } else {
        Via::Portal
    };
    let outcomes = concurrent_launches(&pool, org, n, "second", via).await;
    let launched = outcomes.iter().filter(|o| **o == "launched").count();
    let errors = outcomes.iter().filter(|o| **o == "error").count();
    println!(
        "LAUNCHES {launched} {errors} {}",
        generations::fast_answers()
    );
}

/// `n` launches in this process and `n` in a second one at the same time, on one organisation,
/// through the portal's service or the API's (`via`): this process's outcomes, and the second's
/// launches and launches answered in one statement (it must have met no error).
async fn two_process_storm(
    app: &TestApp,
    org: Uuid,
    via: Via,
    n: usize,
) -> (Vec<&'static str>, usize, u64) {
    let second = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "api_reseau::launch_storm_second_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("NANOCLIP_STORM_DATABASE_URL", app.database_url())
        .env("NANOCLIP_STORM_ORGANISATION", org.to_string())
        .env("NANOCLIP_STORM_LAUNCHES", n.to_string())
        .env(
            "NANOCLIP_STORM_VIA",
            if via == Via::Api { "api" } else { "portal" },
        )
        .output();
    let here = concurrent_launches(&app.pool, org, n, "first", via);
    let (second, here) = tokio::join!(second, here);
    let second = second.unwrap();
    let stdout = String::from_utf8_lossy(&second.stdout).to_string();
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("LAUNCHES "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let there: Vec<u64> = line.split(' ').map(|n| n.parse().unwrap()).collect();
    assert_eq!(
        there[1],
        0,
        "no errors in the second process: {}",
        String::from_utf8_lossy(&second.stderr)
            .lines()
            .filter(|l| l.starts_with("launch error"))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
    (here, there[0] as usize, there[2])
}

/// The balance of 100 credits left to an organisation whose caps are out of the way.
async fn hundred_credits_without_caps(app: &TestApp, org: Uuid) {
    raise(app, org, 10_000, 10_000, 10_000).await;
    // 150 allotted: 50 taken off, 100 left.
    nanoclip::services::credits::adjust(
        &app.pool,
        nanoclip::services::credits::Adjustment {
            organisation: org,
            credits: nanoclip::domain::money::Credits(-50),
            reason: "test",
            last_day: None,
            key: "minus-50",
            actor: "cli",
        },
        app.clock.now(),
    )
    .await
    .unwrap();
}

/// 100 launches in this process and 100 in a second one, through `via`'s service, on an
/// organisation with 100 credits and no cap in the way: exactly 100 launch, the others are
/// refused for the balance, nothing is left, and the ledger is clean. The launches answered in
/// one statement, here and there.
async fn two_hundred_launches_on_100_credits(via: Via) -> (u64, u64) {
    let app = app().await;
    let (org, _) = reseau_key(&app).await;
    hundred_credits_without_caps(&app, org).await;
    let (here, there, fast_there) = two_process_storm(&app, org, via, 100).await;
    let launched_here = here.iter().filter(|o| **o == "launched").count();
    assert!(
        here.iter().all(|o| *o == "launched" || *o == "balance"),
        "{here:?}"
    );
    assert_eq!(launched_here + there, 100, "{here:?}");
    assert_eq!(
        nanoclip::services::credits::available(&app.pool, org, time::OffsetDateTime::now_utc())
            .await
            .unwrap()
            .0,
        0
    );
    assert_ledger_clean(&app.pool).await;
    (generations::fast_answers(), fast_there)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_launches_on_100_credits_from_two_processes_launch_exactly_100() {
    two_hundred_launches_on_100_credits(Via::Portal).await;
}

/// The same storm through the API's service, where launches after an organisation's first are
/// made in one statement (`generation_launch_fast`): the balance still stops them at exactly
/// 100, from two processes whose launches meet only in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_api_launches_on_100_credits_from_two_processes_launch_exactly_100() {
    let (fast_here, fast_there) = two_hundred_launches_on_100_credits(Via::Api).await;
    assert!(
        fast_here > 0 && fast_there > 0,
        "launches in one statement: {fast_here} here, {fast_there} there"
    );
}

/// API launches from two processes against a daily cap of 15: exactly 15, though most are
/// made in one statement, whose usage bounds the database checks under the account's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_launches_from_two_processes_against_a_daily_cap_of_15_launch_exactly_15() {
    let app = app().await;
    let (org, _) = reseau_key(&app).await;
    raise(&app, org, 15, 10_000, 10_000).await;
    let (here, there, fast_there) = two_process_storm(&app, org, Via::Api, 40).await;
    let launched_here = here.iter().filter(|o| **o == "launched").count();
    assert!(
        here.iter().all(|o| *o == "launched" || *o == "daily_cap"),
        "{here:?}"
    );
    assert_eq!(launched_here + there, 15, "{here:?}");
    assert!(
        generations::fast_answers() + fast_there > 0,
        "no launch was made in one statement"
    );
    assert_ledger_clean(&app.pool).await;
}

/// A launch in one statement expects the organisation as its last launch found it: after a
/// suspension, or a raise that lowers the cap to what is used, the database finds it otherwise,
/// writes nothing, and the launch made in a transaction is refused with its rule (and kept).
#[tokio::test]
async fn a_launch_in_one_statement_finds_a_changed_organisation_and_the_rules_decide() {
    let app = app().await;
    let (org, key) = reseau_key(&app).await;
    let image = json!({ "type": "image" });
    let fast = generations::fast_answers();
    assert_eq!(post(&app, &key, Some("first"), &image).await.0, 201);
    assert_eq!(
        generations::fast_answers(),
        fast,
        "the first is made in a transaction"
    );
    let (status, second) = post(&app, &key, Some("second"), &image).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(
        generations::fast_answers(),
        fast + 1,
        "the second in one statement"
    );
    // The same key again: the stored answer, as written in that statement.
    let (again_status, again) = post(&app, &key, Some("second"), &image).await;
    assert_eq!((again_status, &again), (201, &second));
    // The balance after the hold, written into the answer by the database.
    let available = nanoclip::services::credits::available(&app.pool, org, app.clock.now())
        .await
        .unwrap();
    assert_eq!(second["available"], json!(available.0));
    assert_eq!(second["credits_held"], json!(1));

    // A raise down to the two launches of today: the cap refuses the third.
    raise(&app, org, 2, 10_000, 10).await;
    let (status, refused) = post(&app, &key, Some("third"), &image).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["refusal"]["rule"], "daily_cap");

    // Suspended by staff: every launch is refused, the first rule.
    raise(&app, org, 100, 10_000, 10).await;
    assert_eq!(post(&app, &key, Some("fourth"), &image).await.0, 201);
    sqlx::query("UPDATE organisations SET suspended_at = now() WHERE id = $1")
        .bind(org)
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, refused) = post(&app, &key, Some("fifth"), &image).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["refusal"]["rule"], "suspended");
    let kept: Vec<String> = sqlx::query_scalar(
        "SELECT refusal_rule FROM generations WHERE organisation_id = $1 AND status = 'refused' ORDER BY created_at",
    )
    .bind(org)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(kept, ["daily_cap", "suspended"]);
    assert_eq!(holds_of(&app, org).await, 3);
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn a_generation_without_a_report_expires_and_a_late_report_is_refused() {
    let app = app().await;
    let (_, key) = reseau_key(&app).await;
    let (_, launched) = post(&app, &key, Some("late"), &json!({"type": "image"})).await;
    let id = launched["id"].as_str().unwrap().to_owned();
    // The job runs late (the portal was down): the generation still expired 30 minutes after
    // its launch.
    let later = app.clock.now() + time::Duration::minutes(75);
    assert_eq!(
        generations::expire_overdue(&app.pool, later).await.unwrap(),
        1
    );
    let (_, one) = get(&app, &key, &format!("/api/v1/generations/{id}")).await;
    assert_eq!(one["status"], "expired");
    let parse = |field: &str| {
        time::OffsetDateTime::parse(
            one[field].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert_eq!(
        parse("finished_at") - parse("created_at"),
        time::Duration::minutes(30)
    );
    assert_eq!(report(&app, &id, "succeeded").await.0, 409);
    let (_, solde) = get(&app, &key, "/api/v1/solde").await;
    assert_eq!(solde["available"], 150);
}

/// A report that arrives past the generation's timeout, before the job has expired it: the
/// generation expires (its hold released, nothing charged) and the report is refused. The
/// report's one statement leaves this case to the portal's transaction: nothing is captured.
#[tokio::test]
async fn a_report_past_the_timeout_expires_the_generation_before_the_job_does() {
    let app = app().await;
    let (org, key) = reseau_key(&app).await;
    let (_, launched) = post(&app, &key, Some("tard"), &json!({"type": "image"})).await;
    let id: Uuid = launched["id"].as_str().unwrap().parse().unwrap();
    let later = app.clock.now() + time::Duration::minutes(31);
    let answer = generations::report(&app.pool, id, generations::Outcome::Succeeded, later)
        .await
        .unwrap();
    let generations::Report::Conflict(generation) = answer else {
        panic!("a report past the timeout was accepted: {answer:?}");
    };
    assert_eq!(generation.status, "expired");
    assert_eq!(generation.credits_charged, 0);
    let (_, solde) = get(&app, &key, "/api/v1/solde").await;
    assert_eq!(solde["available"], 150);
    assert_eq!(holds_of(&app, org).await, 1);
    assert_ledger_clean(&app.pool).await;
}

/// 24 reports of one generation at once, half `succeeded` and half `failed` (an engine that
/// retries, and a second one that disagrees): one outcome is recorded, its hold is resolved
/// once, every report that says it is answered `Recorded` and every other `Conflict`. The
/// control writes a capture the naive way (the generation read as running, then the hold's
/// capture rows written, with no claim on its open row): in the same storm the database's
/// unique index refuses all but one, so a resolution that skipped the claim would be caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reports_of_one_generation_resolve_its_hold_once() {
    let app = app().await;
    let (_, key) = reseau_key(&app).await;
    let (_, launched) = post(&app, &key, Some("orage"), &json!({"type": "image"})).await;
    let id: Uuid = launched["id"].as_str().unwrap().parse().unwrap();
    let now = app.clock.now();
    let barrier = Arc::new(tokio::sync::Barrier::new(24));
    let answers = futures_util::future::join_all((0..24).map(|i| {
        let (pool, barrier) = (app.pool.clone(), barrier.clone());
        async move {
            let outcome = if i % 2 == 0 {
                generations::Outcome::Succeeded
            } else {
                generations::Outcome::Failed
            };
            barrier.wait().await;
            (
                outcome,
                generations::report(&pool, id, outcome, now).await.unwrap(),
            )
        }
    }))
    .await;
    let recorded: Vec<_> = answers
        .iter()
        .filter_map(|(outcome, answer)| match answer {
            generations::Report::Recorded(g) => Some((*outcome, g.status.clone())),
            _ => None,
        })
        .collect();
    let status = recorded.first().map(|(_, s)| s.clone()).unwrap();
    assert_eq!(recorded.len(), 12, "{answers:?}");
    assert!(
        recorded
            .iter()
            .all(|(o, s)| o.status() == s && *s == status)
    );
    assert!(answers.iter().all(|(outcome, answer)| match answer {
        generations::Report::Conflict(g) => g.status == status && outcome.status() != status,
        generations::Report::Recorded(_) => true,
        generations::Report::NotFound => false,
    }));
    let resolutions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM credit_ledger l JOIN generations g ON g.hold_id = l.hold_id
         WHERE g.id = $1 AND l.kind IN ('capture', 'release')",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(resolutions, 1);
    assert_ledger_clean(&app.pool).await;

    // The naive control, on a second generation.
    let (_, launched) = post(&app, &key, Some("naif"), &json!({"type": "image"})).await;
    let naive: Uuid = launched["id"].as_str().unwrap().parse().unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let written = futures_util::future::join_all((0..8).map(|_| {
        let (pool, barrier) = (app.pool.clone(), barrier.clone());
        async move {
            let running: Option<Uuid> = sqlx::query_scalar(
                "SELECT hold_id FROM generations WHERE id = $1 AND status = 'running'",
            )
            .bind(naive)
            .fetch_one(&pool)
            .await
            .unwrap();
            barrier.wait().await;
            let Some(hold) = running else { return false };
            sqlx::query(
                "INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at)
                 SELECT organisation_id, bucket_id, 'capture', 0, amount, hold_id, 'engine', 'naive', reference, created_at
                 FROM credit_ledger WHERE hold_id = $1 AND kind = 'hold'",
            )
            .bind(hold)
            .execute(&pool)
            .await
            .is_ok()
        }
    }))
    .await;
    assert_eq!(
        written.iter().filter(|w| **w).count(),
        1,
        "the naive captures were not refused: {written:?}"
    );
}

#[tokio::test]
async fn the_test_engine_reports_success_or_failure_on_echec_test() {
    let app = app().await;
    let (_, key) = reseau_key(&app).await;
    let (_, ok) = post(
        &app,
        &key,
        Some("t1"),
        &json!({"type": "image", "prompt": "Un vitrail lumineux"}),
    )
    .await;
    let (_, ko) = post(
        &app,
        &key,
        Some("t2"),
        &json!({"type": "image", "prompt": "Échec test de rendu"}),
    )
    .await;
    let later = app.clock.now() + generations::TEST_ENGINE_DELAY;
    assert_eq!(
        generations::run_test_engine(&app.pool, later)
            .await
            .unwrap(),
        2
    );
    for (launched, status, charged) in [(ok, "succeeded", 1), (ko, "failed", 0)] {
        let id = launched["id"].as_str().unwrap();
        let (_, g) = get(&app, &key, &format!("/api/v1/generations/{id}")).await;
        assert_eq!(
            (
                g["status"].as_str().unwrap(),
                g["credits_charged"].as_i64().unwrap()
            ),
            (status, charged)
        );
    }
}

#[tokio::test]
async fn each_key_has_its_rate_and_is_told_when_to_come_back() {
    let mut config = test_config();
    config.api_requests_per_second = 1.0; // bursts of 6
    let app = spawn_app_with(config, None).await;
    let (_, key) = reseau_key(&app).await;
    let (_, other) = reseau_key(&app).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = app
            .client
            .get(app.url("/api/v1/solde"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry: i64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        6,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
    // Another key is not slowed by the first.
    assert_eq!(get(&app, &other, "/api/v1/solde").await.0, 200);
}

/// `n` requests with one Idempotency-Key at once, through `launch`; the holds they placed.
async fn one_key_storm<'a, F, Fut>(app: &'a TestApp, org: Uuid, n: usize, launch: F) -> i64
where
    F: Fn(Arc<tokio::sync::Barrier>) -> Fut,
    Fut: std::future::Future<Output = ()> + 'a,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    futures_util::future::join_all((0..n).map(|_| launch(barrier.clone()))).await;
    holds_of(app, org).await
}

/// One Idempotency-Key sent 12 times at once, at the service (#12): `launch_idempotent` holds
/// once. The control is a naive lookup-then-launch: the stored answer read without the key's
/// lock, then a launch whose hold has a key of its own, then the answer stored. In the same
/// storm it holds 4 times (the concurrency cap of Plan Réseau stops the others), so the storm
/// tells a key that holds once from one that does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_at_once_holds_once_and_a_naive_lookup_then_launch_is_caught() {
    let app = app().await;
    let catalog = nanoclip::services::catalog::CatalogCache::default()
        .get(&app.pool)
        .await
        .unwrap();
    let rules = rules();
    let raw = || -> nanoclip::domain::simulation::RawSimulation {
        serde_urlencoded::from_str("type=image").unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    let pool = &app.pool;

    let (org, _) = reseau_key(&app).await;
    let portal = one_key_storm(&app, org, 12, |barrier| {
        let (catalog, rules) = (&catalog, &rules);
        async move {
            let request = LaunchRequest {
                organisation: org,
                raw: raw(),
                via: Via::Api,
                launched_by: "api-key:tempete",
                key: Some("une-cle"),
            };
            barrier.wait().await;
            let answer = generations::launch_idempotent(
                pool,
                catalog,
                rules,
                &request,
                "empreinte",
                |_| generations::Answer {
                    status: 201,
                    body: "{}".into(),
                },
                now,
            )
            .await;
            assert!(answer.is_ok(), "{answer:?}");
        }
    })
    .await;
    assert_eq!(portal, 1);

    let (naive_org, _) = reseau_key(&app).await;
    let naive = one_key_storm(&app, naive_org, 12, |barrier| {
        let (catalog, rules) = (&catalog, &rules);
        async move {
            let mut conn = pool.acquire().await.unwrap();
            let stored =
                nanoclip::db::generations::idempotency_answer(&mut conn, naive_org, "une-cle")
                    .await
                    .unwrap();
            drop(conn);
            // Every duplicate has looked before any launches.
            barrier.wait().await;
            if stored.is_some() {
                return;
            }
            let request = LaunchRequest {
                organisation: naive_org,
                raw: raw(),
                via: Via::Api,
                launched_by: "api-key:tempete",
                key: None,
            };
            let mut tx = pool.begin().await.unwrap();
            let launched = generations::launch_in(&mut tx, catalog, rules, &request, now).await;
            assert!(launched.is_ok(), "{launched:?}");
            nanoclip::db::generations::store_answer(
                &mut tx,
                naive_org,
                "une-cle",
                "empreinte",
                201,
                "{}",
                now,
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
    })
    .await;
    assert!(naive > 1, "the naive control held {naive} times");
    assert_ledger_clean(&app.pool).await;
}

/// Idempotency-Keys are kept two days (`purge-idempotency-keys`). Once a key's answer is
/// purged, a request with that key (and another body) launches what it asks: it used to find
/// the hold made under the key and answer 201 with the first request's generation (an image
/// launched three days before).
#[tokio::test]
async fn a_key_reused_after_its_answer_was_purged_launches_what_is_asked() {
    let app = app().await;
    let (org, key) = reseau_key(&app).await;
    let (status, first) = post(&app, &key, Some("culte"), &json!({"type": "image"})).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        report(&app, first["id"].as_str().unwrap(), "succeeded")
            .await
            .0,
        200
    );
    // Three days later the key's answer is purged (kept at least 24 hours: two days here).
    let later = app.clock.now() + time::Duration::days(3);
    app.clock.set(later);
    let mut conn = app.pool.acquire().await.unwrap();
    nanoclip::db::generations::purge_idempotency_keys(&mut conn, later - time::Duration::days(2))
        .await
        .unwrap();
    drop(conn);
    let body = json!({"type": "video", "duree": 10, "prompt": "Annonce du concert de Noël"});
    let (status, second) = post(&app, &key, Some("culte"), &body).await;
    assert_eq!(
        (
            status,
            second["id"] != first["id"],
            holds_of(&app, org).await
        ),
        (201, true, 2),
        "a new generation is launched and held: {second}"
    );
}

#[tokio::test]
async fn a_key_is_revoked_once_the_owner_confirms() {
    let app = app().await;
    let owner = app.owner("reseau").await;
    let (id, key) = nanoclip::services::api_keys::create(
        &app.pool,
        owner.org(),
        true,
        "Site de la paroisse",
        "cli",
        None,
        app.clock.now(),
    )
    .await
    .unwrap();
    let action = format!("/compte/api/{id}/revocation");
    // The button asks first, and says what stops working; the key still works meanwhile.
    let asked = owner.browser.submit("/compte/api", &action, &[]).await;
    assert_eq!(asked.status(), 200);
    let page = scraper::Html::parse_document(&asked.text().await.unwrap());
    assert_eq!(
        text(&page, "h1"),
        "Révoquer la clé «\u{202f}Site de la paroisse\u{202f}»\u{202f}?"
    );
    assert!(text(&page, "#consequences").contains("ne pourront plus lancer de générations"));
    assert_eq!(get(&app, &key, "/api/v1/solde").await.0, 200);
    // Another organisation's owner learns nothing of it.
    let other = app.owner("reseau").await;
    let r = other.browser.submit("/compte/api", &action, &[]).await;
    assert_eq!(r.status(), 404);
    let r = other
        .browser
        .submit("/compte/api", &action, &[("confirmer", "oui")])
        .await;
    assert_eq!(r.status(), 404);
    // Confirmed: revoked.
    let done = owner
        .browser
        .submit("/compte/api", &action, &[("confirmer", "oui")])
        .await;
    assert_eq!(
        done.headers()["location"],
        format!("/compte/api?revoquee={id}#cle-revoquee").as_str()
    );
    assert_eq!(get(&app, &key, "/api/v1/solde").await.0, 401);
}

/// `POST /api/v1/generations` with its Idempotency-Key: the status and `Retry-After`.
async fn retry_after_of(app: &TestApp, key: &str, idempotency: &str) -> (u16, Option<i64>) {
    let response = app
        .client
        .post(app.url("/api/v1/generations"))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency)
        .json(&json!({"type": "image"}))
        .send()
        .await
        .unwrap();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (response.status().as_u16(), retry)
}

#[tokio::test]
async fn a_cap_s_refusal_says_when_to_come_back() {
    let app = app().await;
    // 23:00 in Paris, 7 December: midnight in an hour, the next month in 24 days and an hour.
    app.clock.set(time::macros::datetime!(2026-12-07 22:00 UTC));
    let (org, key) = reseau_key(&app).await;
    raise(&app, org, 100, 10_000, 1).await;
    assert_eq!(retry_after_of(&app, &key, "c1").await, (201, None));
    assert_eq!(retry_after_of(&app, &key, "c2").await, (429, Some(15)));
    // The test clock runs on from the time set: a few seconds less than the hour may be left.
    let near = |(status, retry): (u16, Option<i64>), seconds: i64| {
        status == 429 && retry.is_some_and(|r| r <= seconds && r > seconds - 30)
    };
    raise(&app, org, 1, 10_000, 10).await;
    let daily = retry_after_of(&app, &key, "d1").await;
    assert!(near(daily, 3600), "{daily:?}");
    // The same answer replayed half an hour later: the time left then.
    app.clock.set(time::macros::datetime!(2026-12-07 22:30 UTC));
    let replayed = retry_after_of(&app, &key, "d1").await;
    assert!(near(replayed, 1800), "{replayed:?}");
    raise(&app, org, 100, 1, 10).await;
    let monthly = retry_after_of(&app, &key, "m1").await;
    assert!(near(monthly, 25 * 86_400 - 23 * 3600 - 1800), "{monthly:?}");
}
