//! `/abonnement`: an upgrade paid now and prorated as the guide's example says; a downgrade
//! previewed, scheduled, cancelled, and applied by the renewal.

use nanoclip::domain::money::Credits;
use time::macros::datetime;

use crate::common::{Browser, attr, select_texts, spawn_app, text};
use crate::credits::assert_ledger_clean;

/// The change-of-plan form of an /abonnement page: its CSRF token, its key, and the upgrade's
/// price it shows (none on a page without an upgrade).
fn change_form(html: &scraper::Html) -> (String, String, String, String) {
    let field = |name: &str| {
        attr(
            html,
            &format!("form[action='/abonnement/changement'] input[name={name}]"),
            "value",
        )
        .unwrap_or_default()
    };
    (field("csrf"), field("cle"), field("prix"), field("credits"))
}

/// That form sent for `plan` (as a tab does, with its own token and key): where it leads.
async fn send_change(
    browser: &Browser,
    (token, key, price, credits): &(String, String, String, String),
    plan: &str,
) -> String {
    let response = browser
        .client
        .post(format!("{}/abonnement/changement", browser.base))
        .form(&[
            ("csrf", token.as_str()),
            ("cle", key.as_str()),
            ("plan", plan),
            ("prix", price.as_str()),
            ("credits", credits.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The owner reads the upgrade's price, and sends the form an hour later: the prorata has
/// fallen by then. Nothing is ordered at a price the page did not show: the page comes back
/// with the new price, which is the one charged. An order left open (another tab, or the
/// provider's page left) is the price the page shows, and the one paid.
#[tokio::test]
async fn an_upgrade_charges_the_price_the_page_showed_or_shows_the_new_one() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    let owner = app.owner("eglise").await;
    app.clock.set(datetime!(2026-12-16 11:00 UTC));
    let browser = app.sign_in_again(&owner).await;
    let (_, html) = browser.html("/abonnement").await;
    let old = change_form(&html);
    assert_eq!(
        text(&html, "#prorata-tva"),
        "Montant TTC, dont 5,83\u{a0}€ de TVA (20\u{a0}%). Vous recevez une facture après le paiement."
    );
    app.clock.set(datetime!(2026-12-16 12:00 UTC));
    let back = send_change(&browser, &old, "reseau").await;
    assert_eq!(back, "/abonnement?info=prix#monter");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE kind = 'upgrade'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(orders, 0);
    let (_, html) = browser.html("/abonnement?info=prix").await;
    assert!(text(&html, "#info").starts_with("Le montant a changé"));
    let new = change_form(&html);
    assert!(
        new.2.parse::<i64>().unwrap() < old.2.parse::<i64>().unwrap(),
        "{old:?} {new:?}"
    );
    let payment = send_change(&browser, &new, "reseau").await;
    assert!(payment.starts_with("/paiement-test/"), "{payment}");
    let amount: i64 = sqlx::query_scalar("SELECT amount_cents FROM orders WHERE kind = 'upgrade'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(amount.to_string(), new.2);
    // The payer leaves the provider's page; half an hour later (the order is open for an hour)
    // the page shows the open order's price, and its form pays that order.
    app.clock.set(datetime!(2026-12-16 12:30 UTC));
    let (_, html) = browser.html("/abonnement").await;
    let again = change_form(&html);
    assert_eq!(again.2, new.2);
    assert_eq!(send_change(&browser, &again, "reseau").await, payment);
    // A form without its price, or with another one, orders nothing.
    let (_, html) = browser.html("/abonnement").await;
    let (token, key, price, credits) = change_form(&html);
    for (price, credits) in [
        ("", credits.as_str()),
        ("1", credits.as_str()),
        ("abc", credits.as_str()),
        (price.as_str(), ""),
        (price.as_str(), "999"),
    ] {
        let form = (
            token.clone(),
            key.clone(),
            price.to_owned(),
            credits.to_owned(),
        );
        let back = send_change(&browser, &form, "reseau").await;
        assert_eq!(
            back, "/abonnement?info=prix#monter",
            "{price:?} {credits:?}"
        );
    }
}

#[tokio::test]
async fn an_upgrade_halfway_through_the_period_costs_half_the_difference_and_gives_half_the_credits()
 {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    let owner = app.owner("eglise").await;
    // Half of the period (1 December 00:00 to 1 January 00:00, Paris): 16 December, 12:00.
    app.clock.set(datetime!(2026-12-16 11:00 UTC));
    let browser = app.sign_in_again(&owner).await;
    let (status, html) = browser.html("/abonnement").await;
    assert_eq!(status, 200);
    assert_eq!(text(&html, "#prorata"), "35,00\u{a0}€");
    assert!(text(&html, "main").contains("60\u{a0}crédits en plus"));
    let payment = send_change(&browser, &change_form(&html), "reseau").await;
    let response = browser
        .submit(&payment, &payment, &[("issue", "approuver")])
        .await;
    assert_eq!(response.status(), 303);
    let (_, html) = browser.html("/abonnement").await;
    assert!(text(&html, "#plan-actuel").contains("Plan Réseau"));
    let now = app.clock.now();
    assert_eq!(
        nanoclip::services::credits::available(&app.pool, owner.org(), now)
            .await
            .unwrap(),
        Credits(90)
    );
    // The dashboard's lines never promise more carried over than Plan Réseau's cap of 50 in all
    // (they said « jusqu’à 30 » and « jusqu’à 50 »): 30, then the upgrade's 20.
    let (_, dashboard) = browser.html("/tableau-de-bord").await;
    let lines = select_texts(&dashboard, "#reserves li");
    let carried: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split("(jusqu’à ").nth(1))
        .collect();
    assert_eq!(carried, ["30 reportés)", "20 reportés)"], "{lines:?}");
    let invoice: (String, i64) = sqlx::query_as("SELECT label, ttc_cents FROM invoices")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        invoice,
        ("Plan Église → Plan Réseau (prorata)".to_owned(), 3500)
    );
    // At renewal the upgrade's extra credits count as the period's allotment: up to 50 carry.
    let renewed = app
        .renew_due(datetime!(2026-12-31 23:00 UTC))
        .await
        .unwrap();
    assert_eq!(renewed, 1);
    assert_eq!(
        nanoclip::services::credits::available(
            &app.pool,
            owner.org(),
            datetime!(2026-12-31 23:00 UTC)
        )
        .await
        .unwrap(),
        Credits(50 + 150)
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn a_downgrade_is_previewed_scheduled_cancellable_and_applied_at_renewal() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    let owner = app.owner("reseau").await;
    let (_, html) = owner.browser.html("/abonnement?apercu=eglise").await;
    let preview = text(&html, "#apercu");
    assert!(preview.contains("10\u{a0}crédits reportés"), "{preview}");
    assert!(preview.contains("140\u{a0}crédits expireront"), "{preview}");
    assert!(
        preview.contains(
            "fonctions perdues\u{a0}: 4K, API, Branding personnalisé, Support prioritaire"
        ),
        "{preview}"
    );
    assert!(
        preview.contains("15 générations par jour (au lieu de 60)"),
        "{preview}"
    );
    let response = owner
        .browser
        .submit(
            "/abonnement?apercu=eglise",
            "/abonnement/changement",
            &[("plan", "eglise")],
        )
        .await;
    assert_eq!(response.headers()["location"], "/abonnement?info=programme");
    let (_, html) = owner.browser.html("/abonnement").await;
    assert!(
        text(&html, "#prochain")
            .contains("passera au Plan Église\u{a0}: prochain prélèvement de 29,00\u{a0}€"),
        "{}",
        text(&html, "#prochain")
    );
    // Cancelled, then scheduled again.
    let response = owner
        .browser
        .submit("/abonnement", "/abonnement/annulation", &[])
        .await;
    assert_eq!(response.headers()["location"], "/abonnement?info=annule");
    let (_, html) = owner.browser.html("/abonnement").await;
    assert!(text(&html, "#prochain").starts_with("Prochain renouvellement"));
    owner
        .browser
        .submit(
            "/abonnement",
            "/abonnement/changement",
            &[("plan", "eglise")],
        )
        .await;
    // Members see the plan, not the buttons.
    let member = app.member(owner.org()).await;
    let (_, html) = member.browser.html("/abonnement").await;
    assert!(text(&html, "main").contains("Seul le propriétaire du compte peut changer de plan"));
    assert_eq!(
        member
            .browser
            .submit("/abonnement", "/abonnement/annulation", &[])
            .await
            .status(),
        403
    );
    // The renewal applies it: Église's cap (10) carries, Église's allotment (30) is granted.
    let end = datetime!(2026-12-31 23:00 UTC);
    assert_eq!(app.renew_due(end).await.unwrap(), 1);
    assert_eq!(
        nanoclip::services::credits::available(&app.pool, owner.org(), end)
            .await
            .unwrap(),
        Credits(40)
    );
    let plan: String = sqlx::query_scalar("SELECT plan_id FROM organisations WHERE id = $1")
        .bind(owner.org())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(plan, "eglise");
    assert_ledger_clean(&app.pool).await;
}

/// Review: an upgrade is quoted for the time left in the current period. Asked for ten minutes
/// before the period ends (a few cents) and paid once the renewal has started the next period
/// on Plan Église (29 €), it must not put the organisation on Plan Réseau for the whole new
/// period for those few cents.
#[tokio::test]
async fn an_upgrade_quoted_in_a_period_that_ended_before_its_payment_changes_no_plan() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    let owner = app.owner("eglise").await;
    // The period ends on 1 January, 00:00 Paris (23:00 UTC): ten minutes before.
    app.clock.set(datetime!(2026-12-31 22:50 UTC));
    let browser = app.sign_in_again(&owner).await;
    let (_, html) = browser.html("/abonnement").await;
    let payment = send_change(&browser, &change_form(&html), "reseau").await;
    let amount: i64 = sqlx::query_scalar("SELECT amount_cents FROM orders WHERE kind = 'upgrade'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        amount < 100,
        "ten minutes of the difference: {amount} cents"
    );
    // The period ends; the renewal charges Plan Église's 29 € for January.
    assert_eq!(
        app.renew_due(datetime!(2026-12-31 23:01 UTC))
            .await
            .unwrap(),
        1
    );
    // The payer approves the upgrade afterwards (its order is still open).
    app.clock.set(datetime!(2026-12-31 23:05 UTC));
    let response = browser
        .submit(&payment, &payment, &[("issue", "approuver")])
        .await;
    assert!(response.status().as_u16() < 500);
    let plan: String = sqlx::query_scalar("SELECT plan_id FROM organisations WHERE id = $1")
        .bind(owner.org())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        plan, "eglise",
        "January was charged at Plan Église's price: a December quote of {amount} cents must not buy Plan Réseau for it"
    );
    assert_ledger_clean(&app.pool).await;
}

/// The owner opens « Passer au Plan Réseau » in two tabs (or goes back and sends the form again
/// with the new key the page gave). Both tabs must pay the one upgrade open, once: two orders
/// used to be paid and applied (a second prorated charge, a second grant of the extra credits,
/// a second invoice). An upgrade is applied once.
#[tokio::test]
async fn an_upgrade_ordered_in_two_tabs_is_charged_and_applied_once() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    let owner = app.owner("eglise").await;
    app.clock.set(datetime!(2026-12-16 11:00 UTC));
    let browser = app.sign_in_again(&owner).await;
    // Two tabs on /abonnement, each with its form and its key.
    let mut payments = Vec::new();
    for _ in 0..2 {
        let (_, html) = browser.html("/abonnement").await;
        payments.push(change_form(&html));
    }
    let mut pages = Vec::new();
    for form in &payments {
        pages.push(send_change(&browser, form, "reseau").await);
    }
    // Both tabs pay the same order (one upgrade open at a time): approved in the first tab, the
    // second tab's payment page sends to its result.
    assert_eq!(pages[0], pages[1]);
    let response = browser
        .submit(&pages[0], &pages[0], &[("issue", "approuver")])
        .await;
    assert_eq!(response.status(), 303);
    let again = browser.get(&pages[1]).await;
    assert_eq!(again.status(), 303);
    assert!(
        again.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/achats/retour/"),
        "{:?}",
        again.headers()
    );
    let (paid, grants, invoices): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders WHERE organisation_id = $1 AND kind = 'upgrade' AND state = 'paid'),
                (SELECT count(*) FROM credit_ledger l JOIN orders o ON l.reference = 'order:' || o.id
                  WHERE o.organisation_id = $1 AND o.kind = 'upgrade' AND l.kind = 'grant'),
                (SELECT count(*) FROM invoices i JOIN orders o ON o.id = i.order_id
                  WHERE o.organisation_id = $1 AND o.kind = 'upgrade' AND i.series = 'FA')",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let now = app.clock.now();
    let available = nanoclip::services::credits::available(&app.pool, owner.org(), now)
        .await
        .unwrap();
    assert_eq!(
        (paid, grants, invoices, available),
        (1, 1, 1, Credits(90)),
        "one upgrade (35,00 €, 60 extra credits): (paid orders, grants, invoices, balance)"
    );
    assert_ledger_clean(&app.pool).await;
}
