//! `/contact`, guide feedback, and CSRF on every state-changing route.

use crate::common::{attr, count, spawn_app, text};

fn event_form<'a>(csrf: &'a str, start: &'a str, end: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("nom", "Père Martin"),
        ("email", "martin@paroisse-saint-jean.fr"),
        ("organisation", "Paroisse Saint-Jean"),
        ("sujet", "evenement"),
        ("date_debut", start),
        ("date_fin", end),
        ("volume", "40 vidéos et 120 images"),
        (
            "message",
            "Nous préparons les JMJ diocésaines et aurons besoin de plus de rendus.",
        ),
        ("confirmer", "1"),
    ]
}

#[tokio::test]
async fn an_event_limit_raise_request_is_stored_for_staff() {
    let app = spawn_app().await;
    let csrf = app.csrf_token("/contact?sujet=evenement").await;
    let response = app
        .post_form("/contact", &event_form(&csrf, "2099-03-01", "2099-03-03"))
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/contact/merci?sujet=evenement"
    );
    let (subject, volume): (String, String) =
        sqlx::query_as("SELECT subject, event_volume FROM contact_messages")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (subject.as_str(), volume.as_str()),
        ("evenement", "40 vidéos et 120 images")
    );
    let (status, html) = app.get_html("/contact/merci?sujet=evenement").await;
    assert_eq!(status, 200);
    assert!(text(&html, "h1").starts_with("Merci"));
    // What happens next, for an event; an anonymous sender gets no link to account pages.
    let main = text(&html, "main");
    assert!(
        main.contains("votre tableau de bord les affiche, avec leur date de fin"),
        "{main}"
    );
    assert_eq!(count(&html, "main a[href='/tableau-de-bord']"), 0);
    // A made-up subject is only thanked.
    for query in [
        "sujet=%3Cscript%3E",
        "sujet=evenement&sujet=erreur",
        "sujet=%FF",
    ] {
        let (status, html) = app.get_html(&format!("/contact/merci?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert!(!text(&html, "main").contains("Et maintenant"), "{query}");
    }
    // Only staff can grant it: no guides offered first, even for words a guide has.
    let mut form = event_form(&csrf, "2099-04-01", "2099-04-02");
    form.retain(|(name, _)| *name != "confirmer");
    form.retain(|(name, _)| *name != "message");
    form.push((
        "message",
        "Combien de crédits faut-il pour une vidéo de Pâques ?",
    ));
    let response = app.post_form("/contact", &form).await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn the_contact_form_offers_matching_guides_before_sending() {
    let app = spawn_app().await;
    let csrf = app.csrf_token("/contact").await;
    let form = [
        ("csrf", csrf.as_str()),
        ("nom", "Claire"),
        ("email", "claire@example.org"),
        ("sujet", "question"),
        ("message", "Mes crédits expirent-ils à la fin du mois ?"),
    ];
    let response = app.post_form("/contact", &form).await;
    assert_eq!(response.status(), 200);
    let html = scraper::Html::parse_document(&response.text().await.unwrap());
    assert!(
        (1..=3).contains(&count(&html, "#peut-etre + ul li")),
        "up to three guides"
    );
    assert_eq!(
        attr(&html, "#peut-etre + ul a", "href").as_deref(),
        Some("/aide/credits-et-limites")
    );
    assert_eq!(
        attr(&html, "input[name=confirmer]", "value").as_deref(),
        Some("1")
    );
    assert_eq!(
        attr(&html, "#champ-nom", "value").as_deref(),
        Some("Claire"),
        "values kept"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM contact_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing sent before confirmation");
}

#[tokio::test]
async fn a_wrong_contact_form_comes_back_with_french_messages_and_values() {
    let app = spawn_app().await;
    let csrf = app.csrf_token("/contact").await;
    let mut form = event_form(&csrf, "2099-03-05", "2099-03-01");
    form[2] = ("email", "pas-une-adresse");
    form[1] = ("nom", "");
    let response = app.post_form("/contact", &form).await;
    assert_eq!(response.status(), 400);
    let html = scraper::Html::parse_document(&response.text().await.unwrap());
    assert_eq!(text(&html, "#erreur-nom"), "Indiquez votre nom.");
    assert!(text(&html, "#erreur-email").starts_with("Indiquez une adresse e-mail valide"));
    assert_eq!(
        text(&html, "#erreur-date_fin"),
        "Le dernier jour doit être le premier jour ou un jour après."
    );
    assert_eq!(
        attr(&html, "#champ-email", "value").as_deref(),
        Some("pas-une-adresse")
    );
    assert_eq!(
        attr(&html, "#champ-volume", "value").as_deref(),
        Some("40 vidéos et 120 images")
    );
}

#[tokio::test]
async fn contact_messages_are_rate_limited_per_client() {
    let app = spawn_app().await;
    let csrf = app.csrf_token("/contact").await;
    for _ in 0..5 {
        assert_eq!(
            app.post_form("/contact", &event_form(&csrf, "2099-03-01", "2099-03-03"))
                .await
                .status(),
            303
        );
    }
    let refused = app
        .post_form("/contact", &event_form(&csrf, "2099-03-01", "2099-03-03"))
        .await;
    assert_eq!(refused.status(), 429);
    assert!(
        refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            > 0
    );
    let html = scraper::Html::parse_document(&refused.text().await.unwrap());
    assert!(text(&html, "main").contains("Trop de tentatives, réessayez dans"));
}

/// The hour before still counts after it turns (a limit that forgot it let ten messages through
/// in two minutes), and the taps on a refused « Envoyer » are not counted past the limit, so
/// they do not push the wait into the next hour.
#[tokio::test]
async fn the_previous_hour_s_messages_still_count_and_refused_taps_do_not_add_up() {
    let app = spawn_app().await;
    let into_hour = || {
        time::OffsetDateTime::now_utc()
            .unix_timestamp()
            .rem_euclid(3600)
    };
    // In its last seconds the previous hour weighs almost nothing: start after them.
    if into_hour() > 3570 {
        let left = 3601 - into_hour();
        tokio::time::sleep(std::time::Duration::from_secs(left.unsigned_abs())).await;
    }
    // A burst of messages from this client during the previous hour.
    sqlx::query(
        "INSERT INTO rate_limits (key, window_start, hits)
         VALUES ('contact:127.0.0.1', to_timestamp(floor(extract(epoch FROM now()) / 3600) * 3600 - 3600), 500)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let csrf = app.csrf_token("/contact").await;
    let refused = app
        .post_form("/contact", &event_form(&csrf, "2099-03-01", "2099-03-03"))
        .await;
    assert_eq!(refused.status(), 429, "the previous hour still counts");
    // One more message fits once the previous hour weighs 3 or less (5 a hour, this refused one
    // counted): when all but 3/500 of it has slid out.
    let retry_after: f64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected = 3600.0 * (1.0 - 3.0 / 500.0) - into_hour() as f64;
    assert!(
        (retry_after - expected).abs() <= 2.0,
        "Retry-After {retry_after} s, expected about {expected} s"
    );
    for _ in 0..10 {
        app.post_form("/contact", &event_form(&csrf, "2099-03-01", "2099-03-03"))
            .await;
    }
    let stored: i32 = sqlx::query_scalar(
        "SELECT hits FROM rate_limits
         WHERE key = 'contact:127.0.0.1'
           AND window_start = to_timestamp(floor(extract(epoch FROM now()) / 3600) * 3600)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(stored <= 6, "refused taps counted past the limit: {stored}");
}

#[tokio::test]
async fn a_guide_vote_and_its_comment_are_stored() {
    let app = spawn_app().await;
    let (status, _) = app.get_html("/aide/tarifs/avis?utile=oui").await;
    assert_eq!(status, 200);
    let (status, html) = app.get_html("/aide/tarifs/avis?utile=non").await;
    assert_eq!(status, 200);
    let contact = attr(&html, "main a[href^='/contact']", "href").unwrap();
    assert_eq!(contact, "/contact?sujet=question&page=/aide/tarifs");
    let csrf = attr(&html, "input[name=csrf]", "value").unwrap();
    let vote = attr(&html, "input[name=avis]", "value").unwrap();
    let empty = app
        .post_form(
            "/aide/tarifs/avis",
            &[("csrf", &csrf), ("avis", &vote), ("commentaire", "  ")],
        )
        .await;
    assert_eq!(empty.status(), 400);
    let done = app
        .post_form(
            "/aide/tarifs/avis",
            &[
                ("csrf", &csrf),
                ("avis", &vote),
                ("commentaire", "Il manque le prix en dollars."),
            ],
        )
        .await;
    assert_eq!(done.status(), 200);
    let rows: Vec<(bool, Option<String>)> = sqlx::query_as(
        "SELECT helpful, comment FROM guide_feedback WHERE slug = 'tarifs' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            (true, None),
            (false, Some("Il manque le prix en dollars.".to_owned()))
        ]
    );
    assert_eq!(
        app.get("/aide/tarifs/avis?utile=peut-etre").await.status(),
        400
    );
    assert_eq!(app.get("/aide/inconnu/avis?utile=oui").await.status(), 404);
}

/// Every POST route of the URL map, read from its route table so that a route added later is
/// walked too; `{slug}` becomes a real guide, `{id}` a random one.
fn post_routes() -> Vec<String> {
    use nanoclip::web::routes::{Caller, Verb, table};
    let routes: Vec<String> = table()
        .into_iter()
        .filter(|r| r.verb == Verb::Post && matches!(r.caller, Caller::Browser | Caller::Staff))
        .map(|r| {
            r.path
                .replace("{slug}", "tarifs")
                .replace("{id}", &uuid::Uuid::new_v4().to_string())
        })
        .collect();
    assert!(routes.len() >= 15, "found {routes:?}");
    println!("POST routes walked: {routes:?}");
    println!(
        "planned paths (no route yet): {:?}",
        nanoclip::web::routes::PLANNED
    );
    routes
}

#[tokio::test]
async fn every_post_route_refuses_a_request_without_a_valid_token() {
    let app = spawn_app().await;
    // A session with a real token exists, but the requests below do not carry it.
    let csrf = app.csrf_token("/contact").await;
    for path in post_routes() {
        let missing = app.post_form(&path, &[("message", "x")]).await;
        assert_eq!(missing.status(), 403, "{path} without a token");
        let body = missing.text().await.unwrap();
        assert!(body.contains("Action refusée"), "{path}: French 403 page");
        let wrong = app
            .post_form(&path, &[("csrf", "0000"), ("message", "x")])
            .await;
        assert_eq!(wrong.status(), 403, "{path} with a wrong token");
        let cross_site = app
            .client
            .post(app.url(&path))
            .header("Sec-Fetch-Site", "cross-site")
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(
            cross_site.status(),
            403,
            "{path} from another site, even with the token"
        );
        let other_origin = app
            .client
            .post(app.url(&path))
            .header("Origin", "https://evil.example")
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(other_origin.status(), 403, "{path} with a foreign Origin");
    }
}

#[tokio::test]
async fn a_token_from_another_session_is_refused() {
    let app = spawn_app().await;
    let other = spawn_app().await;
    let foreign = other.csrf_token("/contact").await;
    let _ = app.csrf_token("/contact").await;
    let response = app
        .post_form(
            "/contact",
            &event_form(&foreign, "2099-03-01", "2099-03-03"),
        )
        .await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_nul_in_a_form_is_a_400_on_every_post_route() {
    let app = spawn_app().await;
    let csrf = app.csrf_token("/contact").await;
    // The request a scanner sent to the login form: a NUL in the address, which PostgreSQL
    // refuses in text. It must be a French 400, on every POST route, not a 500.
    for path in post_routes() {
        for (field, value) in [
            ("email", "https://wapiti3.ovh//e.php\0"),
            ("message", "bonjour\0"),
            ("nom\0", "Martin"),
        ] {
            let response = app
                .post_form(
                    &path,
                    &[
                        ("csrf", csrf.as_str()),
                        (field, value),
                        ("mot_de_passe", "Letm3in_"),
                    ],
                )
                .await;
            assert_eq!(response.status(), 400, "{path} with {field:?}={value:?}");
            let body = response.text().await.unwrap();
            assert!(body.contains("lang=\"fr\""), "{path}: French error page");
        }
    }
    // Other control characters come with pasted text (a vertical tab from a slide, a form feed
    // from a PDF), like tabs and line breaks: the message is sent, not refused.
    let (status, html) = app.get_html("/contact").await;
    assert_eq!(status, 200);
    let token = attr(&html, "input[name=csrf]", "value").unwrap();
    let mut form = event_form(&token, "2099-03-01", "2099-03-03");
    form.retain(|(k, _)| *k != "message");
    form.push((
        "message",
        "Bonjour,\r\n\tnous préparons les JMJ.\u{b}Programme\u{c}Merci !",
    ));
    let sent = app.post_form("/contact", &form).await;
    let status = sent.status();
    let body = sent.text().await.unwrap();
    assert_eq!(
        status, 303,
        "pasted text with control characters is accepted: {body}"
    );
    let stored: String = sqlx::query_scalar("SELECT message FROM contact_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        stored, "Bonjour,\r\n\tnous préparons les JMJ.\nProgramme\nMerci !",
        "their line breaks kept as line breaks"
    );
}

#[tokio::test]
async fn a_nul_in_a_search_is_a_separator() {
    let app = spawn_app().await;
    let (status, html) = app
        .get_html("/aide/recherche?q=cr%C3%A9dits%00expirent")
        .await;
    assert_eq!(status, 200);
    let first = attr(&html, "main ol a, main ul a", "href").unwrap_or_default();
    assert_eq!(
        first, "/aide/credits-et-limites",
        "found like « crédits expirent »"
    );
    // Nothing but a NUL is an empty query.
    let api = app.get("/api/v1/aide/recherche?q=%00").await;
    assert_eq!(api.status(), 400);
}

#[tokio::test]
async fn ipv6_clients_of_one_64_network_share_the_contact_limit() {
    let mut config = crate::common::test_config();
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]; // the test client is the proxy
    let app = crate::common::spawn_app_with(config, None).await;
    let csrf = app.csrf_token("/contact").await;
    let send = |client: &str| {
        let request = app
            .client
            .post(app.url("/contact"))
            .header("X-Forwarded-For", client.to_owned())
            .form(&event_form(&csrf, "2099-03-01", "2099-03-03"));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // One client walks through its /64 (2^64 addresses): every address counts against one limit.
    for i in 1..=5 {
        let address = format!("2001:db8:1:2::{i}");
        assert_eq!(send(&address).await, 303, "{address}");
    }
    assert_eq!(send("2001:db8:1:2:ffff:ffff:ffff:ffff").await, 429);
    // The next /64 is another client; an IPv4 client is keyed on its full address, whether it
    // arrives as IPv4 or IPv4-mapped IPv6.
    assert_eq!(send("2001:db8:1:3::1").await, 303);
    for _ in 0..5 {
        assert_eq!(send("198.51.100.7").await, 303);
    }
    assert_eq!(send("::ffff:198.51.100.7").await, 429);
    assert_eq!(send("198.51.100.8").await, 303);
}

#[tokio::test]
async fn a_message_at_the_length_limit_in_accented_letters_is_taken() {
    let app = spawn_app().await;
    let csrf = app.csrf_token("/contact").await;
    // 5,000 characters, the form's limit: about 30 KB URL-encoded.
    let message = "é".repeat(5000);
    let mut form = event_form(&csrf, "2099-03-01", "2099-03-03");
    form.retain(|(name, _)| *name != "message");
    form.push(("message", message.as_str()));
    let response = app.post_form("/contact", &form).await;
    assert_eq!(response.status(), 303);
    let stored: String = sqlx::query_scalar("SELECT message FROM contact_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.chars().count(), 5000);
}
