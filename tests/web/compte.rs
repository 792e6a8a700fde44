//! Accounts, sessions and authorization.

use std::time::{Duration, Instant};

use crate::common::{
    Browser, TestApp, attr, select_attrs, select_texts, spawn_app, spawn_on, test_config, text,
};

const PASSWORD: &str = "cloche verte sous la pluie";

/// Signs up `email` for `organisation` and activates it (opening the link, then its button).
pub(crate) async fn sign_up(app: &TestApp, browser: &Browser, organisation: &str, email: &str) {
    let response = browser
        .submit(
            "/compte/inscription",
            "/compte/inscription",
            &[
                ("organisation", organisation),
                ("email", email),
                ("mot_de_passe", PASSWORD),
                ("confirmation", PASSWORD),
                ("plan", "eglise"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/compte/info?avis=verifiez");
    let link = app.link_in_last_email(email).await;
    assert!(link.starts_with("/compte/activation?jeton="), "{link}");
    let (status, html) = browser.html(&link).await;
    assert_eq!(status, 200, "opening the link shows a button");
    let token = attr(&html, "input[name=jeton]", "value").unwrap();
    let activated = browser
        .submit(&link, "/compte/activation", &[("jeton", &token)])
        .await;
    assert_eq!(activated.status(), 303);
    assert_eq!(
        activated.headers()["location"],
        "/compte/inscription/paiement"
    );
    // The first period is paid through the test provider: the organisation is active.
    let payment = browser
        .submit(
            "/compte/inscription/paiement",
            "/compte/inscription/paiement",
            &[],
        )
        .await;
    assert_eq!(payment.status(), 303);
    let page = payment.headers()["location"].to_str().unwrap().to_owned();
    assert!(page.starts_with("/paiement-test/"), "{page}");
    let paid = browser
        .submit(&page, &page, &[("issue", "approuver")])
        .await;
    assert_eq!(paid.status(), 303);
}

async fn log_in(browser: &Browser, email: &str, password: &str) -> reqwest::Response {
    browser
        .submit(
            "/compte/connexion",
            "/compte/connexion",
            &[("email", email), ("mot_de_passe", password)],
        )
        .await
}

async fn signed_in_as(browser: &Browser) -> Option<String> {
    let (status, html) = browser.html("/compte").await;
    (status == 200).then(|| text(&html, "#profil + p strong"))
}

/// Password managers key on `autocomplete="username"` next to `current-password`; WCAG 1.3.5 (and
/// HTML_CodeSniffer, through pa11y) wants that token on a text field, which `type="email"` is not.
/// So the login's address is a text field that asks phones for the e-mail keyboard.
#[tokio::test]
async fn the_login_address_is_a_username_field_with_the_email_keyboard() {
    let app = spawn_app().await;
    let browser = app.browser();
    let (status, html) = browser.html("/compte/connexion").await;
    assert_eq!(status, 200);
    let field = |name| attr(&html, "#champ-email", name);
    assert_eq!(field("type").as_deref(), Some("text"));
    assert_eq!(field("inputmode").as_deref(), Some("email"));
    assert_eq!(field("autocomplete").as_deref(), Some("username"));
    assert_eq!(
        attr(&html, "#champ-mot_de_passe", "autocomplete").as_deref(),
        Some("current-password")
    );
}

#[tokio::test]
async fn sign_up_activate_log_out_and_log_in_again() {
    let app = spawn_app().await;
    let browser = app.browser();
    sign_up(
        &app,
        &browser,
        "Paroisse Saint-Jean",
        "pasteur@saint-jean.fr",
    )
    .await;
    assert_eq!(
        signed_in_as(&browser).await.as_deref(),
        Some("pasteur@saint-jean.fr")
    );
    let (_, html) = browser.html("/compte").await;
    assert!(text(&html, "section[aria-labelledby=profil]").contains("Paroisse Saint-Jean"));
    let out = browser.submit("/compte", "/compte/deconnexion", &[]).await;
    assert_eq!(out.status(), 303);
    let gone = browser.get("/compte").await;
    assert_eq!(gone.status(), 303);
    assert_eq!(
        gone.headers()["location"],
        "/compte/connexion?suite=%2Fcompte"
    );
    let back = log_in(&browser, "Pasteur@Saint-Jean.fr", PASSWORD).await;
    assert_eq!(back.status(), 303);
    assert_eq!(
        signed_in_as(&browser).await.as_deref(),
        Some("pasteur@saint-jean.fr")
    );
    // The subscription started paid, on the chosen plan.
    let status: String = sqlx::query_scalar("SELECT status FROM subscriptions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "active");
}

#[tokio::test]
async fn signing_up_with_a_known_address_reveals_nothing() {
    let app = spawn_app().await;
    sign_up(&app, &app.browser(), "Paroisse A", "owner@a.fr").await;
    let response = app
        .browser()
        .submit(
            "/compte/inscription",
            "/compte/inscription",
            &[
                ("organisation", "Paroisse B"),
                ("email", "OWNER@a.fr"),
                ("mot_de_passe", PASSWORD),
                ("confirmation", PASSWORD),
                ("plan", "eglise"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/compte/info?avis=verifiez",
        "same answer as a new address"
    );
    let (subject, _) = app.last_email("OWNER@a.fr").await;
    assert_eq!(subject, "Vous avez déjà un compte NanoClip");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

#[tokio::test]
async fn a_wrong_sign_up_form_keeps_values_but_never_the_password() {
    let app = spawn_app().await;
    let browser = app.browser();
    let response = browser
        .submit(
            "/compte/inscription",
            "/compte/inscription",
            &[
                ("organisation", "Église de Lyon"),
                ("email", "pas-une-adresse"),
                ("mot_de_passe", "jesus2024!!"),
                ("confirmation", "x"),
                ("plan", "gratuit"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(!body.contains("jesus2024"), "the password is not sent back");
    let html = scraper::Html::parse_document(&body);
    assert_eq!(
        attr(&html, "#champ-organisation", "value").as_deref(),
        Some("Église de Lyon")
    );
    assert_eq!(
        attr(&html, "#champ-email", "value").as_deref(),
        Some("pas-une-adresse")
    );
    assert!(text(&html, "#erreur-email").starts_with("Indiquez une adresse e-mail valide"));
    assert!(text(&html, "#erreur-mot_de_passe").contains("trop facile à deviner"));
    assert_eq!(
        html.select(&scraper::Selector::parse("#erreurs li").unwrap())
            .count(),
        3
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_address_get_the_same_answer_and_time() {
    let app = spawn_app().await;
    sign_up(&app, &app.browser(), "Paroisse", "known@p.fr").await;
    let browser = app.browser();
    let mut wrong = Duration::ZERO;
    let mut unknown = Duration::ZERO;
    let mut bodies = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let a = log_in(&browser, "known@p.fr", &format!("mauvais mot de passe {i}")).await;
        wrong += t.elapsed();
        let t = Instant::now();
        let b = log_in(&browser, &format!("nobody{i}@p.fr"), "mauvais mot de passe").await;
        unknown += t.elapsed();
        assert_eq!(
            (a.status(), b.status()),
            (
                reqwest::StatusCode::UNAUTHORIZED,
                reqwest::StatusCode::UNAUTHORIZED
            )
        );
        let html = scraper::Html::parse_document(&a.text().await.unwrap());
        bodies.push(text(&html, "[role=alert]"));
        let html = scraper::Html::parse_document(&b.text().await.unwrap());
        bodies.push(text(&html, "[role=alert]"));
    }
    assert!(
        bodies
            .iter()
            .all(|b| b == "Adresse e-mail ou mot de passe incorrect."),
        "{bodies:?}"
    );
    let ratio = wrong.as_secs_f64() / unknown.as_secs_f64();
    assert!(
        (0.33..3.0).contains(&ratio),
        "an unknown address is hashed too: {wrong:?} vs {unknown:?}"
    );
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_across_instances() {
    let app = spawn_app().await;
    sign_up(&app, &app.browser(), "Paroisse", "cible@p.fr").await;
    // A second portal instance on the same database.
    let options = app.pool.connect_options().as_ref().clone();
    let other = spawn_on(test_config(), options, String::new(), None).await;
    for i in 0..5 {
        let instance = if i % 2 == 0 { &app } else { &other };
        assert_eq!(
            log_in(&instance.browser(), "cible@p.fr", "faux")
                .await
                .status(),
            401
        );
    }
    let blocked = log_in(&other.browser(), "cible@p.fr", PASSWORD).await;
    assert_eq!(blocked.status(), 429, "even the right password waits");
    assert!(
        blocked.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            > 0
    );
    let html = scraper::Html::parse_document(&blocked.text().await.unwrap());
    assert!(text(&html, "main").contains("Trop de tentatives, réessayez dans"));
    other.stop().await;
}

/// Failures of the previous quarter hour still count after it turns: a limit that forgot them at
/// the boundary let ten tries through in two seconds (and the test above failed whenever it
/// straddled a boundary). The sliding count itself is `domain::throttle`'s unit tests.
#[tokio::test]
async fn failed_logins_of_the_previous_window_still_count_after_it_turns() {
    let app = spawn_app().await;
    sign_up(&app, &app.browser(), "Paroisse", "bord@p.fr").await;
    let window = i64::from(nanoclip::services::accounts::LOGIN_WINDOW_SECS);
    let into_window = || {
        time::OffsetDateTime::now_utc()
            .unix_timestamp()
            .rem_euclid(window)
    };
    // In its very last seconds the previous window weighs almost nothing: start after them.
    if into_window() > window - 5 {
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    // A storm of failures on the pair and the account during the previous window.
    let storm = 5000;
    sqlx::query(
        "WITH w AS (SELECT to_timestamp(floor(extract(epoch FROM now()) / $1) * $1) AS start)
         INSERT INTO rate_limits (key, window_start, hits)
         SELECT key, w.start - make_interval(secs => $1), $2
         FROM w, unnest(ARRAY['login:pair:bord@p.fr|127.0.0.1', 'login:email:bord@p.fr']) AS key",
    )
    .bind(window as f64)
    .bind(storm)
    .execute(&app.pool)
    .await
    .unwrap();
    let blocked = log_in(&app.browser(), "bord@p.fr", PASSWORD).await;
    assert_eq!(
        blocked.status(),
        429,
        "the failures before the boundary still count"
    );
    // Blocked until enough of the previous window has slid out for one more try.
    let retry_after: i64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let max = nanoclip::services::accounts::LOGIN_FAILURES_PER_PAIR;
    let slid_out = window as f64 * (1.0 - (max - 1) as f64 / f64::from(storm));
    let expected = slid_out - into_window() as f64;
    assert!(
        (retry_after as f64 - expected).abs() <= 2.0,
        "Retry-After {retry_after} s, expected about {expected} s"
    );
}

#[tokio::test]
async fn sessions_are_shared_by_instances_and_renewed_at_login() {
    // Instances of one deployment share NANOCLIP_SESSION_KEY.
    let config = test_config();
    let app = crate::common::spawn_app_with(config.clone(), None).await;
    sign_up(&app, &app.browser(), "Paroisse", "partage@p.fr").await;
    let browser = app.browser();
    assert_eq!(
        log_in(&browser, "partage@p.fr", PASSWORD).await.status(),
        303
    );
    let before = browser.session_cookie();
    // Signing in again (a shared computer, a second tab) opens a new session.
    assert_eq!(
        log_in(&browser, "partage@p.fr", PASSWORD).await.status(),
        303
    );
    let after = browser.session_cookie();
    assert!(before.is_some());
    assert_ne!(before, after, "a new session key after login");
    let options = app.pool.connect_options().as_ref().clone();
    let other = spawn_on(config, options, String::new(), None).await;
    let response = other
        .client
        .get(other.url("/compte"))
        .header("Cookie", format!("nanoclip_session={}", after.unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "the other instance knows the session"
    );
    other.stop().await;
}

/// Submits the form of a reset `link` (whose hidden token is `token`) with `password` twice.
async fn choose_password(
    visitor: &Browser,
    link: &str,
    token: &str,
    password: &str,
) -> reqwest::Response {
    visitor
        .submit(
            link,
            "/compte/reinitialisation",
            &[
                ("jeton", token),
                ("mot_de_passe", password),
                ("confirmation", password),
            ],
        )
        .await
}

#[tokio::test]
async fn a_reset_link_works_once_within_an_hour_and_ends_every_session() {
    let app = spawn_app().await;
    let laptop = app.browser();
    sign_up(&app, &laptop, "Paroisse", "oubli@p.fr").await;
    let phone = app.browser();
    assert_eq!(log_in(&phone, "oubli@p.fr", PASSWORD).await.status(), 303);
    // Unknown and known addresses get the same answer.
    let unknown = app
        .browser()
        .submit(
            "/compte/mot-de-passe-oublie",
            "/compte/mot-de-passe-oublie",
            &[("email", "personne@p.fr")],
        )
        .await;
    let known = app
        .browser()
        .submit(
            "/compte/mot-de-passe-oublie",
            "/compte/mot-de-passe-oublie",
            &[("email", "oubli@p.fr")],
        )
        .await;
    assert_eq!(unknown.headers()["location"], known.headers()["location"]);
    let link = app.link_in_last_email("oubli@p.fr").await;
    assert!(link.starts_with("/compte/reinitialisation?jeton="));
    let visitor = app.browser();
    let (status, html) = visitor.html(&link).await;
    assert_eq!(status, 200);
    let token = attr(&html, "input[name=jeton]", "value").unwrap();
    let new = "orgue du dimanche matin 9";
    let done = choose_password(&visitor, &link, &token, new).await;
    assert_eq!(done.status(), 303);
    assert_eq!(signed_in_as(&laptop).await, None, "every session ended");
    assert_eq!(signed_in_as(&phone).await, None);
    assert_eq!(
        log_in(&app.browser(), "oubli@p.fr", new).await.status(),
        303
    );
    // Reused link.
    let again = visitor.get(&link).await;
    assert_eq!(
        again.headers()["location"],
        "/compte/info?avis=lien-invalide"
    );
    assert_eq!(
        visitor
            .get("/compte/info?avis=lien-invalide")
            .await
            .status(),
        410
    );
    // Expired link.
    app.browser()
        .submit(
            "/compte/mot-de-passe-oublie",
            "/compte/mot-de-passe-oublie",
            &[("email", "oubli@p.fr")],
        )
        .await;
    let link = app.link_in_last_email("oubli@p.fr").await;
    sqlx::query("UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE purpose = 'reset' AND used_at IS NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        app.browser().get(&link).await.headers()["location"],
        "/compte/info?avis=lien-invalide"
    );
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_only() {
    let app = spawn_app().await;
    let here = app.browser();
    sign_up(&app, &here, "Paroisse", "change@p.fr").await;
    let elsewhere = app.browser();
    log_in(&elsewhere, "change@p.fr", PASSWORD).await;
    let new = "vitrail bleu de la chapelle 7";
    let wrong = here
        .submit(
            "/compte",
            "/compte/mot-de-passe",
            &[
                ("actuel", "faux"),
                ("mot_de_passe", new),
                ("confirmation", new),
            ],
        )
        .await;
    assert_eq!(wrong.status(), 400);
    let html = scraper::Html::parse_document(&wrong.text().await.unwrap());
    assert!(text(&html, "#erreur-actuel").contains("ne correspond pas"));
    let done = here
        .submit(
            "/compte",
            "/compte/mot-de-passe",
            &[
                ("actuel", PASSWORD),
                ("mot_de_passe", new),
                ("confirmation", new),
            ],
        )
        .await;
    assert_eq!(
        done.headers()["location"],
        "/compte?avis=mot-de-passe-change"
    );
    assert!(signed_in_as(&here).await.is_some(), "this session stays");
    assert_eq!(signed_in_as(&elsewhere).await, None, "the other one ended");
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session() {
    let app = spawn_app().await;
    let a = app.browser();
    sign_up(&app, &a, "Paroisse", "partout@p.fr").await;
    let b = app.browser();
    log_in(&b, "partout@p.fr", PASSWORD).await;
    let out = a
        .submit("/compte", "/compte/deconnexion-partout", &[])
        .await;
    assert_eq!(out.status(), 303);
    assert_eq!(signed_in_as(&a).await, None);
    assert_eq!(signed_in_as(&b).await, None);
}

#[tokio::test]
async fn an_email_change_is_confirmed_from_the_new_address() {
    let app = spawn_app().await;
    let browser = app.browser();
    sign_up(&app, &browser, "Paroisse", "ancienne@p.fr").await;
    let asked = browser
        .submit(
            "/compte",
            "/compte/email",
            &[("email", "nouvelle@p.fr"), ("actuel", PASSWORD)],
        )
        .await;
    assert_eq!(
        asked.headers()["location"],
        "/compte?avis=email-a-confirmer"
    );
    assert_eq!(
        signed_in_as(&browser).await.as_deref(),
        Some("ancienne@p.fr"),
        "nothing changes before confirmation"
    );
    let link = app.link_in_last_email("nouvelle@p.fr").await;
    let (status, html) = browser.html(&link).await;
    assert_eq!(status, 200, "opening the link shows a button");
    let token = attr(&html, "input[name=jeton]", "value").unwrap();
    assert_eq!(
        browser
            .submit(&link, "/compte/email/confirmation", &[("jeton", &token)])
            .await
            .headers()["location"],
        "/compte/info?avis=email-change"
    );
    assert_eq!(
        signed_in_as(&browser).await.as_deref(),
        Some("nouvelle@p.fr")
    );
}

/// An owner invites an address that already has an account (another organisation's member):
/// an account belongs to one organisation, so the link explains it instead of a password form
/// that ends in « lien invalide »; nobody moves.
#[tokio::test]
async fn an_invitation_to_an_address_with_an_account_says_why_it_cannot_be_accepted() {
    let app = spawn_app().await;
    let (_, _) = organisation_with_member(&app, "Paroisse A", "owner@a.fr", "member@a.fr").await;
    let other = app.browser();
    sign_up(&app, &other, "Paroisse B", "owner@b.fr").await;
    let invited = other
        .submit("/compte", "/compte/membres", &[("email", "member@a.fr")])
        .await;
    assert_eq!(
        invited.headers()["location"],
        "/compte?avis=invitation-envoyee"
    );
    let link = app.link_in_last_email("member@a.fr").await;
    let browser = app.browser();
    let response = browser.get(&link).await;
    assert_eq!(
        response.headers()["location"],
        "/compte/info?avis=invitation-compte-existant"
    );
    let (_, html) = browser
        .html("/compte/info?avis=invitation-compte-existant")
        .await;
    assert!(text(&html, "main").contains("Cette adresse a déjà un compte NanoClip"));
    let token = link.split("jeton=").nth(1).unwrap().to_owned();
    let pw = "psaume vingt-trois en canon";
    let sent = browser
        .submit(
            "/compte/connexion",
            "/compte/invitation",
            &[
                ("jeton", &token),
                ("mot_de_passe", pw),
                ("confirmation", pw),
            ],
        )
        .await;
    assert_eq!(
        sent.headers()["location"],
        "/compte/info?avis=invitation-compte-existant"
    );
    let organisations: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT organisation_id) FROM users WHERE email IN ('owner@a.fr', 'member@a.fr')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(organisations, 1);
}

async fn organisation_with_member(
    app: &TestApp,
    name: &str,
    owner: &str,
    member: &str,
) -> (Browser, Browser) {
    let owner_browser = app.browser();
    sign_up(app, &owner_browser, name, owner).await;
    let invited = owner_browser
        .submit("/compte", "/compte/membres", &[("email", member)])
        .await;
    assert_eq!(
        invited.headers()["location"],
        "/compte?avis=invitation-envoyee"
    );
    let link = app.link_in_last_email(member).await;
    let member_browser = app.browser();
    let (status, html) = member_browser.html(&link).await;
    assert_eq!(status, 200);
    assert!(text(&html, "h1").contains(name));
    let token = attr(&html, "input[name=jeton]", "value").unwrap();
    let pw = "psaume vingt-trois en canon";
    let joined = member_browser
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
    assert_eq!(joined.headers()["location"], "/compte");
    (owner_browser, member_browser)
}

async fn id_of(app: &TestApp, email: &str) -> String {
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    id.to_string()
}

#[tokio::test]
async fn members_see_the_organisation_but_cannot_do_owner_actions() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let member = app.member(owner.org()).await;
    let (_, html) = member.browser.html("/compte").await;
    assert!(
        text(&html, "#membres ~ div").contains(&owner.email),
        "members see the team"
    );
    assert_eq!(
        select_texts(&html, "#membres ~ div td:first-child"),
        [owner.email.clone(), member.email.clone()],
        "the owner first"
    );
    assert!(
        select_attrs(&html, "form", "action")
            .iter()
            .all(|a| a != "/compte/membres")
    );
    let owner_id = owner.id;
    for (action, form) in [
        ("/compte/membres".to_owned(), vec![("email", "x@a.fr")]),
        ("/compte/seuil".to_owned(), vec![("seuil", "10")]),
        (format!("/compte/membres/{owner_id}/retrait"), vec![]),
        (format!("/compte/membres/{owner_id}/propriete"), vec![]),
    ] {
        assert_eq!(
            member
                .browser
                .submit("/compte", &action, &form)
                .await
                .status(),
            403,
            "{action}"
        );
    }
}

#[tokio::test]
async fn an_owner_cannot_touch_another_organisation_by_changing_an_id() {
    let app = spawn_app().await;
    let owner_a = app.owner("eglise").await;
    let member_a = app.member(owner_a.org()).await;
    let owner_b = app.owner("eglise").await;
    for action in [
        format!("/compte/membres/{}/retrait", member_a.id),
        format!("/compte/membres/{}/propriete", member_a.id),
        "/compte/membres/pas-un-id/retrait".to_owned(),
    ] {
        assert_eq!(
            owner_b
                .browser
                .submit("/compte", &action, &[])
                .await
                .status(),
            404,
            "{action}"
        );
    }
    let still_there: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE id = $1 AND role = 'member'")
            .bind(member_a.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(still_there, 1);
    let (_, html) = owner_b.browser.html("/compte").await;
    let page = text(&html, "main");
    assert!(
        !page.contains(&owner_a.email) && !page.contains(&member_a.email),
        "nothing of organisation A shows"
    );
}

#[tokio::test]
async fn an_unknown_role_in_the_database_fails_closed() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    assert_eq!(owner.browser.get("/compte").await.status(), 200);
    // Only a broken migration or a hand edit could do this: the column's CHECK forbids it.
    sqlx::query("ALTER TABLE users DROP CONSTRAINT users_role_check")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1")
        .bind(owner.id)
        .execute(&app.pool)
        .await
        .unwrap();
    // A hand edit announces nothing: the read cache would keep the row up to `MAX_AGE`.
    app.caches.reset();
    // Not a member by default: the request fails (500, logged) rather than going through.
    let response = owner.browser.get("/compte").await;
    assert_eq!(response.status(), 500);
    let html = scraper::Html::parse_document(&response.text().await.unwrap());
    assert!(!text(&html, "main").contains(&owner.email));
    assert_eq!(owner.browser.get("/admin").await.status(), 500);
    let again = app.browser();
    let login = again
        .submit(
            "/compte/connexion",
            "/compte/connexion",
            &[("email", &owner.email), ("mot_de_passe", &owner.password)],
        )
        .await;
    assert_eq!(login.status(), 500, "nor can it sign in");
}

#[tokio::test]
async fn an_owner_removes_a_member_and_hands_ownership_over() {
    let app = spawn_app().await;
    let (owner, member) =
        organisation_with_member(&app, "Paroisse A", "owner@a.fr", "member@a.fr").await;
    let (_, second) =
        organisation_with_member(&app, "Paroisse A2", "owner2@a.fr", "second@a.fr").await;
    drop(second);
    let member_id = id_of(&app, "member@a.fr").await;
    // The button asks first, saying what the owner gives up; nothing changes until confirmed.
    let asked = owner
        .submit(
            "/compte",
            &format!("/compte/membres/{member_id}/propriete"),
            &[],
        )
        .await;
    assert_eq!(asked.status(), 200);
    let page = scraper::Html::parse_document(&asked.text().await.unwrap());
    assert_eq!(
        text(&page, "h1"),
        "Transmettre la propriété à member@a.fr\u{202f}?"
    );
    assert!(text(&page, "#consequences").contains("Vous deviendrez membre"));
    assert_eq!(
        attr(&page, "form input[name=confirmer]", "value").as_deref(),
        Some("oui")
    );
    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE email = 'owner@a.fr'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(role, "owner");
    let handed = owner
        .submit(
            "/compte",
            &format!("/compte/membres/{member_id}/propriete"),
            &[("confirmer", "oui")],
        )
        .await;
    assert_eq!(
        handed.headers()["location"],
        "/compte?avis=propriete-transferee"
    );
    let roles: Vec<(String, String)> = sqlx::query_as(
        "SELECT email, role FROM users WHERE email IN ('owner@a.fr', 'member@a.fr') ORDER BY email",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        roles,
        [
            ("member@a.fr".into(), "owner".into()),
            ("owner@a.fr".into(), "member".into())
        ]
    );
    let former_owner = id_of(&app, "owner@a.fr").await;
    let asked = member
        .submit(
            "/compte",
            &format!("/compte/membres/{former_owner}/retrait"),
            &[],
        )
        .await;
    assert_eq!(asked.status(), 200);
    assert_eq!(signed_in_as(&owner).await.as_deref(), Some("owner@a.fr"));
    let removed = member
        .submit(
            "/compte",
            &format!("/compte/membres/{former_owner}/retrait"),
            &[("confirmer", "oui")],
        )
        .await;
    assert_eq!(removed.headers()["location"], "/compte?avis=membre-retire");
    assert_eq!(
        signed_in_as(&owner).await,
        None,
        "a removed member is signed out"
    );
}

#[tokio::test]
async fn only_staff_reach_the_back_office() {
    let app = spawn_app().await;
    let anonymous = app.browser().get("/admin").await;
    assert_eq!(anonymous.status(), 303);
    let owner = app.owner("eglise").await;
    assert_eq!(owner.browser.get("/admin").await.status(), 403);
    let member = app.member(owner.org()).await;
    assert_eq!(member.browser.get("/admin").await.status(), 403);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nanoclip"))
        .args(["create-staff", "--email", "equipe@nanoclip.fr"])
        .env("DATABASE_URL", database_url(&app))
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once): "))
        .unwrap()
        .to_owned();
    let staff = app.browser();
    assert_eq!(
        log_in(&staff, "equipe@nanoclip.fr", &password)
            .await
            .status(),
        303
    );
    // Not in before the second factor, set up from the link the command printed.
    assert_eq!(staff.get("/admin").await.status(), 303);
    let link = stdout
        .lines()
        .find_map(|l| l.strip_prefix("second factor link (valid 72 hours, single use): "))
        .unwrap();
    let path = &link[link.find("/compte/").unwrap()..];
    let (_, page) = staff.html(path).await;
    let key = text(&page, "#cle").replace(' ', "");
    let token = crate::common::attr(&page, "input[name=jeton]", "value").unwrap();
    let code = nanoclip::services::second_factor::code_at(&key, app.clock.now()).unwrap();
    let enrolled = staff
        .submit(
            path,
            "/compte/second-facteur/inscription",
            &[
                ("jeton", &token),
                ("mot_de_passe", &password),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(enrolled.status(), 200);
    let (status, html) = staff.html("/admin").await;
    assert_eq!(status, 200);
    assert!(text(&html, "#organisations ~ div").contains("Paroisse"));
    // The fixture's staff too.
    let (status, _) = app.staff().await.browser.html("/admin").await;
    assert_eq!(status, 200);
}

fn database_url(app: &TestApp) -> String {
    app.database_url()
}

#[test]
fn seed_demo_prints_accounts_and_is_refused_in_production() {
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_nanoclip"))
        .arg("seed-demo")
        .env("NANOCLIP_ENV", "production")
        .env("DATABASE_URL", "postgres://x@localhost/x")
        .env("NANOCLIP_PUBLIC_URL", "https://aide.nanoclip.fr")
        .env("NANOCLIP_SESSION_KEY", "ab".repeat(64))
        .env("NANOCLIP_SMTP_URL", "smtps://u:p@h")
        .env("NANOCLIP_ENGINE", "external")
        .env(
            "NANOCLIP_ENGINE_TOKEN",
            "engine-token-value-0123456789abcdef",
        )
        .env("NANOCLIP_PAYMENTS", "stripe")
        .env(
            "NANOCLIP_STRIPE_SECRET_KEY",
            "sk_live_0123456789abcdefghijklmn",
        )
        .env(
            "NANOCLIP_WEBHOOK_SECRET",
            "whsec_0123456789abcdefghijklmnopqrstuv",
        )
        .env("NANOCLIP_SELLER_NAME", "NanoClip SAS")
        .env("NANOCLIP_SELLER_ADDRESS", "12 rue de la Paix, 75002 Paris")
        .env("NANOCLIP_SELLER_SIREN", "912 345 678")
        .env("NANOCLIP_SELLER_VAT", "FR12912345678")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("refused when NANOCLIP_ENV=production")
    );
}

/// A command whose reader has gone (`nanoclip seed-demo | head -1`, `nanoclip check-ledger |
/// head`) stops writing and keeps its exit status, instead of panicking on the closed pipe.
#[tokio::test]
async fn a_command_whose_reader_has_gone_ends_quietly_with_its_own_status() {
    let app = spawn_app().await;
    for args in [&["seed-demo"][..], &["check-ledger"]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nanoclip"))
            .args(args)
            .env("DATABASE_URL", database_url(&app))
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes before the first line
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            output.status.success(),
            "{args:?}: {:?}: {stderr}",
            output.status
        );
    }
}

#[tokio::test]
async fn seed_demo_creates_an_owner_and_a_member_on_each_plan() {
    let app = spawn_app().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nanoclip"))
        .arg("seed-demo")
        .env("DATABASE_URL", database_url(&app))
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("reseau owner proprietaire.reseau@demo.nanoclip.fr / "))
        .unwrap();
    let password = line.rsplit(" / ").next().unwrap();
    let browser = app.browser();
    // Anonymous visitors get the page of the URL (and it is kept for the next one)...
    let (_, anonymous) = browser
        .html("/simulateur?type=image&resolution=4k&plan=eglise")
        .await;
    assert!(text(&anonymous, "main").contains("La 4K est réservée au Plan Réseau"));
    assert_eq!(
        log_in(&browser, "proprietaire.reseau@demo.nanoclip.fr", password)
            .await
            .status(),
        303
    );
    // Signed in, the simulator uses the organisation's plan whatever the URL says.
    let (_, html) = browser
        .html("/simulateur?type=image&resolution=4k&plan=eglise")
        .await;
    assert_eq!(
        text(&html, "[data-testid=unitaire]"),
        "2 crédits",
        "not the page kept"
    );
    assert!(text(&html, "main form").contains("Votre plan\u{202f}: Plan Réseau"));
    // ... and the same question again, anonymous, is answered the same way as the first time.
    let (_, again) = app
        .browser()
        .html("/simulateur?type=image&resolution=4k&plan=eglise")
        .await;
    assert_eq!(again.html(), anonymous.html());
}

#[tokio::test]
async fn production_cookies_are_secure_and_host_prefixed() {
    let mut config = test_config();
    config.environment = nanoclip::config::Environment::Production;
    let app = crate::common::spawn_app_with(config, None).await;
    let hasher = nanoclip::services::passwords::Hasher::new().unwrap();
    nanoclip::services::accounts::create_account(
        &app.pool,
        &hasher,
        None,
        "equipe@nanoclip.fr",
        PASSWORD,
        nanoclip::domain::account::Role::Staff,
    )
    .await
    .unwrap();
    // The CSRF cookie of a visitor.
    let response = app.get("/compte/connexion").await;
    let csrf_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csrf_cookie.starts_with("__Host-csrf="), "{csrf_cookie}");
    for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(csrf_cookie.contains(flag), "{flag} in {csrf_cookie}");
    }
    assert!(!csrf_cookie.contains("Domain="));
    let html = scraper::Html::parse_document(&response.text().await.unwrap());
    let token = attr(&html, "input[name=csrf]", "value").unwrap();
    let nonce = csrf_cookie.split(';').next().unwrap().to_owned();
    // The session cookie, at login (the client does not send Secure cookies over http: by hand).
    let response = app
        .client
        .post(app.url("/compte/connexion"))
        .header("Cookie", nonce)
        .form(&[
            ("csrf", token.as_str()),
            ("email", "equipe@nanoclip.fr"),
            ("mot_de_passe", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-session="), "{cookie}");
    for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Domain="));
}

#[tokio::test]
async fn a_hash_with_old_parameters_is_upgraded_at_login() {
    use argon2::password_hash::PasswordHasher;
    let app = spawn_app().await;
    sign_up(&app, &app.browser(), "Paroisse", "ancien@p.fr").await;
    let old = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(8 * 1024, 1, 1, None).unwrap(),
    );
    let hash = old.hash_password(PASSWORD.as_bytes()).unwrap().to_string();
    sqlx::query("UPDATE users SET password_hash = $1")
        .bind(&hash)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        log_in(&app.browser(), "ancien@p.fr", PASSWORD)
            .await
            .status(),
        303
    );
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.contains("m=19456,t=2,p=1"), "{stored}");
}

/// Moves a session's clock back, as if time had passed.
async fn age_session(app: &TestApp, field: &str, seconds: i64) {
    sqlx::query(
        "UPDATE sessions SET state = jsonb_set(state, ARRAY[$1], to_jsonb((extract(epoch FROM now())::bigint - $2)::text))
         WHERE state ? 'uid'",
    )
    .bind(field)
    .bind(seconds)
    .execute(&app.pool)
    .await
    .unwrap();
    // Real hours would have outlived the read cache's 30 s; an edit is not announced.
    app.caches.reset();
}

#[tokio::test]
async fn sessions_end_after_idle_and_absolute_timeouts() {
    let app = spawn_app().await;
    let browser = app.browser();
    sign_up(&app, &browser, "Paroisse", "temps@p.fr").await;
    age_session(&app, "seen_at", 7 * 3600).await;
    assert!(
        signed_in_as(&browser).await.is_some(),
        "7 hours idle is fine"
    );
    age_session(&app, "seen_at", 9 * 3600).await;
    assert_eq!(signed_in_as(&browser).await, None, "9 hours idle ends it");
    log_in(&browser, "temps@p.fr", PASSWORD).await;
    age_session(&app, "auth_at", 8 * 24 * 3600).await;
    assert_eq!(
        signed_in_as(&browser).await,
        None,
        "8 days after login ends it, even when active"
    );
}

#[tokio::test]
async fn e_mails_leave_through_the_outbox_as_files_in_development() {
    let dir = std::env::temp_dir().join(format!("nanoclip-mail-{}", uuid::Uuid::new_v4().simple()));
    let mut config = test_config();
    config.data_dir = dir.clone();
    let app = crate::common::spawn_app_with(config, None).await;
    sign_up(&app, &app.browser(), "Paroisse", "courrier@p.fr").await;
    let mut sent = None;
    for _ in 0..50 {
        sent = sqlx::query_scalar::<_, Option<time::OffsetDateTime>>(
            "SELECT sent_at FROM outbox WHERE to_address = 'courrier@p.fr'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if sent.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(sent.is_some(), "delivered by the worker");
    let files: Vec<_> = std::fs::read_dir(dir.join("mail"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(eml.contains("To: courrier@p.fr"), "{eml}");
    assert!(eml.contains("multipart/alternative"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn while_password_checks_are_saturated_password_forms_get_a_429_before_anything_else() {
    let mut config = test_config();
    config.password_checks_per_second = Some(0.1); // a burst of one, then one per 10 s
    let app = crate::common::spawn_app_with(config, None).await;
    let browser = app.browser();
    let first = log_in(&browser, "personne@exemple.fr", "pas le bon mot de passe").await;
    assert_eq!(first.status(), 401, "the one check of the budget");
    // Now saturated: each password form is refused before its session, CSRF token or body are
    // looked at (a 429, where a request without token would otherwise get a 403), after about
    // a second, with the French page. An encoded path is the same form to the router.
    let storm = reqwest::Client::new();
    let forms = [
        "/compte/connexion",
        "/compte/inscription",
        "/compte/reinitialisation",
        "/compte/invitation",
        "/compte/mot-de-passe",
        "/compte/email",
        "/compte/connexi%6Fn",
    ];
    let refusals = forms.iter().map(|path| {
        let storm = storm.clone();
        let url = app.url(path);
        async move {
            let sent = Instant::now();
            let response = storm
                .post(url)
                .form(&[("email", "x@exemple.fr"), ("mot_de_passe", "y")])
                .send()
                .await
                .unwrap();
            (path, sent.elapsed(), response)
        }
    });
    for (path, waited, response) in futures_util::future::join_all(refusals).await {
        assert_eq!(response.status(), 429, "{path}");
        assert!(
            waited >= Duration::from_millis(900),
            "{path}: a refused attempt waits about a second, not {waited:?}"
        );
        assert_eq!(response.headers()["retry-after"], "5");
        assert!(response.headers().contains_key("content-security-policy"));
        let body = response.text().await.unwrap();
        assert!(
            body.contains("Trop de tentatives, réessayez dans quelques secondes"),
            "{path}: {body}"
        );
    }
    // Everything else goes on: the login page itself, guides, and forms that check no password.
    assert_eq!(browser.get("/compte/connexion").await.status(), 200);
    assert_eq!(
        storm
            .get(app.url("/aide/tarifs"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let contact = storm
        .post(app.url("/contact"))
        .form(&[("message", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(contact.status(), 403, "the usual CSRF refusal");
}

#[tokio::test]
async fn without_throttling_failed_logins_are_not_counted() {
    let mut config = test_config();
    config.login_throttle = false; // benchmarks only; refused in production
    let app = crate::common::spawn_app_with(config, None).await;
    let browser = app.browser();
    for _ in 0..3 {
        let response = log_in(&browser, "personne@exemple.fr", "pas le bon mot de passe").await;
        assert_eq!(response.status(), 401);
    }
    let counted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM rate_limits WHERE key LIKE 'login:%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(counted, 0, "a benchmark's storm leaves no lock-out behind");
}

#[tokio::test]
async fn made_up_reset_and_invitation_links_cost_no_password_check() {
    let mut config = test_config();
    config.password_checks_per_second = Some(0.1); // one check, then one per 10 s
    let app = crate::common::spawn_app_with(config, None).await;
    let browser = app.browser();
    for _ in 0..3 {
        for (page, field) in [
            ("/compte/mot-de-passe-oublie", "/compte/reinitialisation"),
            ("/compte/connexion", "/compte/invitation"),
        ] {
            let response = browser
                .submit(
                    page,
                    field,
                    &[
                        ("jeton", "invente"),
                        ("mot_de_passe", PASSWORD),
                        ("confirmation", PASSWORD),
                    ],
                )
                .await;
            assert_ne!(
                response.status(),
                429,
                "{field}: no hash for a made-up link"
            );
            assert!(response.status().is_client_error() || response.status().is_redirection());
        }
    }
    // The budget is intact: a login is still checked (401, not 429).
    let login = log_in(&browser, "personne@exemple.fr", "pas le bon mot de passe").await;
    assert_eq!(login.status(), 401);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_login_limit() {
    let mut config = test_config();
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]; // the test client is the proxy
    config.password_checks_per_second = Some(1000.0);
    let app = crate::common::spawn_app_with(config, None).await;
    let attempt = |client: &'static str, email: String| {
        let browser = app.browser();
        async move {
            let token = browser.token("/compte/connexion").await;
            browser
                .client
                .post(format!("{}/compte/connexion", browser.base))
                .header("X-Forwarded-For", format!("6.6.6.6, {client}"))
                .form(&[
                    ("csrf", token.as_str()),
                    ("email", email.as_str()),
                    ("mot_de_passe", "faux"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // 30 failures from one client, each on another account (so the per-account limit is not it).
    let limit = nanoclip::services::accounts::LOGIN_FAILURES_PER_CLIENT;
    for i in 0..limit {
        assert_eq!(
            attempt("198.51.100.1", format!("a{i}@exemple.fr")).await,
            401
        );
    }
    assert_eq!(
        attempt("198.51.100.1", "encore@exemple.fr".into()).await,
        429,
        "that client is throttled"
    );
    // Another client behind the same proxy is not; the forged left-most entry (6.6.6.6, the
    // same in both) changed nothing.
    assert_eq!(
        attempt("198.51.100.2", "autre@exemple.fr".into()).await,
        401
    );
}

/// The form came back (400) with sign-up's message about personal words, without the password.
async fn refused_as_personal(response: reqwest::Response, refused: &str) -> scraper::Html {
    assert_eq!(response.status(), 400, "{refused}");
    let body = response.text().await.unwrap();
    assert!(!body.contains(refused), "a password is never sent back");
    let html = scraper::Html::parse_document(&body);
    let message = text(&html, "#erreur-mot_de_passe");
    assert!(
        message.contains("reprend le nom de votre organisation ou votre adresse"),
        "{refused}: {message}"
    );
    html
}

#[tokio::test]
async fn a_password_change_refuses_the_organisation_name() {
    let app = spawn_app().await;
    let browser = app.browser();
    sign_up(&app, &browser, "Tournesol Ardent Vivant", "quentin@p.fr").await;
    for refused in ["TournesolArdentVivant!", "Tournesol Ardent Vivant 7"] {
        let response = browser
            .submit(
                "/compte",
                "/compte/mot-de-passe",
                &[
                    ("actuel", PASSWORD),
                    ("mot_de_passe", refused),
                    ("confirmation", refused),
                ],
            )
            .await;
        refused_as_personal(response, refused).await;
    }
    assert_eq!(
        log_in(&app.browser(), "quentin@p.fr", PASSWORD)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn a_reset_refuses_the_organisation_name_and_the_address() {
    let app = spawn_app().await;
    let browser = app.browser();
    sign_up(
        &app,
        &browser,
        "Tournesol Ardent Vivant",
        "gedeon.vaxmoor@p.fr",
    )
    .await;
    app.browser()
        .submit(
            "/compte/mot-de-passe-oublie",
            "/compte/mot-de-passe-oublie",
            &[("email", "gedeon.vaxmoor@p.fr")],
        )
        .await;
    let link = app.link_in_last_email("gedeon.vaxmoor@p.fr").await;
    let visitor = app.browser();
    let (_, html) = visitor.html(&link).await;
    let token = attr(&html, "input[name=jeton]", "value").unwrap();
    for refused in ["TournesolArdentVivant!", "Gedeon Vaxmoor 2024"] {
        let response = choose_password(&visitor, &link, &token, refused).await;
        let html = refused_as_personal(response, refused).await;
        // The form keeps its link: the next try needs no new e-mail.
        assert_eq!(
            attr(&html, "input[name=jeton]", "value"),
            Some(token.clone())
        );
    }
    let new = "orgue du dimanche matin 9";
    let done = choose_password(&visitor, &link, &token, new).await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        log_in(&app.browser(), "gedeon.vaxmoor@p.fr", new)
            .await
            .status(),
        303
    );
}

/// Reads the portal's stderr until it says `needle` (or the process ends).
fn read_until(lines: &std::sync::mpsc::Receiver<String>, needle: &str, log: &mut String) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
                if line.contains(needle) {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

#[tokio::test]
async fn request_logs_hold_neither_the_query_string_nor_a_forged_client_address() {
    use std::io::BufRead;
    let app = spawn_app().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut portal = std::process::Command::new(env!("CARGO_BIN_EXE_nanoclip"))
        .arg("serve")
        .env("DATABASE_URL", database_url(&app))
        .env("NANOCLIP_BIND", format!("127.0.0.1:{port}"))
        .env("NANOCLIP_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        // A load balancer that is not the test client: the client's X-Forwarded-For is not believed.
        .env("NANOCLIP_TRUSTED_PROXIES", "10.9.9.9")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = portal.stderr.take().unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    assert!(read_until(&lines, "\"ready\"", &mut log), "{log}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/compte/reinitialisation?jeton=SECRET");
    let shown = client
        .get(&url)
        .header("X-Forwarded-For", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), 303);
    // A refused cross-site form is logged, within the request's span.
    let refused = client
        .post(&url)
        .header("X-Forwarded-For", "6.6.6.6")
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("mot_de_passe", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let logged = read_until(&lines, "cross-site request refused", &mut log);
    // SAFETY: a signal to the child this test started; SIGTERM lets it stop gracefully.
    unsafe { libc::kill(portal.id() as i32, libc::SIGTERM) };
    let _ = portal.wait();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(logged, "{log}");
    assert!(
        !log.contains("SECRET"),
        "the link's token is logged:\n{log}"
    );
    assert!(
        !log.contains("6.6.6.6"),
        "a forged address is logged:\n{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("cross-site request refused"))
        .unwrap();
    assert!(line.contains("/compte/reinitialisation"), "{line}");
    assert!(line.contains("127.0.0.1"), "{line}");
}

#[tokio::test]
async fn moving_the_clock_ends_an_idle_session_without_sleeping() {
    let app = spawn_app().await;
    let browser = app.browser();
    sign_up(&app, &browser, "Paroisse", "horloge@p.fr").await;
    assert!(signed_in_as(&browser).await.is_some());
    app.clock.advance(time::Duration::hours(7));
    assert!(
        signed_in_as(&browser).await.is_some(),
        "7 h idle: still there"
    );
    app.clock
        .advance(time::Duration::hours(8) + time::Duration::minutes(1));
    assert_eq!(signed_in_as(&browser).await, None, "8 h idle: signed out");
}

#[tokio::test]
async fn links_expire_with_the_portals_clock() {
    let app = spawn_app().await;
    let browser = app.browser();
    sign_up(&app, &browser, "Paroisse", "expire@p.fr").await;
    app.browser()
        .submit(
            "/compte/mot-de-passe-oublie",
            "/compte/mot-de-passe-oublie",
            &[("email", "expire@p.fr")],
        )
        .await;
    let link = app.link_in_last_email("expire@p.fr").await;
    app.clock.advance(time::Duration::minutes(59));
    assert_eq!(
        app.browser().get(&link).await.status(),
        200,
        "59 minutes later"
    );
    app.clock.advance(time::Duration::minutes(2));
    assert_eq!(
        app.browser().get(&link).await.headers()["location"],
        "/compte/info?avis=lien-invalide",
        "an hour later"
    );
}

/// The low-balance threshold is typed as people type it (« 20 crédits », « 1 000 »), which the
/// form used to refuse; a word is refused with the value kept.
#[tokio::test]
async fn the_threshold_is_read_as_people_type_it() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let threshold = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT low_balance_threshold FROM organisations WHERE id = $1",
        )
        .bind(owner.org())
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    for (typed, read) in [("20 crédits", 20), ("1 000", 1000), (" 7 ", 7)] {
        let response = owner
            .browser
            .submit("/compte", "/compte/seuil", &[("seuil", typed)])
            .await;
        assert_eq!(response.status(), 303, "{typed}");
        assert_eq!(threshold().await, read, "{typed}");
    }
    let response = owner
        .browser
        .submit("/compte", "/compte/seuil", &[("seuil", "vingt")])
        .await;
    assert_eq!(response.status(), 400);
    let html = scraper::Html::parse_document(&response.text().await.unwrap());
    assert_eq!(
        attr(&html, "#champ-seuil", "value").as_deref(),
        Some("vingt")
    );
    assert_eq!(threshold().await, 7);
}
