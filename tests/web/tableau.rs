//! `/tableau-de-bord` and `/credits/historique` (with its CSV export), and the operator commands
//! `credits adjust`, `check-ledger` and `renew`, run as the real binary.

use nanoclip::domain::money::Credits;
use nanoclip::services::credits::{self, Actor, Adjustment, HoldInput, HoldOutcome};
use time::Duration;
use time::macros::datetime;
use uuid::Uuid;

use crate::common::{TestApp, count, select_texts, spawn_app, text};
use crate::credits::assert_ledger_clean;

const ENGINE: Actor<'static> = Actor {
    actor: "engine",
    reason: "succeeded",
};

async fn hold(app: &TestApp, org: Uuid, amount: i64, key: &str) -> Uuid {
    let input = HoldInput {
        organisation: org,
        amount: Credits(amount),
        creation_type: "video",
        key,
        reference: "generation:test",
        actor: "user:test",
    };
    match credits::hold(&app.pool, input, app.clock.now())
        .await
        .unwrap()
    {
        HoldOutcome::Placed { hold, .. } => hold.id,
        other => panic!("{other:?}"),
    }
}

async fn adjust(app: &TestApp, org: Uuid, n: i64) {
    let key = Uuid::new_v4().to_string();
    let adjustment = Adjustment {
        organisation: org,
        credits: Credits(n),
        reason: "test",
        last_day: None,
        key: &key,
        actor: "cli",
    };
    credits::adjust(&app.pool, adjustment, app.clock.now())
        .await
        .unwrap();
    // As the back office and `nanoclip adjust` announce it to the read cache.
    app.caches.touch(&[nanoclip::cache::Key::Organisation(org)]);
}

#[tokio::test]
async fn the_dashboard_shows_the_balance_what_renders_hold_the_buckets_and_the_limits() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    let owner = app.owner("eglise").await;
    let spent = hold(&app, owner.org(), 4, "a").await;
    credits::capture(&app.pool, spent, ENGINE, app.clock.now())
        .await
        .unwrap();
    hold(&app, owner.org(), 3, "b").await;
    let (status, html) = owner.browser.html("/tableau-de-bord").await;
    assert_eq!(status, 200);
    assert_eq!(text(&html, "#disponible"), "23\u{a0}crédits");
    assert!(
        text(&html, "#reserve").starts_with("3\u{a0}crédits réservés par 1\u{a0}rendu en cours"),
        "{}",
        text(&html, "#reserve")
    );
    let buckets = select_texts(&html, "#reserves li");
    assert_eq!(buckets.len(), 1);
    assert!(buckets[0].contains("23\u{a0}crédits de la dotation de la période, expirent le 31\u{a0}décembre 2026 (jusqu’à 10 reportés)"), "{buckets:?}");
    assert_eq!(
        text(&html, "#periode").split(" inclus").next().unwrap(),
        "Période en cours\u{202f}: du 1er\u{a0}décembre 2026 au 31\u{a0}décembre 2026"
    );
    // Fair-use limits: 2 generations today (one ran, one runs), 7 credits this month, 1 render.
    let meters: Vec<(String, String)> = html
        .select(&scraper::Selector::parse("meter").unwrap())
        .map(|m| {
            (
                m.attr("value").unwrap().to_owned(),
                m.attr("max").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        meters,
        vec![
            ("2".into(), "15".into()),
            ("7".into(), "90".into()),
            ("1".into(), "1".into())
        ]
    );
    // The chart: an accessible SVG, with its data as a table; the projection.
    assert_eq!(count(&html, "figure svg[role=img] title"), 1);
    assert_eq!(count(&html, "figure svg desc"), 1);
    assert_eq!(count(&html, "figure table tbody tr"), 30);
    assert_eq!(count(&html, "figure svg rect"), 1);
    // One day of use is not a pace: no projection before a week.
    assert_eq!(
        text(&html, "#projection"),
        "Après une semaine d’utilisation, ce tableau estimera combien de jours votre solde vous durera."
    );
    // No banner, no radar at 23 credits with a month to go.
    assert_eq!(count(&html, "#solde-bas"), 0);
    assert_eq!(count(&html, ".radar"), 0);
    assert_eq!(count(&html, "main script"), 0, "no JavaScript needed");
    // A week later, the 4 credits used over 7 days are a pace: 23 credits cover 40 days.
    app.clock.set(datetime!(2026-12-07 09:00 UTC));
    app.caches
        .touch(&[nanoclip::cache::Key::Organisation(owner.org())]);
    // (The session of a week ago has ended: signed in again.)
    let browser = app.sign_in_again(&owner).await;
    let (_, html) = browser.html("/tableau-de-bord").await;
    assert!(
        text(&html, "#projection")
            .starts_with("Au rythme actuel, votre solde couvre environ 40\u{a0}jours"),
        "{}",
        text(&html, "#projection")
    );
}

/// The chart's 30 days are Europe/Paris days, summer time included, and read the captures of
/// those days only, not the organisation's whole history: with a long history and no statistics
/// yet (a new database), a join of each day with every capture made each dashboard read all of
/// them (bench/credits « dashboard »: 89 requests a second at a year of history, 1,504 after).
#[tokio::test]
async fn the_chart_counts_paris_days_and_reads_the_captures_of_its_thirty_days_only() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-08-01 09:00 UTC));
    let owner = app.owner("eglise").await;
    adjust(&app, owner.org(), 1_000).await;
    // A capture a day at 22:30 UTC (00:30 the next day in Paris in summer, 23:30 the same day
    // in winter, from 25 October), none on every seventh day; and two at the window's first
    // instant (12 October, 00:00 in Paris: 11 October, 22:00 UTC) and just before it.
    let mut at: Vec<(time::OffsetDateTime, i64)> = (0..101)
        .filter(|day| day % 7 != 3)
        .map(|day| {
            (
                datetime!(2026-08-01 22:30 UTC) + Duration::days(day),
                1 + day % 3,
            )
        })
        .collect();
    at.push((datetime!(2026-10-11 22:00 UTC), 10));
    at.push((datetime!(2026-10-11 21:59 UTC), 20));
    at.sort();
    for (i, (when, amount)) in at.iter().enumerate() {
        app.clock.set(*when);
        let held = hold(&app, owner.org(), *amount, &format!("prise-{i}")).await;
        credits::capture(&app.pool, held, ENGINE, app.clock.now())
            .await
            .unwrap();
    }
    let now = datetime!(2026-11-10 12:00 UTC);
    // A connection of its own: the statistics' counters of this transaction are then its alone
    // (a pooled connection's include what it did before and has not reported yet).
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.database_url())
        .await
        .unwrap();
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    let days = nanoclip::db::credits::spent_per_day(&mut tx, owner.org(), now, 30)
        .await
        .unwrap();
    // Rows read by the table's own scans (sequential or bitmap) and through its indexes
    // (counted on each index).
    let fetched: i64 = sqlx::query_scalar(
        "SELECT (pg_stat_get_xact_tuples_returned('credit_ledger'::regclass)
               + pg_stat_get_xact_tuples_fetched('credit_ledger'::regclass)
               + (SELECT sum(pg_stat_get_xact_tuples_fetched(indexrelid))
                    FROM pg_index WHERE indrelid = 'credit_ledger'::regclass))::bigint",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    // The expected sums, each capture on its Paris day (UTC+2 before 25 October 01:00 UTC).
    let paris_day = |t: time::OffsetDateTime| {
        let offset = if t < datetime!(2026-10-25 01:00 UTC) {
            2
        } else {
            1
        };
        (t + Duration::hours(offset)).date()
    };
    let first = time::macros::date!(2026 - 10 - 12);
    let expected: Vec<(time::Date, i64)> = (0..30)
        .map(|i| {
            let day = first + Duration::days(i);
            let spent = at
                .iter()
                .filter(|(t, _)| paris_day(*t) == day)
                .map(|(_, n)| n)
                .sum();
            (day, spent)
        })
        .collect();
    assert_eq!(days, expected);
    assert!(days.iter().any(|d| d.1 == 0), "days without use are 0");
    assert_eq!(days[0].1, 10 + expected_summer_day(&at, first), "{days:?}");
    let in_window = at
        .iter()
        .filter(|(t, _)| (first..=first + Duration::days(29)).contains(&paris_day(*t)))
        .count() as i64;
    assert!(
        fetched <= in_window,
        "the chart read {fetched} ledger rows for its window's {in_window} captures"
    );
}

/// The daily capture that falls on `day` in Paris (22:30 UTC the day before, in summer).
fn expected_summer_day(at: &[(time::OffsetDateTime, i64)], day: time::Date) -> i64 {
    at.iter()
        .filter(|(t, n)| {
            *n < 10 && t.time() == time::macros::time!(22:30) && t.date() + Duration::DAY == day
        })
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn the_radar_warns_of_credits_that_will_be_lost_and_the_banner_of_a_low_balance() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    let owner = app.owner("eglise").await;
    // Five days before the period ends: 20 of the 30 allotted credits will not carry over.
    app.clock.set(datetime!(2026-12-27 09:00 UTC));
    let browser = app.sign_in_again(&owner).await;
    let (_, html) = browser.html("/tableau-de-bord").await;
    let radar = text(&html, ".radar");
    assert!(radar.starts_with("20\u{a0}crédits expirent le 31\u{a0}décembre 2026 (dans 4\u{a0}jours)\u{202f}: 10 autres seront reportés"), "{radar}");
    // Below the threshold (5): the banner, with the way out for the owner.
    adjust(&app, owner.org(), -27).await;
    let (_, html) = browser.html("/tableau-de-bord").await;
    let banner = text(&html, "#solde-bas");
    assert!(
        banner.contains("il reste 3\u{a0}crédits, sous votre seuil d’alerte de 5"),
        "{banner}"
    );
    assert!(banner.contains("Acheter des crédits"));
    let member = app.member(owner.org()).await;
    let (_, html) = member.browser.html("/tableau-de-bord").await;
    assert!(
        text(&html, "#solde-bas")
            .contains("Le propriétaire de votre compte peut acheter des crédits")
    );
}

#[tokio::test]
async fn the_history_is_the_organisation_s_own_filtered_and_paginated() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-04 12:00 UTC));
    let owner = app.owner("reseau").await;
    for i in 0..60 {
        let id = hold(&app, owner.org(), 1, &format!("h{i}")).await;
        if i % 2 == 0 {
            credits::capture(&app.pool, id, ENGINE, app.clock.now())
                .await
                .unwrap();
        } else {
            credits::release(&app.pool, id, ENGINE, app.clock.now())
                .await
                .unwrap();
        }
    }
    // 1 grant + 60 holds + 30 captures + 30 releases.
    let (status, html) = owner.browser.html("/credits/historique").await;
    assert_eq!(status, 200);
    assert!(
        text(&html, "#resume").starts_with("121\u{a0}mouvements · page 1 sur 3"),
        "{}",
        text(&html, "#resume")
    );
    assert_eq!(count(&html, "#mouvements tbody tr"), 50);
    let (_, last) = owner.browser.html("/credits/historique?page=3").await;
    assert_eq!(count(&last, "#mouvements tbody tr"), 21);
    let first_row = select_texts(&last, "#mouvements tbody tr").pop().unwrap();
    assert!(
        first_row.contains("Attribution")
            && first_row.contains("+150")
            && first_row.contains("Dotation"),
        "{first_row}"
    );
    // Filtered by kind: the box stays checked.
    let (status, html) = owner.browser.html("/credits/historique?type=debit").await;
    assert_eq!(status, 200);
    assert_eq!(count(&html, "#mouvements tbody tr"), 30);
    assert_eq!(count(&html, "input[value=debit][checked]"), 1);
    // By days (Europe/Paris): today's movements, then none tomorrow.
    let today = app.clock.now().date();
    let (_, html) = owner
        .browser
        .html(&format!("/credits/historique?du={today}&au={today}"))
        .await;
    assert!(
        text(&html, "#resume").starts_with("121"),
        "{}",
        text(&html, "#resume")
    );
    let tomorrow = today + Duration::days(2);
    let (_, html) = owner
        .browser
        .html(&format!("/credits/historique?du={tomorrow}"))
        .await;
    assert!(text(&html, "main").contains("Aucun mouvement pour ces filtres"));
    // Another organisation sees none of it.
    let other = app.owner("eglise").await;
    let (_, html) = other.browser.html("/credits/historique").await;
    assert!(
        text(&html, "#resume").starts_with("1\u{a0}mouvement"),
        "{}",
        text(&html, "#resume")
    );
    // Signed out: the login page.
    assert_eq!(app.browser().get("/credits/historique").await.status(), 303);
    assert_eq!(
        app.browser().get("/credits/historique.csv").await.status(),
        303
    );
}

#[tokio::test]
async fn a_reason_typed_by_staff_is_shown_with_french_typography_and_exported_as_typed() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let key = Uuid::new_v4().to_string();
    let adjustment = Adjustment {
        organisation: owner.org(),
        credits: Credits(2),
        reason: "Geste commercial : « Noël » !",
        last_day: None,
        key: &key,
        actor: "cli",
    };
    credits::adjust(&app.pool, adjustment, app.clock.now())
        .await
        .unwrap();
    let (_, html) = owner.browser.html("/credits/historique").await;
    let row = select_texts(&html, "#mouvements tbody tr").remove(0);
    assert!(
        row.contains("Geste commercial\u{202f}: «\u{202f}Noël\u{202f}»\u{202f}!"),
        "{row}"
    );
    let csv = owner
        .browser
        .get("/credits/historique.csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains("Geste commercial : « Noël » !"), "{csv}");
    // A reason a spreadsheet would take for a formula is exported as text.
    let key = Uuid::new_v4().to_string();
    let adjustment = Adjustment {
        reason: "=HYPERLINK(\"http://exemple.invalid/\";\"x\")",
        key: &key,
        ..adjustment
    };
    credits::adjust(&app.pool, adjustment, app.clock.now())
        .await
        .unwrap();
    let csv = owner
        .browser
        .get("/credits/historique.csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://exemple.invalid/\"\";\"\"x\"\")\""),
        "{csv}"
    );
    assert!(!csv.contains(";\"=HYPERLINK"), "{csv}");
}

#[tokio::test]
async fn bad_filters_get_a_french_message_a_4xx_and_the_values_kept() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    for (query, status, message) in [
        (
            "type=vol",
            400,
            "Le type de mouvement «\u{202f}vol\u{202f}» n’existe pas",
        ),
        (
            "du=31/02/2026",
            400,
            "La date de début n’est pas une date valide",
        ),
        ("au=demain", 400, "La date de fin n’est pas une date valide"),
        (
            "du=1900-01-01",
            400,
            "doit être comprise entre 2020 et 2100",
        ),
        (
            "du=2026-12-10&au=2026-12-01",
            400,
            "La date de début est après la date de fin",
        ),
        (
            "page=abc",
            400,
            "Le numéro de page doit être un nombre entier",
        ),
        (
            "page=0",
            400,
            "Le numéro de page doit être un nombre entier",
        ),
        (
            "page=-3",
            400,
            "Le numéro de page doit être un nombre entier",
        ),
        (
            "page=99999999999999999999",
            400,
            "Le numéro de page doit être un nombre entier",
        ),
        (
            "page=7",
            404,
            "Cette page n’existe pas\u{202f}: l’historique filtré compte 1 page.",
        ),
        ("type=%00%FF&du=%E9", 400, "n’existe pas"),
    ] {
        let (got, html) = owner
            .browser
            .html(&format!("/credits/historique?{query}"))
            .await;
        assert_eq!(got, status, "{query}");
        let shown = text(&html, "#problemes");
        assert!(shown.contains(message), "{query}: {shown}");
    }
    let (_, html) = owner
        .browser
        .html("/credits/historique?type=debit&du=31/02/2026&au=2026-12-01")
        .await;
    assert_eq!(
        crate::common::attr(&html, "#du", "value").as_deref(),
        Some("31/02/2026")
    );
    assert_eq!(
        crate::common::attr(&html, "#au", "value").as_deref(),
        Some("2026-12-01")
    );
    assert_eq!(count(&html, "input[value=debit][checked]"), 1);
    // A day a date field cannot hold comes back in a text field (a date field would drop it, and
    // its value would not be HTML), marked invalid; the right one stays a date field.
    assert_eq!(
        crate::common::attr(&html, "#du", "type").as_deref(),
        Some("text")
    );
    assert_eq!(count(&html, "#du[aria-invalid=true]"), 1);
    assert_eq!(
        crate::common::attr(&html, "#au", "type").as_deref(),
        Some("date")
    );
    assert_eq!(count(&html, "#au[aria-invalid]"), 0);
    // No control character typed in the address comes back in the page.
    let response = owner
        .browser
        .get("/credits/historique?type=vol%00&du=%00%01")
        .await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(
        !body.contains(['\0', '\u{1}']),
        "control characters in the page"
    );
    assert!(body.contains("Le type de mouvement «\u{202f}vol\u{202f}» n’existe pas"));
    // The export of a bad filter goes back to the page that explains it.
    let response = owner.browser.get("/credits/historique.csv?type=vol").await;
    assert_eq!(response.status(), 303);
}

/// The history says who moved the credits and why in French, on the page and in the CSV: a
/// member by e-mail, an API key by its name, NanoClip's staff as a team, never a stored code
/// (`user:…`, `purchase`, `engine`).
#[tokio::test]
async fn the_history_says_who_and_why_in_french() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-04 10:30 UTC));
    let owner = app.owner("reseau").await;
    let key: Uuid = sqlx::query_scalar(
        "INSERT INTO api_keys (organisation_id, name, hint, secret_hash, created_by, created_at)
         VALUES ($1, 'Site de la paroisse', 'live_abcd', 'hash-essai', 'user:x', now()) RETURNING id",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    for (actor, reason) in [
        (format!("user:{}", owner.id), "generation"),
        (format!("api-key:{key}"), "generation"),
        ("staff:agent@nanoclip.fr".to_owned(), "geste commercial"),
        ("system".to_owned(), "purchase"),
        ("system".to_owned(), "upgrade"),
    ] {
        sqlx::query(
            "INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, actor, reason, reference, created_at)
             SELECT $1, b.id, 'adjustment', -1, 1, $2, $3, 'essai', now() FROM credit_buckets b
             WHERE b.organisation_id = $1 LIMIT 1",
        )
        .bind(owner.org())
        .bind(&actor)
        .bind(reason)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let page = owner
        .browser
        .get("/credits/historique")
        .await
        .text()
        .await
        .unwrap();
    let csv = owner
        .browser
        .get("/credits/historique.csv")
        .await
        .text()
        .await
        .unwrap();
    for (what, text, key, staff) in [
        (
            "page",
            &page,
            "par la clé API « Site de la paroisse »",
            "par l’équipe NanoClip",
        ),
        (
            "csv",
            &csv,
            ";Clé API « Site de la paroisse »",
            ";Équipe NanoClip",
        ),
    ] {
        for words in [
            owner.email.as_str(),
            key,
            staff,
            "geste commercial",
            "Achat d’un pack",
            "Passage au plan supérieur",
            "Lancement d’une génération",
            "Crédits de la période",
        ] {
            assert!(text.contains(words), "{what}: « {words} » missing");
        }
        for code in [
            "user:",
            "api-key:",
            "staff:",
            ";purchase;",
            ";system",
            ">purchase<",
        ] {
            assert!(!text.contains(code), "{what}: « {code} » shown");
        }
    }
}

#[tokio::test]
async fn the_csv_export_opens_cleanly_in_french_excel() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-04 10:30 UTC));
    let owner = app.owner("eglise").await;
    let id = hold(&app, owner.org(), 3, "x").await;
    credits::capture(&app.pool, id, ENGINE, app.clock.now())
        .await
        .unwrap();
    let response = owner.browser.get("/credits/historique.csv").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        disposition,
        "attachment; filename=\"historique-credits-2026-12-04.csv\""
    );
    let body = response.bytes().await.unwrap();
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "a UTF-8 BOM for Excel");
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "Date;Heure;Mouvement;Crédits;Origine des crédits (dernier jour);Motif;Référence;Par"
    );
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[1],
        "04/12/2026;11:30;Débit;0;Dotation (03/01/2027);Génération réussie\u{202f}: crédits réservés débités;generation:test;Moteur de génération"
    );
    // The column adds up to the balance (the capture moved nothing more: the hold did).
    let total: i64 = lines[1..]
        .iter()
        .map(|l| l.split(';').nth(3).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, 27);
    let (_, html) = owner.browser.html("/credits/historique").await;
    assert_eq!(
        crate::common::text(
            &html,
            "#mouvements tbody tr:first-child td[data-label='Crédits']"
        ),
        "0 (3 déjà réservés)"
    );
    assert!(
        lines[3].starts_with(
            "04/12/2026;11:30;Attribution;30;Dotation (03/01/2027);Crédits de la période;period:1;NanoClip"
        ),
        "{}",
        lines[3]
    );
}

#[tokio::test]
async fn a_long_export_is_streamed_in_chunks() {
    let app = spawn_app().await;
    let owner = app.owner("reseau").await;
    // 2 500 lines through SQL (as a year of use would leave), then the export.
    sqlx::query(
        "INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, actor, reason, reference, created_at)
         SELECT $1, b.id, CASE WHEN g % 2 = 0 THEN 'expiry' ELSE 'grant' END, CASE WHEN g % 2 = 0 THEN -1 ELSE 1 END, 1,
                'system', 'test', 'test', now() - make_interval(mins => g)
         FROM credit_buckets b, generate_series(1, 2500) g WHERE b.organisation_id = $1 ORDER BY g DESC",
    )
    .bind(owner.org())
    .execute(&app.pool)
    .await
    .unwrap();
    let body = owner
        .browser
        .get("/credits/historique.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        body.split("\r\n").filter(|l| !l.is_empty()).count(),
        1 + 2501
    );
    assert_ledger_clean(&app.pool).await;
}

fn nanoclip(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    app.command(args)
}

#[tokio::test]
async fn the_operator_commands_adjust_check_and_renew_as_the_contract_says() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let email = owner.email.clone();
    let (ok, out, err) = nanoclip(
        &app,
        &[
            "credits",
            "adjust",
            "--organisation",
            &email,
            "--credits",
            "12",
            "--reason",
            "Geste pour Pâques",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!(
            "Ajustement de +12 crédits pour l’organisation de {email} : solde disponible 42 crédits."
        )
    );
    let (ok, out, _) = nanoclip(
        &app,
        &[
            "credits",
            "adjust",
            "--organisation",
            &email,
            "--credits=-30",
            "--reason",
            "Erreur de saisie",
            "--expires",
            "2027-06-30",
        ],
    );
    assert!(ok);
    assert!(out.ends_with("solde disponible 12 crédits."), "{out}");
    let (ok, out, _) = nanoclip(
        &app,
        &[
            "credits",
            "adjust",
            "--organisation",
            &email,
            "--credits",
            "-30",
            "--reason",
            "x",
        ],
    );
    assert!(!ok && out.is_empty());
    let (ok, _, err) = nanoclip(&app, &["credits", "ajust"]);
    assert!(!ok);
    assert_eq!(
        err,
        "La commande « ajust » n’existe pas : vouliez-vous dire adjust ? Toutes les commandes : « nanoclip credits --help »."
    );
    for (args, message) in [
        (
            vec!["--credits", "-30", "--reason", "x"],
            "Impossible de retirer 30 crédits : le solde disponible n’est que de 12 crédits.",
        ),
        (
            vec!["--credits", "douze", "--reason", "x"],
            "--credits attend un nombre entier",
        ),
        (vec!["--credits", "0", "--reason", "x"], "--credits vaut 0"),
        (
            vec!["--credits", "5", "--reason", "  "],
            "--reason est obligatoire",
        ),
        (
            vec!["--credits", "5", "--reason", "x", "--expires", "30/06/2027"],
            "--expires attend une date au format AAAA-MM-JJ",
        ),
        (
            vec!["--credits", "5", "--reason", "x", "--expires", "2020-01-01"],
            "La date d’expiration est passée",
        ),
        (
            vec!["--credits", "5", "--reason", "\u{200b}"],
            "--reason est obligatoire",
        ),
        // The command line itself, in French too (clap's own errors were English).
        (
            vec!["--credits", "5"],
            "Il manque l’option obligatoire --reason. Toutes les options : « nanoclip credits adjust --help ».",
        ),
        (
            vec!["--credits", "5", "--reason", "x", "--raison", "y"],
            "L’option « --raison » n’existe pas",
        ),
        (
            vec!["--credits", "5", "--reason", "x", "--credits", "6"],
            "L’option --credits est donnée plusieurs fois",
        ),
        (
            vec!["--credits", "5", "--reason"],
            "L’option --reason attend une valeur",
        ),
    ] {
        let mut all = vec!["credits", "adjust", "--organisation", email.as_str()];
        all.extend(args);
        let (ok, _, err) = nanoclip(&app, &all);
        assert!(!ok, "{all:?}");
        assert!(err.contains(message), "{all:?}: {err}");
    }
    let (ok, _, err) = nanoclip(
        &app,
        &[
            "credits",
            "adjust",
            "--organisation",
            "personne@nulle.part",
            "--credits",
            "5",
            "--reason",
            "x",
        ],
    );
    assert!(
        !ok && err.contains(
            "Aucune organisation n’a pour propriétaire l’adresse « personne@nulle.part »"
        ),
        "{err}"
    );
    let member = app.member(owner.org()).await;
    let (ok, _, err) = nanoclip(
        &app,
        &[
            "credits",
            "adjust",
            "--organisation",
            &member.email,
            "--credits",
            "5",
            "--reason",
            "x",
        ],
    );
    assert!(
        !ok && err.contains("n’est pas celle d’un propriétaire"),
        "{err}"
    );
    // The ledger says who and why.
    let (_, html) = owner
        .browser
        .html("/credits/historique?type=ajustement")
        .await;
    assert!(text(&html, "#mouvements").contains("Geste pour Pâques"));
    let (ok, out, _) = nanoclip(&app, &["check-ledger"]);
    assert!(ok);
    assert_eq!(out, "0 écart");
    let (ok, out, _) = nanoclip(&app, &["renew"]);
    assert!(ok);
    assert_eq!(out, "0 période renouvelée");
    // A balance changed behind the ledger's back (triggers off, as a superuser could): found.
    sqlx::query("ALTER TABLE credit_buckets DISABLE TRIGGER credit_buckets_guard")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE credit_buckets SET remaining = remaining - 1 WHERE organisation_id = $1 AND remaining > 0")
        .bind(owner.org())
        .execute(&app.pool)
        .await
        .unwrap();
    let (ok, out, err) = nanoclip(&app, &["check-ledger"]);
    assert!(!ok);
    assert!(
        out.contains(&format!("écart : organisation {}", owner.org())),
        "{out}"
    );
    assert!(err.contains("écart"), "{err}");
}

#[tokio::test]
async fn the_simulator_uses_the_real_balance_buckets_and_usage_when_signed_in() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    let owner = app.owner("eglise").await;
    let mut conn = app.pool.acquire().await.unwrap();
    credits::grant_in(
        &mut conn,
        owner.org(),
        nanoclip::domain::ledger::BucketSource::Purchase,
        Some("musique"),
        Credits(3),
        app.clock.now() + Duration::days(365),
        "order:musique",
        Actor {
            actor: "system",
            reason: "purchase",
        },
        app.clock.now(),
    )
    .await
    .unwrap();
    drop(conn);
    // Two 60-second pieces of music: 4 credits, the music pack's 3 first, then the allotment.
    let (status, html) = owner
        .browser
        .html("/simulateur?type=musique&duree=60&quantite=2")
        .await;
    assert_eq!(status, 200);
    let main = text(&html, "main");
    assert!(
        main.contains("Avec votre solde de 33 crédits, ce lot laisse 29 crédits"),
        "{main}"
    );
    let drawn = select_texts(&html, "#reserves-utilisees + ul li");
    assert_eq!(drawn.len(), 2, "{drawn:?}");
    assert!(
        drawn[0].starts_with("3\u{a0}crédits achetés (réservés à ce type)"),
        "{drawn:?}"
    );
    assert!(
        drawn[1].starts_with(
            "1\u{a0}crédit de la dotation de la période, valables jusqu’au 31\u{a0}décembre 2026"
        ),
        "{drawn:?}"
    );
    // A video cannot use the music credits: 30, and 9 videos of 10 s would stop at the balance.
    let (_, html) = owner
        .browser
        .html("/simulateur?type=video&duree=10&quantite=12")
        .await;
    let main = text(&html, "main");
    assert!(main.contains("Avec votre solde de 30 crédits"), "{main}");
    assert!(
        main.contains("Votre solde arrêterait le lot après 10 rendus"),
        "{main}"
    );
    // The day's use counts: 14 launched today leave room for 1 under the daily cap of 15.
    for i in 0..14 {
        let id = hold(&app, owner.org(), 1, &format!("d{i}")).await;
        credits::capture(&app.pool, id, ENGINE, app.clock.now())
            .await
            .unwrap();
    }
    let (_, html) = owner
        .browser
        .html("/simulateur?type=image&quantite=3")
        .await;
    let main = text(&html, "main");
    assert!(
        main.contains(
            "Le plafond quotidien (15 générations par jour) arrêterait le lot après 1 rendu"
        ),
        "{main}"
    );
}
