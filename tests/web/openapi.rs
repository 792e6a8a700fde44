//! The OpenAPI document (`GET /api/v1/openapi.json`): served as OpenAPI 3.1 JSON, with the
//! contract's operations and their security; the catalog it describes is the seeded one; the
//! API answers a method a path does not take 405 with `Allow`.

use nanoclip::services::catalog::CatalogCache;
use nanoclip::web::openapi;
use serde_json::{Value, json};

use crate::common::spawn_app;

#[tokio::test]
async fn the_document_is_openapi_3_1_json_with_the_contract_s_operations() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = response.json().await.unwrap();
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    let operation = |method: &str, path: &str| doc["paths"][path][method].clone();
    for (method, path, security) in [
        ("get", "/api/v1/simulateur", None),
        ("get", "/api/v1/aide/recherche", None),
        ("get", "/api/v1/solde", Some("api_key")),
        ("post", "/api/v1/generations", Some("api_key")),
        ("get", "/api/v1/generations", Some("api_key")),
        ("get", "/api/v1/generations/{id}", Some("api_key")),
        (
            "post",
            "/api/v1/moteur/generations/{id}",
            Some("engine_token"),
        ),
    ] {
        let op = operation(method, path);
        assert!(op.is_object(), "{method} {path} missing");
        match security {
            None => assert!(op.get("security").is_none(), "{method} {path} is public"),
            Some(scheme) => assert_eq!(op["security"], json!([{ scheme: [] }]), "{path}"),
        }
        assert!(op["responses"]["503"].is_object(), "{method} {path}: 503");
    }
    // The simulator's query parameters are the contract's, one variant per type.
    let query = &operation("get", "/api/v1/simulateur")["parameters"][0];
    assert_eq!(
        (query["in"].as_str(), query["explode"].as_bool()),
        (Some("query"), Some(true))
    );
    let variants = query["schema"]["oneOf"].as_array().unwrap();
    assert_eq!(variants.len(), 4);
    for variant in variants {
        let mut names: Vec<&str> = variant["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "duree",
                "format",
                "illustrations",
                "pages",
                "plan",
                "prompt",
                "quantite",
                "resolution",
                "type"
            ]
        );
    }
    // The launch: its Idempotency-Key is required, its answers are the contract's.
    let launch = operation("post", "/api/v1/generations");
    assert_eq!(launch["parameters"][0]["name"], "Idempotency-Key");
    assert_eq!(launch["parameters"][0]["in"], "header");
    assert_eq!(launch["parameters"][0]["required"], true);
    let mut statuses: Vec<&str> = launch["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [
            "201", "400", "401", "402", "403", "409", "413", "422", "429", "503"
        ]
    );
    assert!(launch["responses"]["429"]["headers"]["Retry-After"].is_object());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["engine_token"]["scheme"], "bearer");
    assert_eq!(
        doc["components"]["schemas"]["Verdict"]["required"],
        json!(["plan", "unit_cost", "total_cost", "refusal", "prompt_check"])
    );
}

#[tokio::test]
async fn the_document_s_ranges_and_plans_are_the_catalog_s() {
    let app = spawn_app().await;
    let catalog = CatalogCache::default().get(&app.pool).await.unwrap();
    let range = |id: &str| {
        catalog
            .ranges
            .iter()
            .find(|r| r.creation_type.id() == id)
            .map(|r| (r.min.unwrap(), r.max.unwrap()))
            .unwrap()
    };
    assert_eq!(range("video"), openapi::VIDEO_SECONDS);
    assert_eq!(range("musique"), openapi::MUSIC_SECONDS);
    assert_eq!(range("mini-livre"), openapi::MINI_BOOK_PAGES);
    assert_eq!(catalog.plan_ids(), openapi::PLANS);
    assert_eq!(catalog.default_plan(), openapi::PLANS[0]);
}

#[tokio::test]
async fn a_method_an_api_path_does_not_take_is_a_json_405_with_allow() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/api/v1/generations", "POST, GET"),
        (reqwest::Method::PUT, "/api/v1/simulateur", "GET"),
        (reqwest::Method::POST, "/api/v1/openapi.json", "GET"),
        (reqwest::Method::PATCH, "/api/v1/generations/abc", "GET"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
    // An unknown path is still a 404.
    let response = app
        .client
        .get(app.url("/api/v1/nulle-part"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
