//! `/achats`: packs bought through the test provider, paid exactly once whatever arrives twice,
//! invoices numbered without gaps, tampered forms refused.

use nanoclip::services::billing::{self, Event, Settlement};
use uuid::Uuid;

use crate::common::{TestApp, attr, count, select_texts, spawn_app, text};
use crate::credits::assert_ledger_clean;

/// Opens the confirmation page of `pack` and submits it: the response (a redirect to payment).
async fn buy(owner: &crate::common::accounts::Account, pack: &str) -> (reqwest::Response, String) {
    let (status, html) = owner.browser.html(&format!("/achats/{pack}")).await;
    assert_eq!(status, 200);
    let csrf = attr(&html, "input[name=csrf]", "value").unwrap();
    let key = attr(&html, "input[name=cle]", "value").unwrap();
    let price = attr(&html, "input[name=prix]", "value").unwrap();
    let response = owner
        .browser
        .client
        .post(format!("{}/achats/{pack}", owner.browser.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("cle", key.as_str()),
            ("prix", price.as_str()),
        ])
        .send()
        .await
        .unwrap();
    (response, key)
}

async fn pay(owner: &crate::common::accounts::Account, payment_page: &str, issue: &str) -> String {
    let response = owner
        .browser
        .submit(payment_page, payment_page, &[("issue", issue)])
        .await;
    assert_eq!(response.status(), 303);
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn counts(app: &TestApp, org: Uuid) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders WHERE organisation_id = $1),
                (SELECT count(*) FROM credit_buckets WHERE organisation_id = $1 AND source = 'purchase'),
                (SELECT count(*) FROM invoices WHERE organisation_id = $1)",
    )
    .bind(org)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// The back button after paying leads to the pack's confirmation again: it says the pack was
/// just bought, with its invoice, so that a second purchase is a choice (half an hour later, it
/// says nothing; another pack says nothing).
#[tokio::test]
async fn the_confirmation_says_when_the_same_pack_was_just_bought() {
    let app = spawn_app().await;
    app.clock.set(time::macros::datetime!(2026-12-04 10:00 UTC));
    let owner = app.owner("eglise").await;
    let (response, _) = buy(&owner, "pack-10").await;
    let payment = response.headers()["location"].to_str().unwrap().to_owned();
    pay(&owner, &payment, "approuver").await;
    let (_, again) = owner.browser.html("/achats/pack-10").await;
    let notice = text(&again, "#deja-achete");
    assert!(
        notice.starts_with("Vous avez déjà acheté ce pack le 4\u{a0}décembre 2026")
            && notice.contains("(facture FA-2026-")
            && notice.contains("ajoutera encore 10\u{a0}crédits"),
        "{notice}"
    );
    let (_, other) = owner.browser.html("/achats/pack-30").await;
    assert_eq!(count(&other, "#deja-achete"), 0);
    app.clock.advance(time::Duration::minutes(31));
    let (_, later) = owner.browser.html("/achats/pack-10").await;
    assert_eq!(count(&later, "#deja-achete"), 0);
}

#[tokio::test]
async fn an_owner_buys_a_pack_end_to_end_and_gets_an_invoice() {
    let app = spawn_app().await;
    app.clock.set(time::macros::datetime!(2026-12-04 10:00 UTC));
    let owner = app.owner("eglise").await;
    let (_, html) = owner.browser.html("/achats").await;
    assert_eq!(count(&html, "#packs li"), 5);
    assert!(text(&html, "#packs").contains("Musique à l’unité"));
    let (_, confirm) = owner.browser.html("/achats/pack-30").await;
    let summary = text(&confirm, "#recapitulatif");
    assert!(summary.contains("Prix HT 27,50\u{a0}€"), "{summary}");
    assert!(summary.contains("TVA (20\u{a0}%) 5,50\u{a0}€"), "{summary}");
    assert!(summary.contains("Total TTC 33,00\u{a0}€"), "{summary}");
    assert!(
        summary.contains("jusqu’au 4\u{a0}décembre 2027 inclus"),
        "{summary}"
    );
    let (response, _) = buy(&owner, "pack-30").await;
    assert_eq!(response.status(), 303);
    let payment = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(payment.starts_with("/paiement-test/"), "{payment}");
    let (_, page) = owner.browser.html(&payment).await;
    assert!(text(&page, "main").contains("33,00\u{a0}€"));
    let back = pay(&owner, &payment, "approuver").await;
    let (status, result) = owner.browser.html(&back).await;
    assert_eq!(status, 200);
    let said = text(&result, "#resultat");
    assert!(said.contains("Paiement accepté. 30\u{a0}crédits ajoutés à votre solde. Nouveau solde\u{a0}: 60\u{a0}crédits"), "{said}");
    assert!(said.contains("Facture FA-2026-000001"), "{said}");
    let (_, invoice) = owner.browser.html("/achats/factures/FA-2026-000001").await;
    assert_eq!(text(&invoice, "#total-ht"), "27,50\u{a0}€");
    assert_eq!(text(&invoice, "#total-tva"), "5,50\u{a0}€");
    assert_eq!(text(&invoice, "#total-ttc"), "33,00\u{a0}€");
    assert!(text(&invoice, "main").contains("SIREN"));
    let (_, history) = owner.browser.html("/achats/historique").await;
    let rows = select_texts(&history, "#commandes tbody tr");
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].contains("Payée") && rows[0].contains("FA-2026-000001"),
        "{rows:?}"
    );
    // The purchase's credits last twelve months, to the end of the day: the same date as
    // the confirmation's « jusqu'au 4 décembre 2027 inclus ».
    let (_, dashboard) = owner.browser.html("/tableau-de-bord").await;
    assert!(
        text(&dashboard, "#reserves")
            .contains("30\u{a0}crédits achetés, expirent le 4\u{a0}décembre 2027"),
        "{}",
        text(&dashboard, "#reserves")
    );
    assert_eq!(counts(&app, owner.org()).await, (1, 1, 1));
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn a_declined_payment_grants_nothing_and_can_be_tried_again() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let (response, _) = buy(&owner, "pack-10").await;
    let payment = response.headers()["location"].to_str().unwrap().to_owned();
    let back = pay(&owner, &payment, "fonds-insuffisants").await;
    let (_, result) = owner.browser.html(&back).await;
    assert!(
        text(&result, "#resultat")
            .starts_with("Paiement refusé\u{a0}: fonds insuffisants. Rien n’a été débité"),
        "{}",
        text(&result, "#resultat")
    );
    assert_eq!(
        attr(&result, "#resultat a", "href").as_deref(),
        Some("/achats/pack-10")
    );
    // Approving after the refusal changes nothing: the order only moves forward.
    let again = owner.browser.get(&payment).await;
    assert_eq!(
        again.status(),
        303,
        "a closed order's payment page sends to its result"
    );
    assert_eq!(counts(&app, owner.org()).await, (1, 0, 0));
    // No answer: the order waits, then expires.
    let (response, _) = buy(&owner, "pack-10").await;
    let payment = response.headers()["location"].to_str().unwrap().to_owned();
    let back = pay(&owner, &payment, "sans-reponse").await;
    let (_, result) = owner.browser.html(&back).await;
    assert!(text(&result, "#resultat").starts_with("Paiement en attente de confirmation."));
    let later = app.clock.now() + billing::ORDER_LIFETIME;
    assert_eq!(billing::expire_orders(&app.pool, later).await.unwrap(), 1);
    let (_, result) = owner.browser.html(&back).await;
    assert!(text(&result, "#resultat").starts_with("Commande expirée"));
}

#[tokio::test]
async fn double_submits_and_double_approvals_pay_once() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let (_, html) = owner.browser.html("/achats/pack-10").await;
    let csrf = attr(&html, "input[name=csrf]", "value").unwrap();
    let key = attr(&html, "input[name=cle]", "value").unwrap();
    let mut places = Vec::new();
    for _ in 0..3 {
        let response = owner
            .browser
            .client
            .post(format!("{}/achats/pack-10", owner.browser.base))
            .form(&[
                ("csrf", csrf.as_str()),
                ("cle", key.as_str()),
                ("prix", "1200"),
            ])
            .send()
            .await
            .unwrap();
        places.push(response.headers()["location"].to_str().unwrap().to_owned());
    }
    assert!(
        places.iter().all(|p| *p == places[0]),
        "one order: {places:?}"
    );
    let token = owner.browser.token(&places[0]).await;
    let approvals: Vec<_> = (0..5)
        .map(|_| {
            owner
                .browser
                .client
                .post(format!("{}{}", owner.browser.base, places[0]))
                .form(&[("csrf", token.as_str()), ("issue", "approuver")])
                .send()
        })
        .collect();
    for r in futures_util::future::join_all(approvals).await {
        assert_eq!(r.unwrap().status(), 303);
    }
    assert_eq!(counts(&app, owner.org()).await, (1, 1, 1));
    assert_eq!(
        nanoclip::services::credits::available(&app.pool, owner.org(), app.clock.now())
            .await
            .unwrap()
            .0,
        40
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn tampered_forms_and_other_people_s_orders_are_refused() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let (_, html) = owner.browser.html("/achats/pack-100").await;
    let csrf = attr(&html, "input[name=csrf]", "value").unwrap();
    let key = attr(&html, "input[name=cle]", "value").unwrap();
    for (pack, fields) in [
        ("pack-100", vec![("prix", "100")]),
        ("pack-100", vec![("prix", "9900"), ("quantite", "-1")]),
        ("pack-100", vec![("prix", "-9900")]),
    ] {
        let mut form = vec![("csrf", csrf.as_str()), ("cle", key.as_str())];
        form.extend(fields.iter().copied());
        let response = owner
            .browser
            .client
            .post(format!("{}/achats/{pack}", owner.browser.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{fields:?}");
        let html = scraper::Html::parse_document(&response.text().await.unwrap());
        assert!(text(&html, "#probleme").contains("Rien n’a été payé"));
    }
    let response = owner
        .browser
        .client
        .post(format!("{}/achats/pack-inexistant", owner.browser.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("cle", key.as_str()),
            ("prix", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        counts(&app, owner.org()).await.0,
        0,
        "no order from a tampered form"
    );
    // Another organisation's order: not found, and its payment page refuses.
    let (response, _) = buy(&owner, "pack-10").await;
    let payment = response.headers()["location"].to_str().unwrap().to_owned();
    let other = app.owner("eglise").await;
    assert_eq!(other.browser.get(&payment).await.status(), 404);
    let order = payment.trim_start_matches("/paiement-test/");
    assert_eq!(
        other
            .browser
            .get(&format!("/achats/retour/{order}"))
            .await
            .status(),
        404
    );
    let token = other.browser.token("/achats").await;
    let response = other
        .browser
        .client
        .post(format!("{}{}", other.browser.base, payment))
        .form(&[("csrf", token.as_str()), ("issue", "approuver")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // Members see the catalogue, not the purchase.
    let member = app.member(owner.org()).await;
    let (_, html) = member.browser.html("/achats").await;
    assert!(text(&html, "main").contains("Seul le propriétaire du compte"));
    assert_eq!(count(&html, "#packs a"), 0);
    assert_eq!(member.browser.get("/achats/pack-10").await.status(), 403);
    let refused = member.browser.get("/achats/historique").await;
    assert_eq!(refused.status(), 403);
    // The page says why: the owner's page, not an expired form (which it used to suggest).
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("réservés au propriétaire du compte"),
        "{page}"
    );
    assert!(!page.contains("formulaire a expiré"), "{page}");
    // A form without its token: that one has expired.
    let expired = member
        .browser
        .client
        .post(format!("{}/achats/pack-10", member.browser.base))
        .form(&[("csrf", "ancien")])
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 403);
    let page = expired.text().await.unwrap();
    assert!(page.contains("Le formulaire a expiré"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_event_delivered_many_times_in_any_order_pays_once_and_numbers_have_no_gap() {
    let app = spawn_app().await;
    let owner = app.owner("reseau").await;
    let catalog = nanoclip::services::catalog::CatalogCache::default()
        .get(&app.pool)
        .await
        .unwrap();
    let now = app.clock.now();
    let mut orders = Vec::new();
    for i in 0..30 {
        let order = billing::order_pack(
            &app.pool,
            &catalog,
            owner.org(),
            owner.id,
            "pack-10",
            &format!("{i:064}"),
            billing::Provider::Test,
            now,
        )
        .await
        .unwrap();
        orders.push(order);
    }
    // The first order's payment event, 10 times at once, then 10 times in a row.
    let event = |id: &'static str| Event {
        id,
        provider: "test",
        kind: "checkout.session.completed",
        session: None,
    };
    let storm: Vec<_> = (0..10)
        .map(|_| {
            billing::settle(
                &app.pool,
                orders[0],
                Settlement::Paid,
                Some(event("evt_first")),
                now,
            )
        })
        .collect();
    for outcome in futures_util::future::join_all(storm).await {
        outcome.unwrap();
    }
    for _ in 0..10 {
        billing::settle(
            &app.pool,
            orders[0],
            Settlement::Paid,
            Some(event("evt_first")),
            now,
        )
        .await
        .unwrap();
    }
    // Events for the others, shuffled with failures and duplicates, concurrently.
    let mut deliveries = Vec::new();
    for (i, order) in orders.iter().enumerate().skip(1) {
        let id: &'static str = Box::leak(format!("evt_{i}").into_boxed_str());
        deliveries.push((
            *order,
            Settlement::Failed("card_declined".into()),
            Box::leak(format!("evt_fail_{i}").into_boxed_str()) as &'static str,
        ));
        deliveries.push((*order, Settlement::Paid, id));
        deliveries.push((*order, Settlement::Paid, id));
    }
    deliveries.reverse();
    let futures: Vec<_> = deliveries
        .iter()
        .map(|(order, settlement, id)| {
            billing::settle(&app.pool, *order, settlement.clone(), Some(event(id)), now)
        })
        .collect();
    for outcome in futures_util::future::join_all(futures).await {
        outcome.unwrap();
    }
    // Every order paid once (a payment after a failure still counts), numbers 1..=30.
    assert_eq!(counts(&app, owner.org()).await, (30, 30, 30));
    let numbers: Vec<i32> = sqlx::query_scalar("SELECT sequence FROM invoices ORDER BY sequence")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(numbers, (1..=30).collect::<Vec<i32>>());
    assert_eq!(
        nanoclip::services::credits::available(&app.pool, owner.org(), now)
            .await
            .unwrap()
            .0,
        150 + 300
    );
    // An unknown order's event: answered without effect.
    assert!(
        billing::settle(
            &app.pool,
            Uuid::new_v4(),
            Settlement::Paid,
            Some(event("evt_x")),
            now
        )
        .await
        .is_err()
    );
    assert_ledger_clean(&app.pool).await;
}

const WEBHOOK_SECRET: &str = "whsec_for_the_tests_0123456789abcdef0123";

fn signed(body: &str) -> String {
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let mac = nanoclip::web::csrf::sign_bytes(
        WEBHOOK_SECRET.as_bytes(),
        format!("{t}.{body}").as_bytes(),
    );
    format!("t={t},v1={mac}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_payment_webhook_pays_once_whatever_the_deliveries_and_refuses_forgeries() {
    let mut config = crate::common::test_config();
    config.webhook_secret = Some(WEBHOOK_SECRET.into());
    let app = crate::common::spawn_app_with(config, None).await;
    let owner = app.owner("eglise").await;
    let order = order_pack_30(&app, &owner, 'a').await;
    let paid = format!(
        r#"{{"id":"evt_paid","type":"checkout.session.completed","data":{{"object":{{"id":"cs_test_1","payment_status":"paid","client_reference_id":"{order}"}}}}}}"#
    );
    let expired = format!(
        r#"{{"id":"evt_expired","type":"checkout.session.expired","data":{{"object":{{"id":"cs_test_1","client_reference_id":"{order}"}}}}}}"#
    );
    let send = |body: String, signature: Option<String>| {
        let mut request = app
            .client
            .post(app.url("/webhooks/paiement"))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(s) = signature {
            request = request.header("Stripe-Signature", s);
        }
        request.send()
    };
    // Forged or unsigned: refused, no effect.
    assert_eq!(send(paid.clone(), None).await.unwrap().status(), 400);
    let forged = format!(
        "t={},v1={}",
        time::OffsetDateTime::now_utc().unix_timestamp(),
        "0".repeat(64)
    );
    assert_eq!(
        send(paid.clone(), Some(forged)).await.unwrap().status(),
        400
    );
    assert_eq!(counts(&app, owner.org()).await, (1, 0, 0));
    // Ten at once, ten in a row, the expiry after: one grant, one invoice, still paid.
    let storm: Vec<_> = (0..10)
        .map(|_| send(paid.clone(), Some(signed(&paid))))
        .collect();
    for response in futures_util::future::join_all(storm).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    for _ in 0..10 {
        assert_eq!(
            send(paid.clone(), Some(signed(&paid)))
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(
        send(expired.clone(), Some(signed(&expired)))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(counts(&app, owner.org()).await, (1, 1, 1));
    let state: String = sqlx::query_scalar("SELECT state FROM orders")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "paid");
    // An unknown order or event type: 200, no effect.
    let unknown = format!(
        r#"{{"id":"evt_u","type":"checkout.session.completed","data":{{"object":{{"payment_status":"paid","client_reference_id":"{}"}}}}}}"#,
        Uuid::new_v4()
    );
    assert_eq!(
        send(unknown.clone(), Some(signed(&unknown)))
            .await
            .unwrap()
            .status(),
        200
    );
    let other = r#"{"id":"evt_o","type":"customer.created","data":{"object":{}}}"#.to_owned();
    assert_eq!(
        send(other.clone(), Some(signed(&other)))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(counts(&app, owner.org()).await, (1, 1, 1));
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_owners_double_submitting_and_double_approving_buy_one_pack_each() {
    let app = spawn_app().await;
    let mut owners = Vec::new();
    for _ in 0..50 {
        owners.push(app.owner("eglise").await);
    }
    let journeys = owners.iter().map(|owner| async move {
        let (_, html) = owner.browser.html("/achats/pack-10").await;
        let fields = ["csrf", "cle", "prix"].map(|n| {
            (
                n,
                attr(&html, &format!("input[name={n}]"), "value").unwrap(),
            )
        });
        let submit = || {
            owner
                .browser
                .client
                .post(format!("{}/achats/pack-10", owner.browser.base))
                .form(&fields)
                .send()
        };
        // The confirm button pressed twice at once.
        let (a, b) = futures_util::join!(submit(), submit());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!((a.status().as_u16(), b.status().as_u16()), (303, 303));
        let place = a.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(place, b.headers()["location"].to_str().unwrap());
        // The approve button pressed twice at once.
        let token = owner.browser.token(&place).await;
        let approve = || {
            owner
                .browser
                .client
                .post(format!("{}{}", owner.browser.base, place))
                .form(&[("csrf", token.as_str()), ("issue", "approuver")])
                .send()
        };
        let (a, b) = futures_util::join!(approve(), approve());
        assert_eq!(a.unwrap().status(), 303);
        assert_eq!(b.unwrap().status(), 303);
    });
    futures_util::future::join_all(journeys).await;
    for owner in &owners {
        assert_eq!(
            counts(&app, owner.org()).await,
            (1, 1, 1),
            "{}",
            owner.email
        );
    }
    let numbers: Vec<i32> = sqlx::query_scalar("SELECT sequence FROM invoices ORDER BY sequence")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(numbers, (1..=50).collect::<Vec<i32>>());
    assert_ledger_clean(&app.pool).await;
}

/// An order of a Pack 30 crédits (33,00 € TTC) by `owner`, through the service, now; `key` makes
/// its form key.
async fn order_pack_30(app: &TestApp, owner: &crate::common::accounts::Account, key: char) -> Uuid {
    let catalog = nanoclip::services::catalog::CatalogCache::default()
        .get(&app.pool)
        .await
        .unwrap();
    billing::order_pack(
        &app.pool,
        &catalog,
        owner.org(),
        owner.id,
        "pack-30",
        &key.to_string().repeat(64),
        billing::Provider::Test,
        app.clock.now(),
    )
    .await
    .unwrap()
}

/// `owner`'s organisation buys a Pack 30 crédits (33,00 € TTC) on 24 November 2026, paid at
/// once: the invoice's number.
async fn paid_invoice(app: &TestApp, owner: &crate::common::accounts::Account) -> String {
    app.clock.set(time::macros::datetime!(2026-11-24 10:00 UTC));
    let order = order_pack_30(app, owner, 'b').await;
    billing::settle(&app.pool, order, Settlement::Paid, None, app.clock.now())
        .await
        .unwrap();
    sqlx::query_scalar("SELECT number FROM invoices WHERE order_id = $1")
        .bind(order)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_invoice_pdf_is_for_the_owner_of_its_organisation_only() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let number = paid_invoice(&app, &owner).await;
    assert_eq!(number, "FA-2026-000001");
    let path = format!("/achats/factures/{number}.pdf");
    // A visitor is sent to the login, then back to the PDF.
    let visitor = app.get(&path).await;
    assert_eq!(visitor.status(), 303);
    assert_eq!(
        visitor.headers()["location"],
        "/compte/connexion?suite=%2Fachats%2Ffactures%2FFA-2026-000001.pdf"
    );
    // A member of the organisation: forbidden, as the page.
    let member = app.member(owner.org()).await;
    assert_eq!(member.browser.get(&path).await.status(), 403);
    // Another organisation's owner: no such invoice for them, whatever its number.
    let other = app.owner("eglise").await;
    assert_eq!(other.browser.get(&path).await.status(), 404);
    assert_eq!(
        other
            .browser
            .get("/achats/factures/FA-2026-000001")
            .await
            .status(),
        404
    );
    // Unknown numbers.
    for unknown in ["FA-2026-000002.pdf", "FA-2026-000001.PDF.pdf", ".pdf"] {
        assert_eq!(
            owner
                .browser
                .get(&format!("/achats/factures/{unknown}"))
                .await
                .status(),
            404,
            "{unknown}"
        );
    }
    // The owner downloads it: a PDF, as a named attachment, never cached.
    let response = owner.browser.get(&path).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"FA-2026-000001.pdf\""
    );
    assert_eq!(headers["cache-control"], "no-store");
    let pdf = response.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "{:?}", &pdf[..pdf.len().min(16)]);
    // The page without « .pdf » is still the HTML invoice.
    let (status, html) = owner
        .browser
        .html(&format!("/achats/factures/{number}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(text(&html, "#total-ttc"), "33,00\u{a0}€");
}

#[tokio::test]
async fn the_invoice_pdf_holds_the_invoice_s_facts_in_french() {
    use crate::common::pdf::{as_poppler_reads, pdftotext, shown_text};
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let number = paid_invoice(&app, &owner).await;
    let path = format!("/achats/factures/{number}.pdf");
    let pdf = owner.browser.get(&path).await.bytes().await.unwrap();
    let (_, page) = owner
        .browser
        .html(&format!("/achats/factures/{number}"))
        .await;
    let buyer: String = sqlx::query_scalar("SELECT name FROM organisations WHERE id = $1")
        .bind(owner.org())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // What the pages draw, exactly (the text a reader copies): no-break spaces included.
    let shown = shown_text(&pdf);
    for expected in [
        "Facture FA-2026-000001",
        "Émise le 24\u{a0}novembre 2026",
        "Vendeur",
        "NanoClip SAS (développement)",
        "SIREN 000 000 000",
        "TVA intracommunautaire FR00000000000",
        "Client",
        "Désignation",
        "HT",
        "TVA 20\u{a0}%",
        "TTC",
        "Pack 30 crédits",
        "27,50\u{a0}€",
        "5,50\u{a0}€",
        "33,00\u{a0}€",
        "Total",
        "Payée le 24\u{a0}novembre 2026.",
    ] {
        assert!(
            shown.iter().any(|s| s == expected),
            "{expected:?} in {shown:?}"
        );
    }
    // The same totals as the page; the buyer.
    for id in ["#total-ht", "#total-tva", "#total-ttc"] {
        let amount = text(&page, id);
        assert_eq!(
            shown.iter().filter(|s| **s == amount).count(),
            2,
            "{amount}: the line and the total"
        );
    }
    assert!(
        shown.contains(&buyer) && shown.contains(&owner.email),
        "the buyer {buyer:?} in {shown:?}"
    );
    // And as another program reads it (poppler, which turns every space into U+0020).
    let read = pdftotext(&pdf);
    for expected in [
        "Facture FA-2026-000001",
        "Émise le 24 novembre 2026",
        "27,50 €",
        "5,50 €",
        "33,00 €",
        "Désignation",
        "Payée le 24 novembre 2026.",
    ] {
        assert!(read.contains(expected), "{expected:?} in {read:?}");
    }
    assert_eq!(as_poppler_reads("1\u{202f}234,56\u{a0}€"), "1 234,56 €");
    // Made afresh each time, the same bytes.
    assert_eq!(owner.browser.get(&path).await.bytes().await.unwrap(), pdf);
}

#[tokio::test]
async fn the_invoice_page_and_the_history_link_to_the_pdf() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let number = paid_invoice(&app, &owner).await;
    let (_, page) = owner
        .browser
        .html(&format!("/achats/factures/{number}"))
        .await;
    assert_eq!(
        attr(&page, "a#pdf", "href").as_deref(),
        Some("/achats/factures/FA-2026-000001.pdf")
    );
    assert_eq!(text(&page, "a#pdf"), "Télécharger la facture en PDF");
    assert_eq!(
        attr(&page, "a#pdf", "type").as_deref(),
        Some("application/pdf")
    );
    let (_, history) = owner.browser.html("/achats/historique").await;
    let links = crate::common::select_attrs(&history, "#commandes tbody a", "href");
    assert_eq!(
        links,
        [
            "/achats/factures/FA-2026-000001",
            "/achats/factures/FA-2026-000001.pdf"
        ]
    );
    // The PDF link's name says which invoice (« PDF » alone is the same on every line).
    assert_eq!(
        text(&history, "#commandes tbody a[href$='.pdf']"),
        "PDF de la facture FA-2026-000001"
    );
}

#[test]
fn a_credit_note_pdf_reads_as_one_with_narrow_no_break_spaces_in_thousands() {
    // The renderer's other kind, not served yet: rendered directly.
    use nanoclip::domain::money::Cents;
    use nanoclip::pdf::{Amounts, Buyer, Document, Kind, Line, render};
    let amounts = Amounts {
        ht: Cents(-102_880),
        tva: Cents(-20_576),
        ttc: Cents(-123_456),
    };
    let credit_note = Document {
        kind: Kind::CreditNote,
        number: "AV-2026-000001".into(),
        date: time::macros::date!(2026 - 12 - 01),
        seller: crate::common::test_config().seller,
        buyer: Buyer {
            name: "Paroisse Saint-Éloi".into(),
            email: "tresorier@exemple.fr".into(),
        },
        lines: vec![Line {
            label: "Remboursement du Pack 100 crédits".into(),
            amounts,
        }],
        totals: amounts,
        cancels: Some("FA-2026-000042".into()),
    };
    let pdf = render(&credit_note).unwrap();
    let shown = crate::common::pdf::shown_text(&pdf);
    let read = crate::common::pdf::pdftotext(&pdf);
    for expected in [
        "Avoir AV-2026-000001",
        "Émis le 1er\u{a0}décembre 2026",
        "Annule la facture FA-2026-000042",
        "Paroisse Saint-Éloi",
        "−1\u{202f}028,80\u{a0}€",
        "−205,76\u{a0}€",
        "−1\u{202f}234,56\u{a0}€",
        "Remboursé le 1er\u{a0}décembre 2026.",
    ] {
        assert!(
            shown.iter().any(|s| s == expected),
            "{expected:?} in {shown:?}"
        );
        let poppler = crate::common::pdf::as_poppler_reads(expected);
        assert!(read.contains(&poppler), "{poppler:?} in {read:?}");
    }
    assert!(
        !read.contains("Facture") && !read.contains("Payée"),
        "{read}"
    );
}

#[tokio::test]
async fn a_refund_s_credit_note_downloads_as_an_avoir_naming_the_invoice_it_cancels() {
    use crate::common::pdf::{as_poppler_reads, pdftotext, shown_text};
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let invoice = paid_invoice(&app, &owner).await;
    let order: Uuid = sqlx::query_scalar("SELECT order_id FROM invoices WHERE number = $1")
        .bind(&invoice)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.clock.advance(time::Duration::days(1));
    let refund = billing::refund_pack(
        &app.pool,
        &nanoclip::services::payments::Payments::Test,
        order,
        "staff:test",
        "erreur de pack",
        app.clock.now(),
    )
    .await
    .unwrap();
    let credit_note = refund.credit_note.unwrap();
    assert_eq!(credit_note, "AV-2026-000001");
    // Linked from its page and from the history, next to the invoice's.
    let (_, page) = owner
        .browser
        .html(&format!("/achats/factures/{credit_note}"))
        .await;
    assert_eq!(text(&page, "a#pdf"), "Télécharger l’avoir en PDF");
    let (_, history) = owner.browser.html("/achats/historique").await;
    assert_eq!(
        text(
            &history,
            "#commandes tbody a[href='/achats/factures/AV-2026-000001.pdf']"
        ),
        "PDF de l’avoir AV-2026-000001"
    );
    let response = owner
        .browser
        .get(&format!("/achats/factures/{credit_note}.pdf"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"AV-2026-000001.pdf\""
    );
    let pdf = response.bytes().await.unwrap();
    let shown = shown_text(&pdf);
    let read = pdftotext(&pdf);
    for expected in [
        "Avoir AV-2026-000001",
        "Émis le 25\u{a0}novembre 2026",
        "Annule la facture FA-2026-000001",
        "33,00\u{a0}€",
        "Remboursé le 25\u{a0}novembre 2026.",
    ] {
        assert!(
            shown.iter().any(|s| s == expected),
            "{expected:?} in {shown:?}"
        );
        assert!(
            read.contains(&as_poppler_reads(expected)),
            "{expected:?} in {read:?}"
        );
    }
    assert!(!read.contains("Payée"), "{read}");
}

#[tokio::test]
async fn approving_a_declined_order_by_posting_the_test_page_pays_nothing() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let (response, _) = buy(&owner, "pack-100").await;
    let payment = response.headers()["location"].to_str().unwrap().to_owned();
    pay(&owner, &payment, "refuser").await;
    let token = owner.browser.token("/achats").await;
    let response = owner
        .browser
        .client
        .post(format!("{}{}", owner.browser.base, payment))
        .form(&[("csrf", token.as_str()), ("issue", "approuver")])
        .send()
        .await
        .unwrap();
    assert!(response.status().as_u16() < 500, "{}", response.status());
    let state: String = sqlx::query_scalar("SELECT state FROM orders WHERE organisation_id = $1")
        .bind(owner.org())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "failed", "a declined order stays declined");
    assert_eq!(
        counts(&app, owner.org()).await,
        (1, 0, 0),
        "no credits, no invoice"
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn the_confirmation_counts_the_last_day_from_paris_s_date_on_new_year_s_eve() {
    let app = spawn_app().await;
    app.clock.set(time::macros::datetime!(2026-12-31 23:30 UTC));
    let owner = app.owner("eglise").await;
    let (_, confirm) = owner.browser.html("/achats/pack-30").await;
    let summary = text(&confirm, "#recapitulatif");
    assert!(
        summary.contains("jusqu’au 1er\u{a0}janvier 2028 inclus"),
        "{summary}"
    );
}
