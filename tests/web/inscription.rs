//! `/compte/inscription`: the sign-up chooses a plan from the catalogue, and the first period is
//! paid through the provider (the test provider here) before the organisation is active.

use nanoclip::domain::money::Credits;
use time::macros::datetime;

use crate::common::{Browser, TestApp, attr, count, select_attrs, spawn_app, text};
use crate::credits::assert_ledger_clean;

const PASSWORD: &str = "cloche verte sous la pluie";

/// Signs up on `plan` and activates the account: the browser is signed in, on the payment page.
async fn sign_up_and_activate(app: &TestApp, browser: &Browser, email: &str, plan: &str) {
    let (status, form) = browser.html("/compte/inscription").await;
    assert_eq!(status, 200);
    assert_eq!(
        select_attrs(&form, "input[name=plan]", "value"),
        ["eglise", "reseau"],
        "the plans of the catalogue"
    );
    let response = browser
        .submit(
            "/compte/inscription",
            "/compte/inscription",
            &[
                ("organisation", "Paroisse Saint-Paul"),
                ("email", email),
                ("mot_de_passe", PASSWORD),
                ("confirmation", PASSWORD),
                ("plan", plan),
            ],
        )
        .await;
    assert_eq!(response.headers()["location"], "/compte/info?avis=verifiez");
    let link = app.link_in_last_email(email).await;
    let (_, html) = browser.html(&link).await;
    let token = attr(&html, "input[name=jeton]", "value").unwrap();
    let activated = browser
        .submit(&link, "/compte/activation", &[("jeton", &token)])
        .await;
    assert_eq!(
        activated.headers()["location"],
        "/compte/inscription/paiement"
    );
}

async fn to_payment(browser: &Browser) -> String {
    let response = browser
        .submit(
            "/compte/inscription/paiement",
            "/compte/inscription/paiement",
            &[],
        )
        .await;
    assert_eq!(response.status(), 303);
    let page = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(page.starts_with("/paiement-test/"), "{page}");
    page
}

async fn subscription(app: &TestApp) -> Option<(String, String)> {
    sqlx::query_as("SELECT plan_id, status FROM subscriptions")
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_paid_sign_up_activates_the_subscription_with_its_allotment_and_invoice() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-10 10:00 UTC));
    let browser = app.browser();
    sign_up_and_activate(&app, &browser, "pasteur@saint-paul.fr", "reseau").await;
    // Not active yet: no subscription, no credits, launches refused, the pages say so.
    assert_eq!(subscription(&app).await, None);
    let (status, html) = browser.html("/compte/inscription/paiement").await;
    assert_eq!(status, 200);
    let due = text(&html, "#a-payer");
    assert!(
        due.contains("Plan Réseau")
            && due.contains("99,00\u{a0}€")
            && due.contains("150\u{a0}crédits"),
        "{due}"
    );
    assert_eq!(text(&html, "#total-ttc"), "99,00\u{a0}€");
    let (_, dashboard) = browser.html("/tableau-de-bord").await;
    assert!(
        text(&dashboard, "#inscription-a-regler").contains("pas encore réglé"),
        "{}",
        text(&dashboard, "#inscription-a-regler")
    );
    // No « Solde bas » pushing packs at a church that has not paid its plan yet.
    assert_eq!(count(&dashboard, "#solde-bas"), 0);
    let abonnement = browser.get("/abonnement").await;
    assert_eq!(
        abonnement.headers()["location"],
        "/compte/inscription/paiement"
    );
    // Nor packs, nor API keys, before the plan is paid: every launch would be refused.
    let pack = browser.get("/achats/pack-10").await;
    assert_eq!(pack.headers()["location"], "/compte/inscription/paiement");
    let bought = browser
        .submit("/achats", "/achats/pack-10", &[("prix", "1200")])
        .await;
    assert_eq!(bought.headers()["location"], "/compte/inscription/paiement");
    let key = browser
        .submit("/compte/api", "/compte/api", &[("nom", "Site")])
        .await;
    assert_eq!(key.headers()["location"], "/compte/inscription/paiement");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE kind = 'pack'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(orders, 0);
    // Paid (twice: a double click): active once, with its first period's allotment.
    let page = to_payment(&browser).await;
    let (_, pay) = browser.html(&page).await;
    assert!(text(&pay, "main").contains("99,00\u{a0}€"));
    let token = browser.token(&page).await;
    let mut back = String::new();
    for _ in 0..2 {
        let response = browser
            .client
            .post(format!("{}{page}", browser.base))
            .form(&[("csrf", token.as_str()), ("issue", "approuver")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        back = response.headers()["location"].to_str().unwrap().to_owned();
    }
    let (_, result) = browser.html(&back).await;
    let said = text(&result, "#resultat");
    assert!(
        said.contains("Paiement accepté. 150\u{a0}crédits ajoutés à votre solde."),
        "{said}"
    );
    assert!(said.contains("Facture FA-2026-000001"), "{said}");
    assert_eq!(
        subscription(&app).await,
        Some(("reseau".to_owned(), "active".to_owned()))
    );
    let org: uuid::Uuid = sqlx::query_scalar("SELECT id FROM organisations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let now = app.clock.now();
    assert_eq!(
        nanoclip::services::credits::available(&app.pool, org, now)
            .await
            .unwrap(),
        Credits(150)
    );
    let invoices: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(invoices, 1);
    // The payment page now leads to the dashboard; /abonnement shows the period.
    let again = browser.get("/compte/inscription/paiement").await;
    assert_eq!(again.headers()["location"], "/tableau-de-bord");
    let (_, html) = browser.html("/abonnement").await;
    assert!(text(&html, "#etat").contains("actif"));
    assert!(
        text(&html, "#periode").contains("du 10\u{a0}décembre 2026 au 9\u{a0}janvier 2027"),
        "{}",
        text(&html, "#periode")
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn a_declined_sign_up_payment_can_be_tried_again_and_an_unpaid_one_expires() {
    let app = spawn_app().await;
    let browser = app.browser();
    sign_up_and_activate(&app, &browser, "cure@saint-paul.fr", "eglise").await;
    // Declined: nothing active, the result page offers to try again.
    let page = to_payment(&browser).await;
    let response = browser.submit(&page, &page, &[("issue", "refuser")]).await;
    let back = response.headers()["location"].to_str().unwrap().to_owned();
    let (_, result) = browser.html(&back).await;
    assert!(text(&result, "#resultat").starts_with("Paiement refusé."));
    assert_eq!(
        attr(&result, "#resultat a", "href").as_deref(),
        Some("/compte/inscription/paiement")
    );
    assert_eq!(subscription(&app).await, None);
    let (_, html) = browser.html("/compte/inscription/paiement").await;
    assert!(text(&html, "#precedent").starts_with("Le paiement précédent a été refusé."));
    // No answer: the order waits, then expires like other orders; the owner pays again.
    let page = to_payment(&browser).await;
    browser
        .submit(&page, &page, &[("issue", "sans-reponse")])
        .await;
    let later = app.clock.now() + nanoclip::services::billing::ORDER_LIFETIME;
    assert_eq!(
        nanoclip::services::billing::expire_orders(&app.pool, later)
            .await
            .unwrap(),
        1
    );
    let (_, html) = browser.html("/compte/inscription/paiement").await;
    assert!(
        text(&html, "#precedent").starts_with("Le paiement précédent n’a pas abouti à temps."),
        "{}",
        text(&html, "#precedent")
    );
    assert_eq!(
        count(&html, "form[action='/compte/inscription/paiement']"),
        1
    );
    let page = to_payment(&browser).await;
    browser
        .submit(&page, &page, &[("issue", "approuver")])
        .await;
    assert_eq!(
        subscription(&app).await,
        Some(("eglise".to_owned(), "active".to_owned()))
    );
    let orders: Vec<String> =
        sqlx::query_scalar("SELECT state FROM orders WHERE kind = 'signup' ORDER BY created_at")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(orders, ["failed", "expired", "paid"]);
    assert_ledger_clean(&app.pool).await;
}
