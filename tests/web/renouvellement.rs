//! Renewal charges: the period's price charged through the test provider at each period end,
//! granted once however many runners; a failure makes the subscription past due (no allotment,
//! one e-mail, a banner), retried on days 1, 3 and 7, then suspended (launches refused, pages
//! readable) until the owner pays from the e-mail's link.

use nanoclip::domain::billing::ChargeOutcome;
use nanoclip::domain::money::Credits;
use nanoclip::services::{billing, credits};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::common::accounts::Account;
use crate::common::{TestApp, spawn_app, text};
use crate::credits::assert_ledger_clean;

/// The first period of a subscription opened on 1 December 2026 ends at midnight, Paris.
const END: OffsetDateTime = datetime!(2026-12-31 23:00 UTC);

async fn owner_on_eglise(app: &TestApp) -> Account {
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    app.owner("eglise").await
}

async fn decline(app: &TestApp, org: Uuid, outcome: ChargeOutcome) {
    billing::set_test_outcome(&app.pool, org, outcome, app.clock.now())
        .await
        .unwrap();
}

async fn status(app: &TestApp, org: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM subscriptions WHERE organisation_id = $1")
        .bind(org)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// (charge attempts, paid renewal orders, invoices, allotments of period 2).
async fn counts(app: &TestApp, org: Uuid) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM charge_attempts a JOIN orders o ON o.id = a.order_id WHERE o.organisation_id = $1),
                (SELECT count(*) FROM orders WHERE organisation_id = $1 AND kind = 'renewal' AND state = 'paid'),
                (SELECT count(*) FROM invoices WHERE organisation_id = $1),
                (SELECT count(*) FROM credit_buckets WHERE organisation_id = $1 AND grant_key = 'period:2')",
    )
    .bind(org)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn emails(app: &TestApp, to: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE to_address = $1")
        .bind(to)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn available(app: &TestApp, org: Uuid, at: OffsetDateTime) -> Credits {
    credits::available(&app.pool, org, at).await.unwrap()
}

#[tokio::test]
async fn a_renewal_charges_the_period_and_grants_once_whatever_runs_it_concurrently_or_twice() {
    let app = spawn_app().await;
    let owner = owner_on_eglise(&app).await;
    let org = owner.org();
    assert_eq!(app.renew_due(END - Duration::seconds(1)).await.unwrap(), 0);
    let (a, b, c, d) = tokio::join!(
        app.renew_due(END),
        app.renew_due(END),
        app.renew_due(END),
        app.renew_due(END)
    );
    assert_eq!(a.unwrap() + b.unwrap() + c.unwrap() + d.unwrap(), 1);
    assert_eq!(app.renew_due(END).await.unwrap(), 0);
    assert_eq!(app.renew_due(END).await.unwrap(), 0);
    // 10 carried over (Église's cap) and the new allotment.
    assert_eq!(available(&app, org, END).await, Credits(40));
    assert_eq!(counts(&app, org).await, (1, 1, 1, 1));
    let invoice: (String, String, i64) =
        sqlx::query_as("SELECT number, label, ttc_cents FROM invoices WHERE organisation_id = $1")
            .bind(org)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        invoice,
        (
            "FA-2027-000001".to_owned(),
            "Plan Église (renouvellement)".to_owned(),
            2900
        )
    );
    assert_eq!(status(&app, org).await, "active");
    // The job runner does the same (and nothing more when run again).
    let context = nanoclip::jobs::Context::default();
    for _ in 0..2 {
        nanoclip::jobs::run(&app.pool, nanoclip::jobs::Job::Renew, END, &context)
            .await
            .unwrap();
    }
    assert_eq!(counts(&app, org).await, (1, 1, 1, 1));
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn a_failed_renewal_is_past_due_with_no_allotment_one_email_and_a_banner() {
    let app = spawn_app().await;
    let owner = owner_on_eglise(&app).await;
    let org = owner.org();
    decline(&app, org, ChargeOutcome::InsufficientFunds).await;
    let before = emails(&app, &owner.email).await;
    let (a, b) = tokio::join!(app.renew_due(END), app.renew_due(END));
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(status(&app, org).await, "past_due");
    assert_eq!(
        available(&app, org, END).await,
        Credits(10),
        "the rollover only"
    );
    assert_eq!(counts(&app, org).await, (1, 0, 0, 0));
    assert_eq!(emails(&app, &owner.email).await, before + 1);
    let (subject, body) = app.last_email(&owner.email).await;
    assert!(subject.contains("n’a pas abouti"), "{subject}");
    assert!(body.contains("29,00\u{a0}€"), "{body}");
    assert!(body.contains("fonds insuffisants"), "{body}");
    assert!(
        body.contains("Nous réessaierons le 2\u{a0}janvier 2027"),
        "{body}"
    );
    assert_eq!(
        app.link_in_last_email(&owner.email).await,
        "/abonnement#reglement"
    );
    // Running again sends nothing more.
    app.renew_due(END + Duration::hours(1)).await.unwrap();
    assert_eq!(emails(&app, &owner.email).await, before + 1);
    app.clock.set(END + Duration::hours(2));
    let browser = app.sign_in_again(&owner).await;
    let (status_code, html) = browser.html("/tableau-de-bord").await;
    assert_eq!(status_code, 200);
    let banner = text(&html, "#impaye");
    assert!(
        banner.starts_with("Le paiement de votre abonnement n’a pas abouti."),
        "{banner}"
    );
    assert!(
        banner.contains("Nous réessaierons le 2\u{a0}janvier 2027."),
        "{banner}"
    );
    assert!(
        banner.contains("Régler 29,00\u{a0}€ maintenant"),
        "{banner}"
    );
    let (_, html) = browser.html("/abonnement").await;
    assert!(text(&html, "#impaye").contains("n’a pas abouti"));
    let state = text(&html, "#etat");
    assert!(
        state.starts_with("État\u{a0}: paiement en attente")
            && state.contains("prochaine tentative le 2\u{a0}janvier 2027."),
        "{state}"
    );
    assert!(
        text(&html, "#prochain").contains(
            "Prochain renouvellement le 31\u{a0}janvier 2027 au soir\u{a0}: 29,00\u{a0}€"
        ),
        "{}",
        text(&html, "#prochain")
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn renewal_retries_come_on_days_1_3_and_7_only_and_a_successful_retry_reactivates() {
    let app = spawn_app().await;
    let owner = owner_on_eglise(&app).await;
    let org = owner.org();
    decline(&app, org, ChargeOutcome::CardDeclined).await;
    app.renew_due(END).await.unwrap();
    let attempts = |app: &TestApp| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM charge_attempts a JOIN orders o ON o.id = a.order_id WHERE o.organisation_id = $1",
            )
            .bind(org)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(attempts(&app).await, 1);
    // Not before day 1; day 1 once, however often the job runs.
    app.renew_due(END + Duration::hours(23)).await.unwrap();
    assert_eq!(attempts(&app).await, 1);
    for _ in 0..2 {
        app.renew_due(END + Duration::days(1)).await.unwrap();
    }
    assert_eq!(attempts(&app).await, 2);
    app.renew_due(END + Duration::days(2)).await.unwrap();
    assert_eq!(attempts(&app).await, 2);
    assert_eq!(status(&app, org).await, "past_due");
    // The card works again: day 3's retry is paid, the allotment granted.
    decline(&app, org, ChargeOutcome::Paid).await;
    let day3 = END + Duration::days(3);
    let (a, b) = tokio::join!(app.renew_due(day3), app.renew_due(day3));
    a.unwrap();
    b.unwrap();
    assert_eq!(attempts(&app).await, 3);
    assert_eq!(status(&app, org).await, "active");
    assert_eq!(available(&app, org, day3).await, Credits(40));
    assert_eq!(counts(&app, org).await, (3, 1, 1, 1));
    // No day 7 retry for a paid subscription.
    app.renew_due(END + Duration::days(7)).await.unwrap();
    assert_eq!(attempts(&app).await, 3);
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn after_the_last_retry_the_subscription_is_suspended_and_paying_from_the_email_reactivates_once()
 {
    let app = spawn_app().await;
    let owner = owner_on_eglise(&app).await;
    let org = owner.org();
    decline(&app, org, ChargeOutcome::ExpiredCard).await;
    for day in [0, 1, 3] {
        app.renew_due(END + Duration::days(day)).await.unwrap();
        assert_eq!(status(&app, org).await, "past_due", "day {day}");
    }
    let before = emails(&app, &owner.email).await;
    app.renew_due(END + Duration::days(7)).await.unwrap();
    assert_eq!(status(&app, org).await, "suspended");
    assert_eq!(counts(&app, org).await, (4, 0, 0, 0));
    assert_eq!(emails(&app, &owner.email).await, before + 1);
    let (subject, _) = app.last_email(&owner.email).await;
    assert!(subject.contains("est suspendu"), "{subject}");
    // Nothing more is tried.
    app.renew_due(END + Duration::days(20)).await.unwrap();
    assert_eq!(counts(&app, org).await.0, 4);

    app.clock.set(END + Duration::days(8));
    let browser = app.sign_in_again(&owner).await;
    // Launches are refused as suspended, with the way out; nothing is held.
    let response = browser
        .submit(
            "/generations",
            "/generations",
            &[("type", "image"), ("prompt", "Un vitrail lumineux")],
        )
        .await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let (_, html) = browser.html(&location).await;
    let notice = text(&html, "#lancement");
    assert!(
        notice.contains("Votre abonnement est suspendu") && notice.contains("régler l’abonnement"),
        "{notice}"
    );
    // Guides, balance and history stay readable.
    for page in [
        "/tableau-de-bord",
        "/credits/historique",
        "/aide/credits-et-limites",
        "/abonnement",
    ] {
        assert_eq!(browser.html(page).await.0, 200, "{page}");
    }
    let (_, html) = browser.html("/tableau-de-bord").await;
    assert!(text(&html, "#disponible").starts_with("10\u{a0}crédits"));
    assert!(text(&html, "#impaye").starts_with("Votre abonnement est suspendu."));
    // The e-mail's link: the subscription page, its button, the provider's page.
    let link = app.link_in_last_email(&owner.email).await;
    assert_eq!(link, "/abonnement#reglement");
    let response = browser
        .submit("/abonnement", "/abonnement/reglement", &[])
        .await;
    assert_eq!(response.status(), 303);
    let payment = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(payment.starts_with("/paiement-test/"), "{payment}");
    let (_, page) = browser.html(&payment).await;
    assert!(text(&page, "main").contains("29,00\u{a0}€"));
    // Approved twice (a double click): paid once.
    let token = browser.token(&payment).await;
    for _ in 0..2 {
        let response = browser
            .client
            .post(format!("{}{payment}", browser.base))
            .form(&[("csrf", token.as_str()), ("issue", "approuver")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
    }
    let now = app.clock.now();
    assert_eq!(status(&app, org).await, "active");
    assert_eq!(available(&app, org, now).await, Credits(40));
    assert_eq!(counts(&app, org).await, (4, 1, 1, 1));
    // Nothing owed any more: the button leads back to the page, with no banner.
    let response = browser
        .submit("/abonnement", "/abonnement/reglement", &[])
        .await;
    assert_eq!(response.headers()["location"], "/abonnement");
    let (_, html) = browser.html("/tableau-de-bord").await;
    assert!(
        html.select(&scraper::Selector::parse("#impaye").unwrap())
            .next()
            .is_none()
    );
    // Launches work again.
    let response = browser
        .submit("/generations", "/generations", &[("type", "image")])
        .await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/generations?lancee="), "{location}");
    assert_ledger_clean(&app.pool).await;
}

/// More than a batch (100) of subscriptions whose period ended while their renewal's charge is
/// still processing (a bank debit: its attempt stays open, the renewal waits): the renewals
/// used to fetch the same 100 again for ever, renewing no one else. Each is visited once per
/// run, and a subscription after them is renewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_renewals_visit_each_subscription_once_even_when_a_batch_cannot_renew() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    for _ in 0..101 {
        crate::credits::organisation_with(&app, "eglise", 30).await;
    }
    // Each one's renewal of the ended period waits for its processing debit.
    sqlx::query(
        "WITH o AS (
             INSERT INTO orders (organisation_id, kind, plan_id, label, amount_cents, credits, state, provider,
                                 idempotency_key, form_key, created_at, updated_at, expires_at, period_number, period_start)
             SELECT s.organisation_id, 'renewal', s.plan_id, 'essai', 2900, 30, 'pending', 'test',
                    gen_random_uuid()::text, 'essai', now(), now(), now() + interval '60 days', s.period_number, s.period_start
             FROM subscriptions s
             RETURNING id, idempotency_key)
         INSERT INTO charge_attempts (order_id, number, idempotency_key, started_at, ask_again_at)
         SELECT id, 1, idempotency_key || ':1', now(), now() + interval '60 days' FROM o",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    // One more subscription, with nothing in the way.
    let free = crate::credits::organisation_with(&app, "eglise", 30).await;
    let after_end = datetime!(2027-01-01 02:00 UTC);
    app.clock.set(after_end);
    let run = tokio::time::timeout(std::time::Duration::from_secs(60), app.renew_due(after_end))
        .await
        .expect("the renewals' run ended");
    assert_eq!(run.unwrap(), 1, "only the free subscription renewed");
    let period: i32 =
        sqlx::query_scalar("SELECT period_number FROM subscriptions WHERE organisation_id = $1")
            .bind(free)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(period, 2);
}
