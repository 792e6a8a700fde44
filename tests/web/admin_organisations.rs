//! `/admin`, organisations part: opening an organisation for a church with its owner's
//! invitation, suspension (members read, nothing launched, bought or changed, renewals not
//! charged), temporary limit raises (the same service as `nanoclip limits raise`), and contact
//! messages with their status, every action audited.

use serde_json::Value;
use time::macros::datetime;
use uuid::Uuid;

use crate::common::{TestApp, attr, count, spawn_app, text};

/// The audit lines of `organisation`: (actor, action, reason).
async fn audit(app: &TestApp, organisation: Uuid) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT actor, action, reason FROM audit_log WHERE organisation_id = $1 ORDER BY id",
    )
    .bind(organisation)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn staff_open_an_organisation_for_a_church_and_its_invited_owner_becomes_its_owner() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let existing = app.owner("eglise").await;
    let page = "/admin/organisations/nouvelle";
    let (status, html) = staff.browser.html(page).await;
    assert_eq!(status, 200);
    assert_eq!(count(&html, "#champ-plan option"), 2);
    // Everything wrong: each problem said in French, the values kept, 400.
    let refused = staff
        .browser
        .submit(
            page,
            page,
            &[
                ("nom", "X"),
                ("plan", "diamant"),
                ("email", "pas-une-adresse"),
                ("motif", " "),
            ],
        )
        .await;
    assert_eq!(refused.status(), 400);
    let html = scraper::Html::parse_document(&refused.text().await.unwrap());
    let alert = text(&html, "[role=alert]");
    for expected in [
        "nom de l’organisation",
        "plan de la liste",
        "adresse e-mail valide",
        "motif",
    ] {
        assert!(alert.contains(expected), "{expected} in {alert}");
    }
    assert_eq!(
        attr(&html, "#champ-email", "value").unwrap(),
        "pas-une-adresse"
    );
    assert_eq!(attr(&html, "#champ-nom", "aria-invalid").unwrap(), "true");
    // An address that already has an account: refused, nothing created.
    let taken = staff
        .browser
        .submit(
            page,
            page,
            &[
                ("nom", "Paroisse Saint-Paul"),
                ("plan", "eglise"),
                ("email", &existing.email),
                ("motif", "Accompagnement du diocèse"),
            ],
        )
        .await;
    assert_eq!(taken.status(), 400);
    let html = scraper::Html::parse_document(&taken.text().await.unwrap());
    assert!(text(&html, "[role=alert]").contains("déjà cette adresse"));
    assert_eq!(
        attr(&html, "#champ-nom", "value").unwrap(),
        "Paroisse Saint-Paul"
    );
    // Opened: the organisation on its plan, the invitation in the outbox, the audit line.
    let owner_email = "cure@saint-paul.fr";
    let done = staff
        .browser
        .submit(
            page,
            page,
            &[
                ("nom", "Paroisse Saint-Paul"),
                ("plan", "reseau"),
                ("email", owner_email),
                ("motif", "Accompagnement du diocèse"),
            ],
        )
        .await;
    assert_eq!(done.status(), 303);
    let next = location(&done);
    assert!(next.ends_with("?avis=ouverte"), "{next}");
    let id: Uuid = next
        .trim_start_matches("/admin/organisations/")
        .trim_end_matches("?avis=ouverte")
        .parse()
        .unwrap();
    let (status, html) = staff.browser.html(&next).await;
    assert_eq!(status, 200);
    assert!(text(&html, "#avis").contains("invitation"));
    assert!(text(&html, "h1").contains("Paroisse Saint-Paul"));
    assert_eq!(
        audit(&app, id).await,
        vec![(
            format!("staff:{}", staff.email),
            "organisation.open".to_owned(),
            "Accompagnement du diocèse".to_owned()
        )]
    );
    let plan: String = sqlx::query_scalar("SELECT plan_id FROM organisations WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(plan, "reseau");
    let (subject, body) = app.last_email(owner_email).await;
    assert!(subject.contains("Paroisse Saint-Paul"), "{subject}");
    assert!(body.contains("propriétaire"), "{body}");
    // The invitation accepted: its owner, who may buy.
    let link = app.link_in_last_email(owner_email).await;
    let browser = app.browser();
    let (status, html) = browser.html(&link).await;
    assert_eq!(status, 200);
    let token = attr(&html, "input[name=jeton]", "value").unwrap();
    let pw = "psaume vingt-trois en canon";
    let joined = browser
        .submit(
            &link,
            "/compte/invitation",
            &[
                ("jeton", &token),
                ("mot_de_passe", pw),
                ("confirmation", pw),
            ],
        )
        .await;
    assert_eq!(location(&joined), "/compte");
    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE email = $1")
        .bind(owner_email)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(role, "owner");
    assert_eq!(browser.get("/achats/pack-10").await.status(), 200);
}

#[tokio::test]
async fn a_suspended_organisation_reads_but_cannot_launch_buy_or_change_its_plan() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let owner = app.owner("reseau").await;
    let member = app.member(owner.org()).await;
    let (_, key) = nanoclip::services::api_keys::create(
        &app.pool,
        owner.org(),
        true,
        "Tests",
        "cli",
        None,
        app.clock.now(),
    )
    .await
    .unwrap();
    let page = format!("/admin/organisations/{}", owner.org());
    let action = format!("{page}/suspension");
    // No reason: refused, 400, nothing suspended.
    let refused = staff.browser.submit(&page, &action, &[("motif", "")]).await;
    assert_eq!(refused.status(), 400);
    let html = scraper::Html::parse_document(&refused.text().await.unwrap());
    assert!(text(&html, "[role=alert]").contains("motif"));
    assert!(audit(&app, owner.org()).await.is_empty());
    let done = staff
        .browser
        .submit(
            &page,
            &action,
            &[("motif", "Impayés signalés par la banque")],
        )
        .await;
    assert_eq!(location(&done), format!("{page}?avis=suspendue"));
    let (_, html) = staff.browser.html(&page).await;
    assert!(text(&html, "#suspension").contains("Suspendue par l’équipe"));
    // Members still sign in and read.
    for (browser, path) in [
        (&member.browser, "/tableau-de-bord"),
        (&member.browser, "/credits/historique"),
        (&member.browser, "/compte"),
        (&owner.browser, "/achats/historique"),
        (&owner.browser, "/abonnement"),
    ] {
        assert_eq!(browser.get(path).await.status(), 200, "{path}");
    }
    // A launch from the portal: refused, with the suspension said, nothing held.
    let response = member
        .browser
        .submit(
            "/generations",
            "/generations",
            &[("type", "image"), ("prompt", "Un vitrail lumineux")],
        )
        .await;
    let (_, html) = member.browser.html(&location(&response)).await;
    let notice = text(&html, "#lancement");
    assert!(
        notice.contains("0\u{a0}crédit débité") && notice.contains("suspension par l’équipe"),
        "{notice}"
    );
    // Through the API: 403 with the contract's refusal `suspended`.
    let launched = app
        .client
        .post(app.url("/api/v1/generations"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "suspendue-1")
        .json(&serde_json::json!({"type": "image"}))
        .send()
        .await
        .unwrap();
    assert_eq!(launched.status(), 403);
    let body: Value = launched.json().await.unwrap();
    assert_eq!(body["refusal"]["rule"], "suspended");
    assert!(
        body["refusal"]["message"]
            .as_str()
            .unwrap()
            .contains("suspension par l’équipe")
    );
    // A purchase, a downgrade, cancelling it: a 403 page that says why, nothing ordered.
    let (_, html) = owner.browser.html("/achats/pack-10").await;
    let form_key = attr(&html, "input[name=cle]", "value").unwrap();
    let price = attr(&html, "input[name=prix]", "value").unwrap();
    let bought = owner
        .browser
        .submit(
            "/achats/pack-10",
            "/achats/pack-10",
            &[("cle", &form_key), ("prix", &price)],
        )
        .await;
    assert_eq!(bought.status(), 403);
    let html = scraper::Html::parse_document(&bought.text().await.unwrap());
    assert_eq!(text(&html, "h1"), "Organisation suspendue");
    assert!(text(&html, ".error-page").contains("consulter votre compte"));
    for (action, fields) in [
        ("/abonnement/changement", vec![("plan", "eglise")]),
        ("/abonnement/annulation", vec![]),
    ] {
        let response = owner.browser.submit("/abonnement", action, &fields).await;
        assert_eq!(response.status(), 403, "{action}");
        let html = scraper::Html::parse_document(&response.text().await.unwrap());
        assert_eq!(text(&html, "h1"), "Organisation suspendue", "{action}");
    }
    let (orders, scheduled): (i64, Option<String>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders WHERE organisation_id = $1 AND kind = 'pack'),
                (SELECT scheduled_plan_id FROM subscriptions WHERE organisation_id = $1)",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((orders, scheduled), (0, None));
    // Reactivated (a reason again): the purchase goes through.
    let done = staff
        .browser
        .submit(
            &page,
            &format!("{page}/reactivation"),
            &[("motif", "Paiement reçu")],
        )
        .await;
    assert_eq!(location(&done), format!("{page}?avis=reactivee"));
    let bought = owner
        .browser
        .submit(
            "/achats/pack-10",
            "/achats/pack-10",
            &[("cle", &form_key), ("prix", &price)],
        )
        .await;
    assert_eq!(bought.status(), 303);
    let actions: Vec<String> = audit(&app, owner.org())
        .await
        .into_iter()
        .map(|(_, action, _)| action)
        .collect();
    assert_eq!(actions, ["organisation.suspend", "organisation.reactivate"]);
}

#[tokio::test]
async fn a_suspended_organisation_is_not_charged_at_its_renewal() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    let owner = app.owner("eglise").await;
    let suspended = nanoclip::services::admin::set_suspended(
        &app.pool,
        owner.org(),
        true,
        "staff:test@nanoclip.fr",
        "Fraude présumée",
        app.clock.now(),
    )
    .await
    .unwrap();
    assert!(suspended);
    let end = datetime!(2026-12-31 23:00 UTC);
    assert_eq!(app.renew_due(end).await.unwrap(), 1, "the period rolls");
    let (attempts, renewals, allotments): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM charge_attempts a JOIN orders o ON o.id = a.order_id WHERE o.organisation_id = $1),
                (SELECT count(*) FROM orders WHERE organisation_id = $1 AND kind = 'renewal'),
                (SELECT count(*) FROM credit_buckets WHERE organisation_id = $1 AND grant_key = 'period:2')",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (attempts, renewals, allotments),
        (0, 0, 0),
        "neither charged nor credited"
    );
    crate::credits::assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn a_raise_request_from_the_contact_form_fills_the_raise_form_and_staff_grant_it() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let owner = app.owner("eglise").await;
    let csrf = app.csrf_token("/contact?sujet=evenement").await;
    let sent = app
        .post_form(
            "/contact",
            &[
                ("csrf", &csrf),
                ("nom", "Père Martin"),
                ("email", &owner.email),
                ("organisation", "Paroisse"),
                ("sujet", "evenement"),
                ("date_debut", "2099-03-01"),
                ("date_fin", "2099-03-03"),
                ("volume", "40 vidéos et 120 images"),
                ("message", "Nous préparons les JMJ diocésaines."),
                ("confirmer", "1"),
            ],
        )
        .await;
    assert_eq!(sent.status(), 303);
    let id: i64 = sqlx::query_scalar("SELECT id FROM contact_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // Listed as new, with the event and a link straight to the raise form.
    let (status, html) = staff.browser.html("/admin/messages").await;
    assert_eq!(status, 200);
    let card = text(&html, &format!("#message-{id}"));
    assert!(card.contains("nouveau"), "{card}");
    assert!(card.contains("40 vidéos et 120 images"), "{card}");
    let form_page = format!("/admin/organisations/{}/limites?message={id}", owner.org());
    assert_eq!(
        attr(&html, &format!("#message-{id} a[href*=limites]"), "href").unwrap(),
        form_page
    );
    let (status, html) = staff.browser.html(&form_page).await;
    assert_eq!(status, 200);
    assert_eq!(attr(&html, "#champ-debut", "value").unwrap(), "2099-03-01");
    assert_eq!(attr(&html, "#champ-fin", "value").unwrap(), "2099-03-03");
    assert_eq!(attr(&html, "#champ-quotidien", "value").unwrap(), "30");
    assert!(text(&html, "section.card").contains("JMJ diocésaines"));
    let action = format!("/admin/organisations/{}/limites", owner.org());
    let fields = |debut: &'static str, fin: &'static str, motif: &'static str| {
        vec![
            ("quotidien", "40"),
            ("mensuel", "300"),
            ("simultane", "3"),
            ("debut", debut),
            ("fin", fin),
            ("motif", motif),
        ]
    };
    // Ends before it starts; over already; bad caps and no reason: each said, values kept.
    for (sent, expected) in [
        (
            fields("2099-03-03", "2099-03-01", "JMJ"),
            "commencer avant de finir",
        ),
        (fields("2020-03-01", "2020-03-03", "JMJ"), "déjà passé"),
        (fields("2099-03-01", "2099-03-03", ""), "motif"),
    ] {
        let refused = staff.browser.submit(&form_page, &action, &sent).await;
        assert_eq!(refused.status(), 400, "{expected}");
        let html = scraper::Html::parse_document(&refused.text().await.unwrap());
        assert!(
            text(&html, "[role=alert]").contains(expected),
            "{expected}: {}",
            text(&html, "[role=alert]")
        );
        assert_eq!(attr(&html, "#champ-debut", "value").unwrap(), sent[3].1);
        assert_eq!(attr(&html, "#champ-mensuel", "value").unwrap(), "300");
    }
    let mut bad_cap = fields("2099-03-01", "2099-03-03", "JMJ");
    bad_cap[0].1 = "0";
    let refused = staff.browser.submit(&form_page, &action, &bad_cap).await;
    assert_eq!(refused.status(), 400);
    assert!(audit(&app, owner.org()).await.is_empty());
    // Granted: the same rows and audit line as the command, the actor staff.
    let done = staff
        .browser
        .submit(
            &form_page,
            &action,
            &fields("2099-03-01", "2099-03-03", "JMJ diocésaines"),
        )
        .await;
    assert_eq!(
        location(&done),
        format!("/admin/organisations/{}?avis=hausse", owner.org())
    );
    let raise: (i32, i64, i32, time::Date, time::Date, String) = sqlx::query_as(
        "SELECT daily, monthly, concurrent, first_day, last_day, actor FROM limit_raises
         WHERE organisation_id = $1 AND replaced_at IS NULL",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        raise,
        (
            40,
            300,
            3,
            time::macros::date!(2099 - 03 - 01),
            time::macros::date!(2099 - 03 - 03),
            format!("staff:{}", staff.email)
        )
    );
    assert_eq!(
        audit(&app, owner.org()).await,
        vec![(
            format!("staff:{}", staff.email),
            "limits.raise".to_owned(),
            "JMJ diocésaines".to_owned()
        )]
    );
    let (_, html) = staff
        .browser
        .html(&format!("/admin/organisations/{}", owner.org()))
        .await;
    assert!(text(&html, "#limites ~ p").contains("du 1er\u{a0}mars 2099"));
    assert!(text(&html, "#contacts ~ ul").contains("nouveau"));
    // Marked answered: a reason required, then audited and listed as answered.
    let answer = format!("/admin/messages/{id}/reponse");
    let refused = staff
        .browser
        .submit("/admin/messages", &answer, &[("motif", "")])
        .await;
    assert_eq!(refused.status(), 400);
    let done = staff
        .browser
        .submit(
            "/admin/messages",
            &answer,
            &[("motif", "Hausse accordée, réponse par e-mail")],
        )
        .await;
    assert_eq!(location(&done), "/admin/messages?avis=repondu");
    let (_, html) = staff.browser.html("/admin/messages?avis=repondu").await;
    assert_eq!(count(&html, &format!("#message-{id}")), 0, "no longer new");
    let (_, html) = staff.browser.html("/admin/messages?statut=tous").await;
    assert!(text(&html, &format!("#message-{id}")).contains("répondu"));
    let actions: Vec<String> = audit(&app, owner.org())
        .await
        .into_iter()
        .map(|(_, action, _)| action)
        .collect();
    assert_eq!(actions, ["limits.raise", "contact.answered"]);
    // An unknown message: 404.
    let unknown = staff
        .browser
        .submit(
            "/admin/messages",
            "/admin/messages/999999/reponse",
            &[("motif", "x")],
        )
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn the_organisation_file_shows_everything_and_pages_the_ledger() {
    let app = spawn_app().await;
    let staff = app.staff().await;
    let owner = app.owner("eglise").await;
    for n in 0..25 {
        nanoclip::services::credits::adjust(
            &app.pool,
            nanoclip::services::credits::Adjustment {
                organisation: owner.org(),
                credits: nanoclip::domain::money::Credits(1),
                reason: "Geste",
                last_day: None,
                key: &format!("test-{n}"),
                actor: "cli",
            },
            app.clock.now(),
        )
        .await
        .unwrap();
    }
    let page = format!("/admin/organisations/{}", owner.org());
    let (status, html) = staff.browser.html(&page).await;
    assert_eq!(status, 200);
    for section in [
        "#etat",
        "#membres",
        "#credits",
        "#limites",
        "#mouvements",
        "#generations",
        "#commandes",
        "#contacts",
    ] {
        assert_eq!(count(&html, section), 1, "{section}");
    }
    assert!(text(&html, "#abonnement").contains("période n°"));
    assert_eq!(count(&html, "#mouvements ~ ul li"), 20);
    let older = attr(&html, "nav[aria-label='Pages des mouvements'] a", "href").unwrap();
    assert_eq!(older, format!("{page}?page=2#mouvements"));
    let (status, html) = staff.browser.html(&format!("{page}?page=2")).await;
    assert_eq!(status, 200);
    // 25 adjustments and the plan's allotment.
    assert_eq!(count(&html, "#mouvements ~ ul li"), 6);
    // A page out of range, or not a number: the first.
    let (status, _) = staff.browser.html(&format!("{page}?page=abc")).await;
    assert_eq!(status, 200);
}
