//! A database outage: every page that needs the database answers the French 503 with
//! `Retry-After` (the JSON API its JSON 503), pages that do not keep answering, and everything
//! recovers without a restart.

use crate::common::{DbProxy, attr, fresh_database, spawn_on, test_config};

const PASSWORD: &str = "cloche verte sous la pluie";

#[tokio::test]
async fn while_the_database_is_down_each_scope_answers_a_503_and_recovers() {
    let (database, direct) = fresh_database().await;
    let proxy = DbProxy::start(&direct).await;
    let app = spawn_on(test_config(), proxy.options(&direct), database, None).await;
    // A signed-in member of staff, before the outage.
    let staff = app.staff().await;
    let staff = staff.browser;
    let visitor = app.browser();
    let token = visitor.token("/compte/connexion").await;
    assert_eq!(app.get("/aide/tarifs").await.status(), 200); // the catalog is loaded

    proxy.cut();
    // Pages served from memory keep answering.
    assert_eq!(app.get("/aide/tarifs").await.status(), 200, "a guide");
    assert_eq!(
        app.get("/aide/recherche?q=credits").await.status(),
        200,
        "search"
    );
    // Browser pages that need the database: the French 503, whatever layer needs it (the
    // session store for a signed-in visitor, a service for a form).
    for (who, response) in [
        ("signed-in page", staff.get("/compte").await),
        ("back office", staff.get("/admin").await),
        (
            "login form sent",
            visitor
                .client
                .post(format!("{}/compte/connexion", visitor.base))
                .form(&[
                    ("csrf", token.as_str()),
                    ("email", "quelquun@nanoclip.fr"),
                    ("mot_de_passe", PASSWORD),
                ])
                .send()
                .await
                .unwrap(),
        ),
    ] {
        assert_eq!(response.status(), 503, "{who}");
        assert!(response.headers().contains_key("retry-after"), "{who}");
        let html = scraper::Html::parse_document(&response.text().await.unwrap());
        let title = crate::common::text(&html, "h1");
        assert!(title.contains("indisponible"), "{who}: « {title} »");
    }
    // The JSON API: its JSON 503 where it needs the database (a health check here: the
    // simulator itself is served from the last catalog loaded).
    let response = app.get("/api/v1/aide/inconnu").await;
    assert_eq!(response.status(), 404, "an unknown API path is a JSON 404");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let response = app.get("/api/v1/simulateur?type=image").await;
    assert_eq!(
        response.status(),
        200,
        "served from the last catalog loaded"
    );
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));

    proxy.restore();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if staff.get("/compte").await.status() == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no recovery");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(staff.get("/admin").await.status(), 200);
    assert_eq!(app.get("/api/v1/simulateur?type=image").await.status(), 200);
    let (status, html) = visitor.html("/compte/connexion").await;
    assert_eq!(status, 200);
    assert!(attr(&html, "input[name=csrf]", "value").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_under_load_loses_no_credit_and_shows_no_500() {
    use nanoclip::domain::money::Credits;
    use nanoclip::services::credits::{self, HoldInput, HoldOutcome};
    let (database, direct) = fresh_database().await;
    let proxy = std::sync::Arc::new(DbProxy::start(&direct).await);
    let app = spawn_on(test_config(), proxy.options(&direct), database, None).await;
    let owner = app.owner("reseau").await;
    let org = owner.org();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pages = Vec::new();
    for _ in 0..6 {
        let (browser, stop) = (owner.browser.clone(), stop.clone());
        pages.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for path in ["/tableau-de-bord", "/credits/historique"] {
                    if let Ok(response) = browser
                        .client
                        .get(format!("{}{path}", browser.base))
                        .send()
                        .await
                    {
                        statuses.push(response.status().as_u16());
                    }
                }
            }
            statuses
        }));
    }
    let mut holds = Vec::new();
    for t in 0..6 {
        let (pool, stop) = (app.pool.clone(), stop.clone());
        holds.push(tokio::spawn(async move {
            let mut placed = 0;
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let key = format!("{t}-{i}");
                let input = HoldInput {
                    organisation: org,
                    amount: Credits(1),
                    creation_type: "video",
                    key: &key,
                    reference: "generation:outage",
                    actor: "user:test",
                };
                if let Ok(HoldOutcome::Placed { .. }) =
                    credits::hold(&pool, input, time::OffsetDateTime::now_utc()).await
                {
                    placed += 1;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            placed
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    proxy.cut();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    proxy.restore();
    // The portal recovers by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while owner.browser.get("/tableau-de-bord").await.status() != 200 {
        assert!(std::time::Instant::now() < deadline, "no recovery");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut statuses = Vec::new();
    for p in pages {
        statuses.extend(p.await.unwrap());
    }
    let mut placed_seen = 0;
    for h in holds {
        placed_seen += h.await.unwrap();
    }
    assert!(statuses.contains(&503), "the outage was seen");
    assert!(statuses.contains(&200));
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "only 200 or the French 503: {:?}",
        statuses
            .iter()
            .filter(|s| **s != 200 && **s != 503)
            .collect::<Vec<_>>()
    );
    // Every hold the database kept is one the ledger accounts for; none was half-written.
    let kept: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT hold_id) FROM credit_ledger WHERE organisation_id = $1 AND kind = 'hold'")
            .bind(org)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        kept >= placed_seen,
        "an answered hold is kept: {kept} < {placed_seen}"
    );
    assert_eq!(
        credits::available(&app.pool, org, time::OffsetDateTime::now_utc())
            .await
            .unwrap(),
        Credits(150 - kept)
    );
    crate::credits::assert_ledger_clean(&app.pool).await;
}
