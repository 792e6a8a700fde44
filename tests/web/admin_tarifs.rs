//! `/admin/tarifs` and `/admin/packs`: versions of the price schedule dated today or later, the
//! switch on the effective date without a restart, the preview on a date to come, packs added,
//! changed and retired; refusals in French with the values kept; every change audited.

use serde_json::Value;
use time::macros::datetime;

use crate::common::accounts::Account;
use crate::common::{TestApp, attr, count, select_attrs, select_texts, spawn_app, text};

const PAGE: &str = "/admin/tarifs";

/// The new-version form's values, by field name (`regle-N`), with each rule's label.
async fn version_form(staff: &Account) -> (String, Vec<(String, String, String)>) {
    let (status, html) = staff.browser.html(PAGE).await;
    assert_eq!(status, 200);
    let base = attr(&html, "input[name=base]", "value").unwrap();
    let names = select_attrs(&html, "input[name^=regle-]", "name");
    let values = select_attrs(&html, "input[name^=regle-]", "value");
    let labels = select_texts(&html, "label[for^=champ-regle-]");
    assert_eq!(names.len(), 12, "the seeded schedule has 12 rules");
    let rules = names
        .into_iter()
        .zip(labels)
        .zip(values)
        .map(|((n, l), v)| (n, l, v))
        .collect();
    (base, rules)
}

async fn audit(app: &TestApp, action: &str) -> Vec<(String, String, Option<Value>, Option<Value>)> {
    sqlx::query_as(
        "SELECT actor, reason, before, after FROM audit_log WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn image_cost(app: &TestApp) -> i64 {
    let body: Value = app
        .get("/api/v1/simulateur?type=image")
        .await
        .json()
        .await
        .unwrap();
    body["unit_cost"].as_i64().unwrap()
}

#[tokio::test]
async fn a_price_version_dated_in_the_past_or_with_bad_values_is_refused_and_keeps_what_was_typed()
{
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-10 10:00 UTC));
    let staff = app.staff().await;
    let (base, rules) = version_form(&staff).await;
    let mut fields: Vec<(String, String)> = rules
        .iter()
        .map(|(n, _, v)| (n.clone(), v.clone()))
        .collect();
    fields[0].1 = "0".into();
    fields[1].1 = "-2".into();
    fields[2].1 = "trois".into();
    fields.push(("base".into(), base));
    fields.push(("date".into(), "2026-12-09".into()));
    fields.push(("motif".into(), " ".into()));
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let refused = staff.browser.submit(PAGE, PAGE, &form).await;
    assert_eq!(refused.status(), 400);
    let html = scraper::Html::parse_document(&refused.text().await.unwrap());
    assert!(text(&html, "#erreurs-version").contains("pas publiée"));
    assert!(
        text(&html, "#erreur-date").contains("passée"),
        "a date in the past"
    );
    assert!(text(&html, "#erreur-regle-0").contains("supérieure à zéro"));
    assert!(text(&html, "#erreur-regle-1").contains("supérieure à zéro"));
    assert!(text(&html, "#erreur-regle-2").contains("pas un nombre"));
    assert!(text(&html, "#erreur-motif").contains("motif"));
    assert_eq!(attr(&html, "#champ-date", "value").unwrap(), "2026-12-09");
    assert_eq!(attr(&html, "#champ-regle-1", "value").unwrap(), "-2");
    assert_eq!(attr(&html, "#champ-regle-2", "value").unwrap(), "trois");
    assert_eq!(
        attr(&html, "#champ-regle-0", "aria-invalid").unwrap(),
        "true"
    );
    // A bad date format too.
    let mut bad_format = form.clone();
    bad_format.retain(|(k, _)| *k != "date");
    bad_format.push(("date", "01/01/2027"));
    let refused = staff.browser.submit(PAGE, PAGE, &bad_format).await;
    assert_eq!(refused.status(), 400);
    let html = scraper::Html::parse_document(&refused.text().await.unwrap());
    assert!(text(&html, "#erreur-date").contains("2027-01-01"));
    let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM price_schedules")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(versions, 1, "nothing published");
    assert!(audit(&app, "prices.schedule").await.is_empty());
    // Nothing is edited in place, even in SQL.
    for statement in [
        "UPDATE price_rules SET credits = 9",
        "DELETE FROM price_schedules",
        "UPDATE pack_versions SET price_cents = 1",
        "DELETE FROM packs",
        "TRUNCATE price_rules",
    ] {
        let refused = sqlx::query(statement).execute(&app.pool).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("append-only")),
            "{statement}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn a_new_version_applies_from_its_date_without_a_restart_and_can_be_previewed() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-10 10:00 UTC));
    let staff = app.staff().await;
    let owner = app.owner("eglise").await;
    let (base, rules) = version_form(&staff).await;
    // The image's price goes from 1 to 2 credits on 1 January 2027.
    let image = rules
        .iter()
        .position(|(_, label, _)| label.starts_with("Image") && !label.contains("4K"))
        .unwrap();
    assert_eq!(rules[image].2, "1");
    let mut fields: Vec<(String, String)> = rules
        .iter()
        .map(|(n, _, v)| (n.clone(), v.clone()))
        .collect();
    fields[image].1 = "2".into();
    fields.push(("base".into(), base.clone()));
    fields.push(("date".into(), "2027-01-01".into()));
    fields.push(("motif".into(), "Hausse du 1er janvier".into()));
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // The guide and the simulator read before: served from memory since.
    let (_, guide) = app.get_html("/aide/tarifs").await;
    assert!(text(&guide, "#tableau-bareme").contains("1er\u{a0}janvier 2026"));
    assert_eq!(image_cost(&app).await, 1);
    let done = staff.browser.submit(PAGE, PAGE, &form).await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()["location"].to_str().unwrap(),
        "/admin/tarifs?avis=publiee"
    );
    let entries = audit(&app, "prices.schedule").await;
    assert_eq!(entries.len(), 1);
    let (actor, reason, before, after) = &entries[0];
    assert_eq!(actor, &format!("staff:{}", staff.email));
    assert_eq!(reason, "Hausse du 1er janvier");
    let image_value = |v: &Option<Value>| {
        v.as_ref().unwrap()["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "image" && r["kind"] == "tier")
            .unwrap()["value"]
            .as_i64()
            .unwrap()
    };
    assert_eq!((image_value(before), image_value(after)), (1, 2));
    let (_, html) = staff.browser.html(PAGE).await;
    assert!(text(&html, "#liste-versions").contains("à venir"));
    // The same form again (its base is not the latest any more): refused, 409.
    let stale = staff.browser.submit(PAGE, PAGE, &form).await;
    assert_eq!(stale.status(), 409);
    // Not yet in force.
    assert_eq!(image_cost(&app).await, 1);
    // The preview: on 1 January 2027 the new figures, on 20 December the old ones.
    let (status, preview) = staff
        .browser
        .html("/admin/tarifs/apercu?date=2027-01-01&type=image&quantite=3")
        .await;
    assert_eq!(status, 200);
    assert!(text(&preview, "#guide #tableau-bareme").contains("1er\u{a0}janvier 2027"));
    let row = text(&preview, "#resultat-simulation tbody tr:first-child");
    assert!(
        row.contains("Plan Église") && row.contains('2') && row.contains('6'),
        "{row}"
    );
    let (_, preview) = staff
        .browser
        .html("/admin/tarifs/apercu?date=2026-12-20&type=image&quantite=3")
        .await;
    assert!(text(&preview, "#guide #tableau-bareme").contains("1er\u{a0}janvier 2026"));
    assert!(text(&preview, "#resultat-simulation tbody tr:first-child").contains('3'));
    let (status, preview) = staff
        .browser
        .html("/admin/tarifs/apercu?date=demain&type=video&duree=99")
        .await;
    assert_eq!(status, 400, "a bad date and a bad duration said in French");
    assert_eq!(count(&preview, "[role=alert]"), 2);
    assert_eq!(
        owner.browser.get("/admin/tarifs/apercu").await.status(),
        403
    );
    // 23:59 in Paris on 31 December: still the old price; a minute later, the new one, in the
    // API, the simulator page and the guide, without a restart.
    app.clock.set(datetime!(2026-12-31 22:59 UTC));
    assert_eq!(image_cost(&app).await, 1);
    let (_, page) = app.get_html("/simulateur?type=image&plan=eglise").await;
    let before_midnight = text(&page, "main");
    app.clock.set(datetime!(2026-12-31 23:00:30 UTC));
    assert_eq!(image_cost(&app).await, 2);
    let (_, page) = app.get_html("/simulateur?type=image&plan=eglise").await;
    assert_ne!(text(&page, "main"), before_midnight, "not the cached page");
    let (_, guide) = app.get_html("/aide/tarifs").await;
    assert!(text(&guide, "#tableau-bareme").contains("1er\u{a0}janvier 2027"));
}

#[tokio::test]
async fn packs_are_added_changed_and_retired_with_a_reason_and_orders_keep_their_price() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-10 10:00 UTC));
    let staff = app.staff().await;
    let owner = app.owner("eglise").await;
    // A pack-10 bought at 12 € before the change.
    let catalog = nanoclip::services::catalog::CatalogCache::default()
        .get(&app.pool)
        .await
        .unwrap();
    let order = nanoclip::services::billing::order_pack(
        &app.pool,
        &catalog,
        owner.org(),
        owner.id,
        "pack-10",
        &"a".repeat(64),
        nanoclip::services::billing::Provider::Test,
        app.clock.now(),
    )
    .await
    .unwrap();
    nanoclip::services::billing::test_payment(
        &app.pool,
        owner.org(),
        order,
        nanoclip::domain::billing::TestOutcome::Approve,
        app.clock.now(),
    )
    .await
    .unwrap();
    let change = "/admin/packs/pack-10";
    // Zero, negative and not-a-number prices, no reason: refused, the values kept.
    for (price, says) in [
        ("0", "supérieure à zéro"),
        ("-5", "supérieure à zéro"),
        ("douze", "pas un nombre"),
    ] {
        let refused = staff
            .browser
            .submit(
                PAGE,
                change,
                &[
                    ("nom", "Pack 10 crédits"),
                    ("credits", "10"),
                    ("prix", price),
                    ("motif", ""),
                ],
            )
            .await;
        assert_eq!(refused.status(), 400, "{price}");
        let html = scraper::Html::parse_document(&refused.text().await.unwrap());
        assert!(
            text(&html, "#pack-pack-10-erreur-prix").contains(says),
            "{price}"
        );
        assert!(text(&html, "#pack-pack-10-erreur-motif").contains("motif"));
        assert_eq!(attr(&html, "#pack-pack-10-prix", "value").unwrap(), price);
    }
    let refused = staff
        .browser
        .submit(
            PAGE,
            change,
            &[
                ("nom", "Pack 10 crédits"),
                ("credits", "0"),
                ("prix", "12"),
                ("motif", "Essai"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 400);
    // A new version at 13,50 €.
    let done = staff
        .browser
        .submit(
            PAGE,
            change,
            &[
                ("nom", "Pack 10 crédits"),
                ("credits", "10"),
                ("prix", "13,50"),
                ("type", ""),
                ("motif", "Nouveau tarif 2027"),
            ],
        )
        .await;
    assert_eq!(done.status(), 303);
    let entries = audit(&app, "prices.pack_change").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1, "Nouveau tarif 2027");
    assert_eq!(entries[0].2.as_ref().unwrap()["pack"]["price_cents"], 1200);
    assert_eq!(entries[0].3.as_ref().unwrap()["pack"]["price_cents"], 1350);
    let (_, confirm) = owner.browser.html("/achats/pack-10").await;
    assert!(text(&confirm, "main").contains("13,50\u{a0}€"));
    // The order made before keeps its price and its invoice.
    let (amount, invoiced): (i64, i64) = sqlx::query_as(
        "SELECT o.amount_cents, i.ttc_cents FROM orders o JOIN invoices i ON i.order_id = o.id WHERE o.id = $1",
    )
    .bind(order)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((amount, invoiced), (1200, 1200));
    let (_, history) = owner.browser.html("/achats/historique").await;
    assert!(text(&history, "main").contains("12,00\u{a0}€"));
    // Retired: a reason is required; then no longer sold, even from a catalog read before.
    let stale_catalog = nanoclip::services::catalog::CatalogCache::default()
        .get(&app.pool)
        .await
        .unwrap();
    let refused = staff
        .browser
        .submit(PAGE, "/admin/packs/pack-30/retrait", &[("motif", "")])
        .await;
    assert_eq!(refused.status(), 400);
    let html = scraper::Html::parse_document(&refused.text().await.unwrap());
    assert!(text(&html, "#retrait-pack-30-erreur").contains("motif"));
    let done = staff
        .browser
        .submit(
            PAGE,
            "/admin/packs/pack-30/retrait",
            &[("motif", "Remplacé par le pack 50")],
        )
        .await;
    assert_eq!(done.status(), 303);
    let (_, packs) = owner.browser.html("/achats").await;
    assert_eq!(count(&packs, "#packs li"), 4);
    assert!(!text(&packs, "#packs").contains("Pack 30"));
    assert_eq!(owner.browser.get("/achats/pack-30").await.status(), 404);
    let late = nanoclip::services::billing::order_pack(
        &app.pool,
        &stale_catalog,
        owner.org(),
        owner.id,
        "pack-30",
        &"b".repeat(64),
        nanoclip::services::billing::Provider::Test,
        app.clock.now(),
    )
    .await;
    assert!(
        matches!(
            late,
            Err(nanoclip::services::billing::BillingError::UnknownPack)
        ),
        "{late:?}"
    );
    let retired = audit(&app, "prices.pack_retire").await;
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0].3.as_ref().unwrap()["on_sale"], false);
    let (_, html) = staff.browser.html(PAGE).await;
    assert!(text(&html, "#pack-pack-30").contains("retiré de la vente"));
    // Added: a bad id, a taken id, then a new pack on sale.
    let new_pack = |id: &'static str| {
        [
            ("id", id),
            ("nom", "Pack 50 crédits"),
            ("credits", "50"),
            ("prix", "49"),
            ("type", ""),
            ("motif", "Offre de Pâques"),
        ]
    };
    let refused = staff
        .browser
        .submit(PAGE, "/admin/packs", &new_pack("Pack 50"))
        .await;
    assert_eq!(refused.status(), 400);
    let html = scraper::Html::parse_document(&refused.text().await.unwrap());
    assert!(text(&html, "#nouveau-erreur-id").contains("minuscules"));
    assert_eq!(
        attr(&html, "#nouveau-nom", "value").unwrap(),
        "Pack 50 crédits"
    );
    let taken = staff
        .browser
        .submit(PAGE, "/admin/packs", &new_pack("pack-10"))
        .await;
    assert_eq!(taken.status(), 400);
    let html = scraper::Html::parse_document(&taken.text().await.unwrap());
    assert!(text(&html, "#nouveau-erreur-id").contains("déjà"));
    let added = staff
        .browser
        .submit(PAGE, "/admin/packs", &new_pack("pack-50"))
        .await;
    assert_eq!(added.status(), 303);
    let (_, packs) = owner.browser.html("/achats").await;
    assert!(text(&packs, "#packs").contains("Pack 50 crédits"));
    assert_eq!(owner.browser.get("/achats/pack-50").await.status(), 200);
    assert_eq!(audit(&app, "prices.pack_add").await.len(), 1);
    // The credits bought before are untouched.
    let purchased: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(remaining), 0)::bigint FROM credit_buckets WHERE organisation_id = $1 AND source = 'purchase'",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(purchased, 10);
    crate::credits::assert_ledger_clean(&app.pool).await;
}
