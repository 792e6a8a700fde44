//! `/admin/aide` and `/admin/operations`: the help centre's quality (votes and missed searches
//! by week, the one-click synonym searched at once on every instance, without a restart) and
//! operations (the outbox's failures and their resend, the jobs' last runs, check-ledger on
//! demand). Every action needs a reason and is audited.

use std::time::Duration;

use crate::common::{attr, count, select_texts, spawn_app, spawn_on, test_config, text};

/// The guides found for `query` on the instance at `base`.
async fn found(browser: &crate::common::Browser, query: &str) -> Vec<String> {
    let (status, html) = browser
        .html(&format!("/aide/recherche?q={}", query.replace(' ', "+")))
        .await;
    assert_eq!(status, 200);
    crate::common::select_attrs(&html, ".results li h2 a", "href")
}

/// Waits (up to 5 s) for the missed search `query` to be recorded; its id.
async fn recorded_miss(pool: &sqlx::PgPool, query: &str) -> i64 {
    for _ in 0..100 {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM search_misses WHERE query = $1")
            .bind(query)
            .fetch_optional(pool)
            .await
            .unwrap();
        if let Some(id) = id {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("« {query} » not recorded");
}

#[tokio::test]
async fn a_missed_query_becomes_a_synonym_in_one_click_and_is_found_on_every_instance_without_restart()
 {
    let app = spawn_app().await;
    // A second portal instance on the same database.
    let options = app.pool.connect_options().as_ref().clone();
    let other = spawn_on(test_config(), options, String::new(), None).await;
    let staff = app.staff().await;
    let visitor = app.browser();
    let elsewhere = other.browser();
    assert!(found(&visitor, "zzyzx quorglub").await.is_empty());
    assert!(found(&elsewhere, "zzyzx quorglub").await.is_empty());
    let miss = recorded_miss(&app.pool, "zzyzx quorglub").await;
    let expected = found(&visitor, "crédit").await;
    assert!(!expected.is_empty());

    // The miss is listed under its week, with its form.
    let (status, html) = staff.browser.html("/admin/aide").await;
    assert_eq!(status, 200);
    assert!(
        text(&html, &format!("#recherche-{miss}")).contains("«\u{202f}zzyzx quorglub\u{202f}»")
    );
    let action = format!("/admin/aide/recherches/{miss}/synonyme");
    assert_eq!(
        count(&html, &format!("form[action='{action}'] input[name=csrf]")),
        1
    );

    // Bad input: a French message, 400, the values kept, nothing stored.
    for (word, reason, says) in [
        ("", "Requête fréquente", "Indiquez le mot des guides"),
        ("crédit", "  ", "Indiquez le motif"),
        (
            "Zzyzx Quorglub",
            "Requête fréquente",
            "la requête elle-même",
        ),
        ("xqwvbn", "Requête fréquente", "ne trouve aucun guide"),
    ] {
        let response = staff
            .browser
            .submit("/admin/aide", &action, &[("mot", word), ("motif", reason)])
            .await;
        assert_eq!(response.status(), 400, "{word}");
        let html = scraper::Html::parse_document(&response.text().await.unwrap());
        assert!(
            text(&html, &format!("#erreur-{miss}")).contains(says),
            "{word}: {}",
            text(&html, "[role=alert]")
        );
        assert_eq!(
            attr(&html, &format!("#mot-{miss}"), "value").as_deref(),
            Some(word)
        );
        assert_eq!(
            attr(&html, &format!("#motif-{miss}"), "value").as_deref(),
            Some(reason)
        );
    }
    // Without the CSRF token: refused.
    let forged = staff
        .browser
        .client
        .post(format!("{}{action}", staff.browser.base))
        .form(&[("mot", "crédit"), ("motif", "Requête fréquente")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM search_synonyms")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);

    // The click: stored, audited, and searched at once on this instance.
    let response = staff
        .browser
        .submit(
            "/admin/aide",
            &action,
            &[("mot", "crédit"), ("motif", "Les fidèles l’écrivent ainsi")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/admin/aide?avis=synonyme#recherches"
    );
    let now_found = found(&visitor, "zzyzx quorglub").await;
    assert!(!now_found.is_empty(), "found at once, without a restart");
    assert!(
        now_found.contains(&expected[0]),
        "{now_found:?} / {expected:?}"
    );
    // The other instance picks it up at its next look (every 3 seconds).
    let mut there = Vec::new();
    for _ in 0..40 {
        there = found(&elsewhere, "zzyzx quorglub").await;
        if !there.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(there, now_found, "the other instance searches it too");

    let (actor, reason, after): (String, String, serde_json::Value) = sqlx::query_as(
        "SELECT actor, reason, after FROM audit_log WHERE action = 'search.synonym'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(actor, format!("staff:{}", staff.email));
    assert_eq!(reason, "Les fidèles l’écrivent ainsi");
    assert_eq!(
        after,
        serde_json::json!({ "query": "zzyzx quorglub", "word": "crédit" })
    );
    let (_, html) = staff.browser.html("/admin/aide?avis=synonyme").await;
    assert!(text(&html, "[role=status]").starts_with("Synonyme ajouté"));
    assert_eq!(
        select_texts(&html, "#synonymes li"),
        vec!["«\u{202f}zzyzx quorglub\u{202f}» → «\u{202f}crédit\u{202f}»"]
    );
    assert!(
        text(&html, &format!("#recherche-{miss}")).contains("synonyme de «\u{202f}crédit\u{202f}»")
    );
    // Twice: refused, nothing more stored.
    let again = staff
        .browser
        .submit(
            "/admin/aide?avis=synonyme",
            &action,
            &[("mot", "facture"), ("motif", "Encore")],
        )
        .await;
    assert_eq!(again.status(), 400);
    // An unknown missed search: 404.
    let unknown = staff
        .browser
        .submit(
            "/admin/aide",
            "/admin/aide/recherches/999999/synonyme",
            &[("mot", "crédit"), ("motif", "Essai")],
        )
        .await;
    assert_eq!(unknown.status(), 404);
    other.stop().await;
}

#[tokio::test]
async fn staff_read_votes_by_guide_and_week_and_missed_searches_without_personal_data() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let visitor = app.browser();
    assert!(found(&visitor, "xqzj.wvkp@qxzv.qq").await.is_empty());
    assert!(found(&visitor, "zzyzx").await.is_empty());
    assert!(found(&visitor, "zzyzx").await.is_empty());
    recorded_miss(&app.pool, "zzyzx").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kept: Vec<(String, i64)> = sqlx::query_as("SELECT query, count FROM search_misses")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        kept,
        vec![("zzyzx".to_owned(), 2)],
        "no address (phones and links: see `looks_personal`)"
    );
    // Votes this week and two weeks ago on one guide, this week on another.
    sqlx::query(
        "INSERT INTO guide_feedback (slug, helpful, comment, created_at) VALUES
           ('tarifs', true, NULL, now()), ('tarifs', false, 'Trop long', now()),
           ('tarifs', false, NULL, now() - interval '14 days'), ('video', true, NULL, now())",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let (status, html) = staff.browser.html("/admin/aide").await;
    assert_eq!(status, 200);
    let rows = select_texts(&html, "#avis-par-semaine tbody tr");
    assert_eq!(rows.len(), 3, "{rows:?}");
    let tarifs: Vec<&String> = rows.iter().filter(|r| !r.contains("Vidéo")).collect();
    assert_eq!(tarifs.len(), 2, "{rows:?}");
    assert!(tarifs[0].ends_with("1 1 1"), "{rows:?}");
    assert!(tarifs[1].ends_with("0 1 0"), "{rows:?}");
    assert_eq!(count(&html, "section[aria-labelledby=recherches] h3"), 1);
    assert!(text(&html, "section[aria-labelledby=recherches] h3").starts_with("Semaine du "));
}

#[tokio::test]
async fn staff_resend_a_failed_email_run_check_ledger_and_see_each_job_with_a_reason_audited() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let owner = app.owner("eglise").await;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (to_address, subject, body_text, body_html, attempts, last_error)
         VALUES ('bureau@paroisse.fr', 'Votre facture', 'Bonjour', '<p>Bonjour</p>', 10,
                 'smtp: connexion refusée') RETURNING id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let (status, html) = staff.browser.html("/admin/operations").await;
    assert_eq!(status, 200);
    let failure = text(&html, &format!("#courriel-{id}"));
    assert!(failure.contains("bureau@paroisse.fr"), "{failure}");
    assert!(failure.contains("smtp: connexion refusée"), "{failure}");
    assert!(failure.contains("abandonné"), "{failure}");
    assert!(text(&html, "#file-attente").contains("abandonnés après 10"));
    // Each job with its last run (or « Jamais lancée »).
    assert_eq!(
        count(&html, "#liste-taches tbody tr"),
        nanoclip::jobs::Job::ALL.len()
    );

    // A resend without a reason: 400, nothing changed.
    let action = format!("/admin/operations/courriels/{id}/renvoi");
    let refused = staff
        .browser
        .submit("/admin/operations", &action, &[("motif", " ")])
        .await;
    assert_eq!(refused.status(), 400);
    let html = scraper::Html::parse_document(&refused.text().await.unwrap());
    assert!(text(&html, &format!("#erreur-{id}")).starts_with("Indiquez le motif du renvoi"));
    // With one: due again, audited, and delivered by the job.
    let done = staff
        .browser
        .submit(
            "/admin/operations",
            &action,
            &[("motif", "Serveur de courrier réparé")],
        )
        .await;
    assert_eq!(done.status(), 303);
    let (before, after): (serde_json::Value, serde_json::Value) = sqlx::query_as(
        "SELECT before, after FROM audit_log WHERE action = 'outbox.resend' AND reason = 'Serveur de courrier réparé'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(before["attempts"], 10);
    assert_eq!(before["last_error"], "smtp: connexion refusée");
    assert_eq!(after["attempts"], 0);
    let mut sent = false;
    for _ in 0..60 {
        sent = sqlx::query_scalar("SELECT sent_at IS NOT NULL FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(sent, "the delivery job sent it");
    // Sent: nothing left to resend.
    let gone = staff
        .browser
        .submit("/admin/operations", &action, &[("motif", "Encore")])
        .await;
    assert_eq!(gone.status(), 404);

    // check-ledger: a reason required, then the result shown and audited.
    let refused = staff
        .browser
        .submit("/admin/operations", "/admin/operations/grand-livre", &[])
        .await;
    assert_eq!(refused.status(), 400);
    let html = scraper::Html::parse_document(&refused.text().await.unwrap());
    assert!(text(&html, "#erreur-verification").starts_with("Indiquez le motif"));
    let check = async |reason: &str| {
        let response = staff
            .browser
            .submit(
                "/admin/operations",
                "/admin/operations/grand-livre",
                &[("motif", reason)],
            )
            .await;
        assert_eq!(response.status(), 303);
        let (_, html) = staff
            .browser
            .html(response.headers()["location"].to_str().unwrap())
            .await;
        text(&html, "#resultat-verification")
    };
    let clean = check("Contrôle mensuel").await;
    assert!(clean.contains("0\u{a0}écart"), "{clean}");
    assert!(clean.contains("Contrôle mensuel"), "{clean}");
    // A balance that disagrees with its ledger: the same differences as the command.
    // (Past the guard that keeps balances to the ledger: triggers off for this transaction.)
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE credit_buckets SET remaining = remaining - 1 WHERE organisation_id = $1 AND remaining > 0")
        .bind(owner.org())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (ok, out, _) = app.command(&["check-ledger"]);
    assert!(!ok);
    let listed = out.lines().filter(|l| l.starts_with("écart")).count();
    let shown = check("Après l’incident").await;
    assert!(
        shown.contains(&format!("{listed}\u{a0}écart")),
        "{shown} / {out}"
    );
    assert!(shown.contains(&owner.org().to_string()), "{shown}");
    let checks: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'ledger.check'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(checks, 2);
}
