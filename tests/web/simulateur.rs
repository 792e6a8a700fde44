//! `/simulateur` and `GET /api/v1/simulateur`.

use serde_json::Value;

use crate::common::{attr, count, spawn_app, text};

async fn api(app: &crate::common::TestApp, query: &str) -> (u16, Value) {
    let response = app.get(&format!("/api/v1/simulateur?{query}")).await;
    let status = response.status().as_u16();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_json_verdict_matches_the_contract_example() {
    let app = spawn_app().await;
    let (status, body) = api(&app, "type=video&duree=10&quantite=3&plan=eglise").await;
    assert_eq!(status, 200);
    assert_eq!(body["plan"], "eglise");
    assert_eq!(body["unit_cost"], 3);
    assert_eq!(body["total_cost"], 9);
    assert!(body["refusal"].is_null());
    assert_eq!(body["prompt_check"]["allowed"], true);
    assert!(body["prompt_check"]["category"].is_null());
    assert!(body["prompt_check"]["advice"].is_array());
}

#[tokio::test]
async fn four_k_on_plan_eglise_is_refused_with_the_way_out() {
    let app = spawn_app().await;
    let (status, body) = api(&app, "type=image&resolution=4k&plan=eglise").await;
    assert_eq!(status, 200);
    assert!(body["unit_cost"].is_null() && body["total_cost"].is_null());
    assert_eq!(body["refusal"]["rule"], "plan_feature");
    assert_eq!(
        body["refusal"]["message"],
        "La 4K est réservée au Plan Réseau."
    );
    let (_, reseau) = api(&app, "type=image&resolution=4k&plan=reseau").await;
    assert_eq!(reseau["unit_cost"], 2);
}

#[tokio::test]
async fn plan_defaults_to_eglise_and_rich_mini_books_adapt_to_the_plan() {
    let app = spawn_app().await;
    let (_, eglise) = api(&app, "type=mini-livre&pages=10&illustrations=riches").await;
    assert_eq!(
        (eglise["plan"].as_str(), eglise["unit_cost"].as_i64()),
        (Some("eglise"), Some(10))
    );
    let (_, reseau) = api(
        &app,
        "type=mini-livre&pages=10&illustrations=riches&plan=reseau&quantite=2",
    )
    .await;
    assert_eq!(
        (reseau["unit_cost"].as_i64(), reseau["total_cost"].as_i64()),
        (Some(8), Some(16))
    );
}

#[tokio::test]
async fn invalid_input_is_a_400_with_a_french_message_per_field() {
    let app = spawn_app().await;
    for (query, field) in [
        ("type=video&duree=abc", "duree"),
        ("type=podcast", "type"),
        ("", "type"),
        ("type=video", "duree"),
        ("type=video&duree=16", "duree"),
        ("type=musique&duree=29", "duree"),
        ("type=mini-livre&pages=21", "pages"),
        ("type=image&quantite=0", "quantite"),
        ("type=image&quantite=501", "quantite"),
        ("type=image&quantite=-1", "quantite"),
        ("type=image&quantite=99999999999999999999999", "quantite"),
        ("type=image&plan=gratuit", "plan"),
        ("type=image&format=9:16", "format"),
        ("type=image&prompt=%00", "prompt"),
    ] {
        let (status, body) = api(&app, query).await;
        assert_eq!(status, 400, "{query}");
        let message = body["errors"][field]
            .as_str()
            .unwrap_or_else(|| panic!("{query}: {body}"));
        assert!(
            !message.is_empty() && message.chars().any(|c| "éèàùç".contains(c) || c == ' '),
            "{message}"
        );
    }
}

#[tokio::test]
async fn invalid_input_is_reported_before_any_plan_refusal() {
    let app = spawn_app().await;
    let (status, body) = api(&app, "type=video&duree=99&resolution=4k&plan=eglise").await;
    assert_eq!(status, 400);
    assert!(body["errors"]["duree"].is_string());
}

#[tokio::test]
async fn a_huge_prompt_is_refused_not_crashed() {
    let app = spawn_app().await;
    let prompt = "a".repeat(10_000);
    let (status, body) = api(&app, &format!("type=image&prompt={prompt}")).await;
    assert_eq!(status, 400);
    assert!(
        body["errors"]["prompt"]
            .as_str()
            .unwrap()
            .contains("trop long")
    );
}

#[tokio::test]
async fn the_form_works_without_javascript_and_shows_every_field() {
    let app = spawn_app().await;
    let (status, html) = app.get_html("/simulateur").await;
    assert_eq!(status, 200);
    assert_eq!(
        attr(&html, "form[data-simulateur]", "method").as_deref(),
        Some("get")
    );
    for name in [
        "type",
        "duree",
        "format",
        "resolution",
        "pages",
        "illustrations",
        "quantite",
        "plan",
        "prompt",
    ] {
        assert!(
            count(&html, &format!("form [name={name}]")) >= 1,
            "field {name}"
        );
    }
    assert_eq!(count(&html, "[data-testid=resultat]"), 0);
}

#[tokio::test]
async fn a_result_has_its_costs_limits_advice_and_a_shareable_url() {
    let app = spawn_app().await;
    let (status, html) = app
        .get_html("/simulateur?type=video&duree=15&quantite=20&plan=eglise")
        .await;
    assert_eq!(status, 200);
    assert_eq!(text(&html, "[data-testid=total]"), "80 crédits");
    assert_eq!(text(&html, "[data-testid=unitaire]"), "4 crédits");
    let page = text(&html, "[data-testid=resultat]");
    // 20 renders against a daily cap of 15 and a monthly cap of 90 credits (22 renders of 4).
    assert!(
        page.contains(
            "plafond quotidien (15 générations par jour) arrêterait le lot après 15 rendus"
        ),
        "{page}"
    );
    // Concurrency is a refusal until a render finishes, never a queue.
    assert!(
        page.contains(
            "Rendus simultanés\u{202f}: 1 à la fois sur ce plan. Au-delà, un nouveau lancement est refusé jusqu’à la fin d’un rendu en cours"
        ),
        "{page}"
    );
    assert!(!page.contains("attendent leur tour"), "{page}");
    assert!(
        page.contains("Testez d’abord en 5 s"),
        "itérer court: {page}"
    );
    assert!(page.contains("2 crédits au lieu de 4"), "{page}");
    assert!(
        page.contains("dépasse de 50 crédits"),
        "30 credits of allotment against 80: {page}"
    );
    let share = attr(&html, "[data-testid=partage]", "href").unwrap();
    assert_eq!(
        share,
        "http://portail.test/simulateur?type=video&duree=15&format=16%3A9&resolution=hd&quantite=20&plan=eglise"
    );
    // Every plan's price for the same batch.
    assert!(page.contains("Plan Réseau"));
}

#[tokio::test]
async fn the_form_keeps_the_values_and_says_what_is_wrong() {
    let app = spawn_app().await;
    let (status, html) = app
        .get_html("/simulateur?type=video&duree=99&quantite=abc&prompt=Bonjour")
        .await;
    assert_eq!(status, 400);
    assert_eq!(attr(&html, "#champ-duree", "value").as_deref(), Some("99"));
    assert_eq!(
        attr(&html, "#champ-duree", "aria-invalid").as_deref(),
        Some("true")
    );
    assert_eq!(
        attr(&html, "#champ-quantite", "value").as_deref(),
        Some("abc")
    );
    assert_eq!(text(&html, "#champ-prompt"), "Bonjour");
    assert!(text(&html, "#erreur-duree").contains("entre 5 et 15 secondes"));
    assert!(text(&html, "#erreur-quantite").contains("nombre entier"));
    assert_eq!(count(&html, "#erreurs li"), 2);
}

#[tokio::test]
async fn a_four_k_refusal_on_the_page_links_to_the_plans() {
    let app = spawn_app().await;
    let (status, html) = app
        .get_html("/simulateur?type=video&duree=10&resolution=4k&plan=eglise")
        .await;
    assert_eq!(status, 200);
    assert!(text(&html, "[data-testid=refus]").contains("La 4K est réservée au Plan Réseau."));
    assert_eq!(
        attr(&html, "[data-testid=refus] a", "href").as_deref(),
        Some("/aide/tarifs#4k")
    );
}

#[tokio::test]
async fn a_forbidden_prompt_does_not_change_the_price() {
    let app = spawn_app().await;
    let (_, fine) = api(
        &app,
        "type=image&prompt=Vitrail%20de%20la%20Nativit%C3%A9%2C%20style%20gothique",
    )
    .await;
    assert_eq!(fine["prompt_check"]["allowed"], true);
    let (status, refused) = api(
        &app,
        "type=image&prompt=une%20femme%20nue%20dans%20l%27%C3%A9glise",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(refused["prompt_check"]["allowed"], false);
    assert_eq!(refused["prompt_check"]["category"], "sexual");
    assert_eq!(refused["unit_cost"], fine["unit_cost"]);
    let (_, html) = app
        .get_html("/simulateur?type=image&prompt=une%20femme%20nue")
        .await;
    assert_eq!(
        attr(&html, "[data-testid=prompt-refuse] a", "href").as_deref(),
        Some("/aide/respect-et-ethique")
    );
}

#[tokio::test]
async fn a_price_change_by_staff_shows_after_the_cache_and_a_future_schedule_waits_for_its_date() {
    let app = spawn_app().await;
    // A new version dated in the future does not apply yet.
    sqlx::query(
        "WITH v AS (INSERT INTO price_schedules (effective_from) VALUES (now() + interval '1 day') RETURNING id)
         INSERT INTO price_rules (schedule_id, creation_type, kind, credits) SELECT id, 'image', 'tier', 7 FROM v",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (_, body) = api(&app, "type=image").await;
    assert_eq!(body["unit_cost"], 1);
}

/// Issue 15: the advice depends on the type and on the fields given. Music has no format (and no
/// voice); a video's format is a field, so the prompt is never asked for it.
#[tokio::test]
async fn prompt_advice_follows_the_type_and_the_fields() {
    let app = spawn_app().await;
    let advice = |body: &Value| -> Vec<String> {
        body["prompt_check"]["advice"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    };
    let (_, music) = api(
        &app,
        "type=musique&duree=30&prompt=orgue%20doux%20pour%20No%C3%ABl",
    )
    .await;
    assert_eq!(advice(&music), Vec::<String>::new());
    let (_, sung) = api(&app, "type=musique&duree=30&prompt=chorale%20et%20orgue").await;
    assert_eq!(advice(&sung).len(), 1);
    assert!(advice(&sung)[0].contains("instrumentales"), "{sung}");
    let (_, chosen) = api(
        &app,
        "type=video&duree=10&format=9:16&prompt=la%20cr%C3%A8che",
    )
    .await;
    assert_eq!(advice(&chosen), Vec::<String>::new());
    let (_, default) = api(&app, "type=video&duree=10&prompt=la%20cr%C3%A8che").await;
    assert_eq!(advice(&default).len(), 1);
    assert!(advice(&default)[0].contains("16:9"), "{default}");
    assert!(!advice(&default)[0].contains("carré"), "{default}");
    let (_, book) = api(&app, "type=mini-livre&pages=10&prompt=la%20cr%C3%A9ation").await;
    assert_eq!(advice(&book), Vec::<String>::new());
}

/// Visitors without a session cookie are served by a scope without sessions and CSRF
/// (`cookieless` routes): the same page, headers, error pages and compression as through the
/// browser scope, which still serves anyone with a session cookie, even a stale one.
#[tokio::test]
async fn a_visitor_gets_the_same_page_with_or_without_a_session_cookie() {
    let app = spawn_app().await;
    let get = |path: &str, cookie: Option<&str>, gzip: bool| {
        let mut request = app.client.get(app.url(path));
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        if gzip {
            request = request.header("Accept-Encoding", "gzip");
        }
        async move { request.send().await.expect("request") }
    };
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    for (path, status) in [
        (
            "/simulateur?type=video&duree=15&quantite=20&plan=eglise",
            200,
        ),
        ("/simulateur?type=video&duree=abc", 400),
        ("/simulateur", 200),
        (
            "/simulateur?type=image&prompt=un%20vitrail%20au%20soleil",
            200,
        ),
    ] {
        let mut bodies = Vec::new();
        for cookie in [
            None,
            Some("nanoclip_csrf=abc; autre=1"),
            Some("nanoclip_session=perimee"),
            Some("autre=1; nanoclip_session=perimee"),
        ] {
            let response = get(path, cookie, false).await;
            assert_eq!(response.status().as_u16(), status, "{path} {cookie:?}");
            assert_eq!(
                header(&response, "content-type").as_deref(),
                Some("text/html; charset=utf-8")
            );
            for security in [
                "content-security-policy",
                "x-frame-options",
                "x-content-type-options",
                "referrer-policy",
            ] {
                assert!(header(&response, security).is_some(), "{path}: {security}");
            }
            assert_eq!(
                header(&response, "set-cookie"),
                None,
                "{path} {cookie:?}: nothing to keep for a visitor"
            );
            bodies.push(response.text().await.unwrap());
        }
        assert!(
            bodies.iter().all(|b| *b == bodies[0]),
            "{path}: the same page for every visitor"
        );
        let compressed = get(path, None, true).await;
        assert_eq!(
            header(&compressed, "content-encoding").as_deref(),
            Some("gzip"),
            "{path}"
        );
    }
}

/// The prompt checks' model is read after the portal starts listening (`PromptChecks`): a model
/// that cannot be read leaves the guides and the blank simulator served, the simulations and
/// the launches (which check prompts) answered 503 (a French page, the API's JSON error, never
/// a check made without the model), and `/healthz` answering 503.
#[tokio::test]
async fn a_prompt_model_that_cannot_be_read_answers_503_where_prompts_are_checked() {
    let dir = crate::common::content_copy("model");
    std::fs::write(dir.join("prompt-model.tsv"), "bias\t0.5\n").unwrap();
    let mut config = crate::common::test_config();
    config.content_dir = dir.clone();
    let app = crate::common::spawn_app_with(config, None).await;
    let (status, _) = app.get_html("/aide/credits-et-limites").await;
    assert_eq!(status, 200);
    let (status, _) = app.get_html("/simulateur").await;
    assert_eq!(status, 200, "the blank form checks no prompt");
    let (status, html) = app
        .get_html("/simulateur?type=image&quantite=2&prompt=Un+vitrail+de+No%C3%ABl")
        .await;
    assert_eq!(status, 503);
    assert!(!crate::common::text(&html, "h1").is_empty());
    // The page says what the user can do, and nothing untrue about the cause (the database is
    // up: it is the prompt checks that are missing).
    let said = crate::common::text(&html, "main");
    assert!(said.contains("Réessayez"), "{said}");
    assert!(!said.contains("base de données"), "{said}");
    let response = app
        .get("/api/v1/simulateur?type=image&quantite=2&prompt=Un+vitrail")
        .await;
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
    // A deployment whose prompt checks cannot be read is not healthy (its load balancer keeps
    // the previous one).
    let response = app.get("/healthz").await;
    assert_eq!(response.status().as_u16(), 503);
    std::fs::remove_dir_all(dir).unwrap();
}
