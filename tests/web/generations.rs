//! `/generations` (launch form, outcomes, refusals with « Je pense que c'est une erreur »),
//! `/compte/api` (keys), the raise on the dashboard, and the commands `limits raise` and
//! `api-key create`.

use crate::common::{TestApp, attr, count, select_texts, spawn_app, text};

fn nanoclip(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    app.command(args)
}

#[tokio::test]
async fn a_member_launches_from_the_portal_and_sees_the_hold_become_a_charge() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let member = app.member(owner.org()).await;
    // Before launching: what the organisation can spend, and the cost of what is filled in
    // (asked of the simulator by the page's script, for the organisation's plan).
    let (_, html) = member.browser.html("/generations").await;
    assert_eq!(
        text(&html, "#solde-disponible"),
        "Solde disponible\u{202f}: 30\u{a0}crédits"
    );
    assert_eq!(
        attr(&html, "#cout-estime", "data-cout").as_deref(),
        Some("/api/v1/simulateur")
    );
    assert_eq!(
        attr(&html, "#cout-estime", "data-plan").as_deref(),
        Some("eglise")
    );
    let response = member
        .browser
        .submit(
            "/generations",
            "/generations",
            &[("type", "image"), ("prompt", "Un vitrail lumineux de Noël")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/generations?lancee="), "{location}");
    let (status, html) = member.browser.html(&location).await;
    assert_eq!(status, 200);
    assert!(
        text(&html, "#lancement")
            .starts_with("Génération lancée\u{202f}: 1\u{a0}crédit réservé pendant le rendu."),
        "{}",
        text(&html, "#lancement")
    );
    assert_eq!(select_texts(&html, "#generations > li").len(), 1);
    assert!(text(&html, "#generations > li").contains("En cours · 1\u{a0}crédit réservé"));
    // A running card is marked for the page's script, which asks again until it is done.
    assert_eq!(count(&html, "#generations > li[data-en-cours]"), 1);
    assert_eq!(
        text(&html, "#solde-disponible"),
        "Solde disponible\u{202f}: 29\u{a0}crédits"
    );
    // The test engine reports a few seconds later: captured.
    let later = app.clock.now() + nanoclip::services::generations::TEST_ENGINE_DELAY;
    assert_eq!(
        nanoclip::services::generations::run_test_engine(&app.pool, later)
            .await
            .unwrap(),
        1
    );
    let (_, html) = member.browser.html("/generations").await;
    let row = text(&html, "#generations > li");
    assert!(row.contains("Réussie · 1\u{a0}crédit débité"), "{row}");
    assert_eq!(count(&html, "#generations > li[data-en-cours]"), 0);
    let (_, dashboard) = owner.browser.html("/tableau-de-bord").await;
    assert_eq!(text(&dashboard, "#disponible"), "29\u{a0}crédits");
    // Another organisation sees none of it.
    let other = app.owner("eglise").await;
    let (_, html) = other.browser.html("/generations").await;
    assert_eq!(count(&html, "#generations > li"), 0);
    crate::credits::assert_ledger_clean(&app.pool).await;
}

/// A member cannot change the plan nor buy: a refusal tells them who can, rather than sending
/// them to a page that refuses them; their pages offer no orders and invoices either.
#[tokio::test]
async fn a_member_s_refusal_names_who_can_act_instead_of_a_dead_end() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let member = app.member(owner.org()).await;
    let response = member
        .browser
        .submit(
            "/generations",
            "/generations",
            &[
                ("type", "image"),
                ("resolution", "4k"),
                ("format", "1080x1350"),
            ],
        )
        .await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let (_, html) = member.browser.html(&location).await;
    let notice = text(&html, "#lancement");
    assert!(
        notice.contains("Le propriétaire du compte peut changer de plan"),
        "{notice}"
    );
    assert_eq!(count(&html, "#lancement a[href='/abonnement']"), 0);
    for page in ["/achats", "/abonnement"] {
        let (_, html) = member.browser.html(page).await;
        assert_eq!(count(&html, "a[href='/achats/historique']"), 0, "{page}");
    }
    let (_, html) = owner.browser.html("/achats").await;
    assert_eq!(count(&html, "a[href='/achats/historique']"), 1);
}

#[tokio::test]
async fn a_refusal_is_kept_explained_and_costs_nothing() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let response = owner
        .browser
        .submit(
            "/generations",
            "/generations",
            &[
                ("type", "image"),
                ("resolution", "4k"),
                ("format", "1080x1350"),
                ("prompt", "Une croix lumineuse au lever du soleil"),
            ],
        )
        .await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let (_, html) = owner.browser.html(&location).await;
    let notice = text(&html, "#lancement");
    assert!(
        notice.starts_with(
            "Génération refusée\u{202f}: 0\u{a0}crédit débité. La 4K est réservée au Plan Réseau."
        ),
        "{notice}"
    );
    // The way out, and the form filled again with what was refused, to change the one setting.
    assert_eq!(count(&html, "#lancement a[href='/abonnement']"), 1);
    assert_eq!(
        attr(&html, "#lancer-type option[selected]", "value").as_deref(),
        Some("image")
    );
    assert_eq!(
        attr(&html, "input[name=resolution][checked]", "value").as_deref(),
        Some("4k")
    );
    assert_eq!(
        attr(&html, "select[name=format] option[selected]", "value").as_deref(),
        Some("1080x1350")
    );
    assert_eq!(
        text(&html, "#lancer-prompt"),
        "Une croix lumineuse au lever du soleil"
    );
    let contact = attr(&html, "#lancement a[href^='/contact']", "href").unwrap();
    assert!(
        contact.starts_with("/contact?sujet=erreur&generation="),
        "{contact}"
    );
    assert!(contact.ends_with("&regle=plan_feature"), "{contact}");
    let (status, form) = owner.browser.html(&contact).await;
    assert_eq!(status, 200);
    // Signed in: the address and the organisation are filled in.
    assert_eq!(
        attr(&form, "#champ-email", "value").as_deref(),
        Some(owner.email.as_str())
    );
    assert!(attr(&form, "#champ-organisation", "value").is_some_and(|o| !o.is_empty()));
    assert_eq!(
        attr(&form, "option[selected]", "value").as_deref(),
        Some("erreur")
    );
    let message = text(&form, "textarea");
    assert!(message.contains("a été refusée (option absente de notre plan). Je pense que c’est une erreur, parce que\u{202f}:"), "{message}");
    // When and what, as the list says it, not the generation's id.
    assert!(message.starts_with("Ma génération du "), "{message}");
    assert!(message.contains("(Image, 1080×1350, 4K)"), "{message}");
    let id = contact
        .split("generation=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap();
    assert!(!message.contains(id), "{message}");
    // Another organisation's id is not described (nor confirmed to exist).
    let stranger = app.owner("eglise").await;
    let (_, other) = stranger.browser.html(&contact).await;
    assert!(
        text(&other, "textarea").starts_with(&format!("Ma génération {id} a été refusée")),
        "{}",
        text(&other, "textarea")
    );
    // Sent as it comes, with the reason added: staff get it, with its subject.
    let name = attr(&form, "#champ-nom", "value").unwrap_or_default();
    let organisation = attr(&form, "#champ-organisation", "value").unwrap_or_default();
    let message = format!("{message} notre paroisse a bien le Plan Réseau.");
    let response = owner
        .browser
        .submit(
            &contact,
            "/contact",
            &[
                (
                    "nom",
                    if name.is_empty() {
                        "Claire"
                    } else {
                        name.as_str()
                    },
                ),
                ("email", owner.email.as_str()),
                ("organisation", organisation.as_str()),
                ("sujet", "erreur"),
                ("message", message.as_str()),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/contact/merci?sujet=erreur"
    );
    let (_, thanks) = owner.browser.html("/contact/merci?sujet=erreur").await;
    assert!(text(&thanks, "main").contains("Un refus ne coûte aucun crédit"));
    assert_eq!(count(&thanks, "main a[href='/generations']"), 1);
    let (subject, stored): (String, String) =
        sqlx::query_as("SELECT subject, message FROM contact_messages")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(subject, "erreur");
    assert!(
        stored.contains("notre paroisse a bien le Plan Réseau."),
        "{stored}"
    );
    // The list keeps it, with « 0 crédit débité ».
    let row = text(&html, "#generations > li");
    assert!(
        row.contains("Refusée · 0\u{a0}crédit débité La 4K est réservée au Plan Réseau."),
        "{row}"
    );
    let (_, dashboard) = owner.browser.html("/tableau-de-bord").await;
    assert_eq!(text(&dashboard, "#disponible"), "30\u{a0}crédits");
}

#[tokio::test]
async fn a_wrong_field_is_explained_with_the_values_kept_and_a_form_sent_twice_launches_once() {
    let app = spawn_app().await;
    let owner = app.owner("reseau").await;
    let response = owner
        .browser
        .submit(
            "/generations",
            "/generations",
            &[
                ("type", "video"),
                ("duree", "99"),
                ("prompt", "Un chœur en répétition"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let html = scraper::Html::parse_document(&response.text().await.unwrap());
    assert!(
        text(&html, "#erreurs").contains("15"),
        "{}",
        text(&html, "#erreurs")
    );
    assert_eq!(attr(&html, "#lancer-duree", "value").as_deref(), Some("99"));
    assert_eq!(text(&html, "#lancer-prompt"), "Un chœur en répétition");
    // The same form (same key) sent twice: one generation.
    let token = owner.browser.token("/generations").await;
    let (_, page) = owner.browser.html("/generations").await;
    let key = attr(&page, "input[name=cle]", "value").unwrap();
    for _ in 0..2 {
        let response = owner
            .browser
            .client
            .post(format!("{}/generations", owner.browser.base))
            .form(&[
                ("csrf", token.as_str()),
                ("cle", key.as_str()),
                ("type", "image"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
    }
    let (_, html) = owner.browser.html("/generations").await;
    assert_eq!(count(&html, "#generations > li"), 1);
    // Without the CSRF token: refused.
    let response = owner
        .browser
        .client
        .post(format!("{}/generations", owner.browser.base))
        .form(&[("type", "image")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

/// The page that shows a new key's secret answers a POST: reloading it (or a double click)
/// sends the same form again, which used to make a second key whose secret nobody saw. The
/// form carries its own key: sent again, it makes nothing and says so.
#[tokio::test]
async fn an_api_key_form_sent_twice_makes_one_key() {
    let app = spawn_app().await;
    let owner = app.owner("reseau").await;
    let (_, html) = owner.browser.html("/compte/api").await;
    let field = |name: &str| {
        attr(
            &html,
            &format!("form[action='/compte/api'] input[name={name}]"),
            "value",
        )
        .unwrap()
    };
    let (token, key) = (field("csrf"), field("cle"));
    let mut pages = Vec::new();
    for _ in 0..2 {
        let response = owner
            .browser
            .client
            .post(format!("{}/compte/api", owner.browser.base))
            .form(&[
                ("csrf", token.as_str()),
                ("cle", key.as_str()),
                ("nom", "Site de la paroisse"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        pages.push(scraper::Html::parse_document(
            &response.text().await.unwrap(),
        ));
    }
    assert!(attr(&pages[0], "#secret", "value").is_some());
    assert!(attr(&pages[1], "#secret", "value").is_none());
    assert!(
        text(&pages[1], "#cle-deja-creee").contains("« Site de la paroisse » a déjà été créée"),
        "{}",
        text(&pages[1], "#cle-deja-creee")
    );
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE organisation_id = $1")
        .bind(owner.org())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(keys, 1, "one key for one form");
    // A new form (the page shown again) makes a new key.
    let response = owner
        .browser
        .submit("/compte/api", "/compte/api", &[("nom", "Application")])
        .await;
    assert_eq!(response.status(), 200);
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE organisation_id = $1")
        .bind(owner.org())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(keys, 2);
}

#[tokio::test]
async fn owners_of_plan_reseau_create_and_revoke_api_keys() {
    let app = spawn_app().await;
    let owner = app.owner("reseau").await;
    let response = owner
        .browser
        .submit(
            "/compte/api",
            "/compte/api",
            &[("nom", "Site de la paroisse")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let html = scraper::Html::parse_document(&response.text().await.unwrap());
    let secret = attr(&html, "#secret", "value").unwrap();
    assert!(
        secret.starts_with("nanoclip_live_") && secret.len() == 14 + 64,
        "{secret}"
    );
    let rows = select_texts(&html, "#liste-cles > li");
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].contains("Site de la paroisse")
            && rows[0].contains(&secret[..18])
            && rows[0].contains("jamais")
    );
    assert!(!rows[0].contains(&secret), "the secret is not listed");
    let api = app
        .client
        .get(app.url("/api/v1/solde"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    // Shown once: the page does not show it again; its use is noted.
    let (_, html) = owner.browser.html("/compte/api").await;
    assert!(!html.html().contains(&secret));
    assert!(!text(&html, "#liste-cles > li").contains("jamais"));
    // An empty name: the message, 400.
    let response = owner
        .browser
        .submit("/compte/api", "/compte/api", &[("nom", "  ")])
        .await;
    assert_eq!(response.status(), 400);
    // Revoked: the API refuses it.
    let (_, html) = owner.browser.html("/compte/api").await;
    let action = attr(&html, "#liste-cles form", "action").unwrap();
    let response = owner
        .browser
        .submit("/compte/api", &action, &[("confirmer", "oui")])
        .await;
    assert_eq!(response.status(), 303);
    let api = app
        .client
        .get(app.url("/api/v1/solde"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    // A member may not; a Plan Église owner is told the API is Plan Réseau's.
    let member = app.member(owner.org()).await;
    assert_eq!(member.browser.get("/compte/api").await.status(), 403);
    let eglise = app.owner("eglise").await;
    let (status, html) = eglise.browser.html("/compte/api").await;
    assert_eq!(status, 200);
    assert!(text(&html, "main").contains("réservée au Plan Réseau"));
    assert_eq!(count(&html, "form[action='/compte/api']"), 0);
    let token = eglise.browser.token("/compte").await;
    let response = eglise
        .browser
        .client
        .post(format!("{}/compte/api", eglise.browser.base))
        .form(&[("csrf", token.as_str()), ("nom", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn the_commands_raise_limits_and_create_keys_as_the_contract_says() {
    let app = spawn_app().await;
    let owner = app.owner("reseau").await;
    let email = owner.email.clone();
    let until = (app.clock.now().date() + time::Duration::days(10)).to_string();
    let (ok, out, err) = nanoclip(
        &app,
        &[
            "limits",
            "raise",
            "--organisation",
            &email,
            "--daily",
            "120",
            "--monthly",
            "900",
            "--concurrent",
            "8",
            "--until",
            &until,
            "--reason",
            "Veillée de Noël",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!(
            "Hausse temporaire pour l’organisation de {email} du "
        )),
        "{out}"
    );
    assert!(
        out.ends_with(
            "inclus : 120 générations par jour, 900 crédits par mois, 8 rendus à la fois."
        ),
        "{out}"
    );
    let (_, html) = owner.browser.html("/tableau-de-bord").await;
    assert!(
        text(&html, "#hausse").contains("(Veillée de Noël)"),
        "{}",
        text(&html, "#hausse")
    );
    let meters: Vec<String> = html
        .select(&scraper::Selector::parse("meter").unwrap())
        .map(|m| m.attr("max").unwrap().to_owned())
        .collect();
    assert_eq!(meters, ["120", "900", "8"]);
    for (args, message) in [
        (
            vec![
                "--daily",
                "0",
                "--monthly",
                "9",
                "--concurrent",
                "1",
                "--until",
                until.as_str(),
                "--reason",
                "x",
            ],
            "--daily attend un nombre entier positif",
        ),
        (
            vec![
                "--daily",
                "5",
                "--monthly",
                "9",
                "--concurrent",
                "1",
                "--until",
                "demain",
                "--reason",
                "x",
            ],
            "--until attend une date au format AAAA-MM-JJ",
        ),
        (
            vec![
                "--daily",
                "5",
                "--monthly",
                "9",
                "--concurrent",
                "1",
                "--until",
                "2020-01-01",
                "--reason",
                "x",
            ],
            "--until est passé",
        ),
        (
            vec![
                "--daily",
                "5",
                "--monthly",
                "9",
                "--concurrent",
                "1",
                "--until",
                until.as_str(),
                "--from",
                "2099-01-01",
                "--reason",
                "x",
            ],
            "--from est après --until",
        ),
    ] {
        let mut all = vec!["limits", "raise", "--organisation", email.as_str()];
        all.extend(args);
        let (ok, _, err) = nanoclip(&app, &all);
        assert!(!ok, "{all:?}");
        assert!(err.contains(message), "{all:?}: {err}");
    }
    let (ok, out, err) = nanoclip(
        &app,
        &[
            "api-key",
            "create",
            "--organisation",
            &email,
            "--name",
            "Outil diocésain",
        ],
    );
    assert!(ok, "{err}");
    let key = out.lines().last().unwrap();
    assert!(key.starts_with("nanoclip_live_"), "{out}");
    let api = app
        .client
        .get(app.url("/api/v1/solde"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(
        body["limits"]["daily"]["cap"], 120,
        "the raise's caps replace the plan's"
    );
    let eglise = app.owner("eglise").await;
    let (ok, out, err) = nanoclip(
        &app,
        &[
            "api-key",
            "create",
            "--organisation",
            &eglise.email,
            "--name",
            "x",
        ],
    );
    assert!(!ok && out.is_empty());
    assert!(err.contains("réservée au Plan Réseau"), "{err}");
}
