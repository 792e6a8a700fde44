//! The holes found by the security review (issue 10): each test failed on the code before its fix.

use std::time::{Duration, Instant};

use crate::common::{
    Browser, TestApp, attr, select_attrs, spawn_app, spawn_app_with, test_config, text,
};

const PASSWORD: &str = "cloche verte sous la pluie";

/// Signs up `email` for `organisation` and activates it, as a reader does (e-mail, button).
pub(crate) async fn owner(app: &TestApp, browser: &Browser, organisation: &str, email: &str) {
    crate::compte::sign_up(app, browser, organisation, email).await;
}

async fn log_in_with_next(browser: &Browser, email: &str, next: &str) -> reqwest::Response {
    browser
        .submit(
            "/compte/connexion",
            "/compte/connexion",
            &[
                ("email", email),
                ("mot_de_passe", PASSWORD),
                ("suite", next),
            ],
        )
        .await
}

// ---------------------------------------------------------------- 1. open redirect

#[tokio::test]
async fn after_login_only_paths_this_portal_serves_are_followed() {
    let app = spawn_app().await;
    let browser = app.browser();
    owner(&app, &browser, "Paroisse", "redirection@p.fr").await;
    let long = format!("/aide/{}", "a".repeat(5000));
    let hostile = [
        "/\t/evil.example",
        "/\r/evil.example",
        "/\n/evil.example",
        "\\evil.example",
        "/\\/evil.example",
        "/\\evil.example",
        "//evil.example",
        "///evil.example",
        "%2F%2Fevil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "javascript:alert(1)",
        "https://evil.example/compte",
        "http:/evil.example",
        " /compte",
        "/n-existe-pas",
        "/compte/../../evil",
        long.as_str(),
    ];
    for next in hostile {
        let response = log_in_with_next(&app.browser(), "redirection@p.fr", next).await;
        assert_eq!(response.status(), 303, "{next:?}");
        assert_eq!(
            response.headers()["location"],
            "/compte",
            "{next:?} must not be followed"
        );
    }
    for next in [
        "/tableau-de-bord",
        "/aide/tarifs",
        "/simulateur?type=video&duree=10",
    ] {
        let response = log_in_with_next(&app.browser(), "redirection@p.fr", next).await;
        assert_eq!(
            response.headers()["location"],
            next,
            "a page of ours is kept"
        );
    }
}

// ---------------------------------------------------------------- 2. lock-out

fn behind_proxy() -> nanoclip::config::Config {
    let mut config = test_config();
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]; // the test client is the proxy
    config.password_checks_per_second = Some(1000.0);
    config
}

async fn login_from(
    browser: &Browser,
    client: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let token = browser.token("/compte/connexion").await;
    browser
        .client
        .post(format!("{}/compte/connexion", browser.base))
        .header("X-Forwarded-For", client)
        .form(&[
            ("csrf", token.as_str()),
            ("email", email),
            ("mot_de_passe", password),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn wrong_passwords_from_one_client_do_not_lock_the_owner_out() {
    let app = spawn_app_with(behind_proxy(), None).await;
    owner(&app, &app.browser(), "Paroisse", "cible@p.fr").await;
    let attacker = app.browser();
    for _ in 0..5 {
        let r = login_from(&attacker, "198.51.100.66", "cible@p.fr", "devine").await;
        assert_eq!(r.status(), 401);
    }
    let r = login_from(&attacker, "198.51.100.66", "cible@p.fr", "devine").await;
    assert_eq!(r.status(), 429, "the guessing client is stopped");
    // The owner, from their own connection, gets in: slowed down, not refused.
    let started = Instant::now();
    let r = login_from(&app.browser(), "203.0.113.7", "cible@p.fr", PASSWORD).await;
    assert_eq!(r.status(), 303, "the owner is not locked out");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "but checks on an attacked account are slowed down"
    );
}

#[tokio::test]
async fn a_successful_reset_clears_the_failures_of_the_account() {
    let app = spawn_app_with(behind_proxy(), None).await;
    owner(&app, &app.browser(), "Paroisse", "oublieux@p.fr").await;
    let me = app.browser();
    for _ in 0..5 {
        login_from(&me, "198.51.100.9", "oublieux@p.fr", "pas le bon").await;
    }
    assert_eq!(
        login_from(&me, "198.51.100.9", "oublieux@p.fr", PASSWORD)
            .await
            .status(),
        429
    );
    me.submit(
        "/compte/mot-de-passe-oublie",
        "/compte/mot-de-passe-oublie",
        &[("email", "oublieux@p.fr")],
    )
    .await;
    let link = app.link_in_last_email("oublieux@p.fr").await;
    let new = "orgue du dimanche matin 9";
    let token = link.split("jeton=").nth(1).unwrap().to_owned();
    let done = me
        .submit(
            &link,
            "/compte/reinitialisation",
            &[
                ("jeton", &token),
                ("mot_de_passe", new),
                ("confirmation", new),
            ],
        )
        .await;
    assert_eq!(done.status(), 303);
    let r = login_from(&me, "198.51.100.9", "oublieux@p.fr", new).await;
    assert_eq!(r.status(), 303, "the reset cleared the failures");
}

// ---------------------------------------------------------------- 3. rows for visitors

async fn session_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn anonymous_visitors_create_no_session_rows() {
    let app = spawn_app().await;
    let pages = [
        "/compte/connexion",
        "/compte/inscription",
        "/compte/mot-de-passe-oublie",
        "/contact",
    ];
    // Votes (« non » shows a comment form) are limited to 30 an hour per client.
    for _ in 0..10 {
        let response = reqwest::get(app.url("/aide/tarifs/avis?utile=non"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    for i in 0..1000 {
        // A new visitor each time (no cookies), as crawlers and passers-by are.
        let page = pages[i % pages.len()];
        let response = reqwest::get(app.url(page)).await.unwrap();
        assert_eq!(response.status(), 200, "{page}");
    }
    assert_eq!(session_rows(&app).await, 0, "no row for visitors");
    // The forms still work: a comment after a « non » vote, and a login.
    let browser = app.browser();
    let (_, html) = browser.html("/aide/tarifs/avis?utile=non").await;
    let csrf = attr(&html, "input[name=csrf]", "value").unwrap();
    let vote = attr(&html, "input[name=avis]", "value").unwrap();
    let sent = browser
        .client
        .post(format!("{}/aide/tarifs/avis", browser.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("avis", vote.as_str()),
            ("commentaire", "Plus d’exemples"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let forged = browser
        .client
        .post(format!("{}/aide/tarifs/avis", browser.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("avis", "1.00"),
            ("commentaire", "forgé"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400, "a vote reference is signed");
    assert_eq!(session_rows(&app).await, 0);
    owner(&app, &app.browser(), "Paroisse", "visiteur@p.fr").await;
    assert_eq!(
        session_rows(&app).await,
        1,
        "signing in opens the first row"
    );
}

#[tokio::test]
async fn a_token_from_before_signing_in_is_refused_once_signed_in() {
    let app = spawn_app().await;
    let browser = app.browser();
    let anonymous = browser.token("/contact").await;
    owner(&app, &browser, "Paroisse", "jeton@p.fr").await;
    let r = browser
        .client
        .post(format!("{}/compte/seuil", browser.base))
        .form(&[("csrf", anonymous.as_str()), ("seuil", "7")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = browser
        .submit("/compte", "/compte/seuil", &[("seuil", "7")])
        .await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn the_purge_jobs_remove_expired_sessions_tokens_and_rate_limit_rows() {
    use nanoclip::jobs::{Job, Outcome, run};
    let app = spawn_app().await;
    owner(&app, &app.browser(), "Paroisse", "purge@p.fr").await;
    app.browser()
        .submit(
            "/compte/mot-de-passe-oublie",
            "/compte/mot-de-passe-oublie",
            &[("email", "purge@p.fr")],
        )
        .await;
    assert!(session_rows(&app).await >= 1);
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    for job in [Job::PurgeSessions, Job::PurgeTokens, Job::PurgeRateLimits] {
        assert!(matches!(
            run(&app.pool, job, later, &Default::default())
                .await
                .unwrap(),
            Outcome::Done(_)
        ));
    }
    assert_eq!(session_rows(&app).await, 0);
    let count = |table: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table}"
            )))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(count("email_tokens").await, 0);
    assert_eq!(count("rate_limits").await, 0);
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM job_runs WHERE last_ok = $1 AND last_error IS NULL AND runs >= 1",
    )
    .bind(later)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(recorded, 3, "each run is recorded for staff");
}

#[tokio::test]
async fn a_job_runs_on_one_instance_at_a_time() {
    use nanoclip::jobs::{Job, Outcome, run};
    let app = spawn_app().await;
    let mut holder = app.pool.begin().await.unwrap();
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('job:purge-sessions'))")
            .fetch_one(&mut *holder)
            .await
            .unwrap();
    assert!(locked);
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        run(&app.pool, Job::PurgeSessions, now, &Default::default())
            .await
            .unwrap(),
        Outcome::Skipped
    );
    holder.rollback().await.unwrap();
    assert!(matches!(
        run(&app.pool, Job::PurgeSessions, now, &Default::default())
            .await
            .unwrap(),
        Outcome::Done(_)
    ));
}

// ---------------------------------------------------------------- 4. current password

#[tokio::test]
async fn current_password_guesses_are_throttled_like_logins() {
    let app = spawn_app_with(behind_proxy(), None).await;
    let browser = app.owner("eglise").await.browser;
    let guess = |form: &'static str, fields: Vec<(&'static str, String)>| {
        let browser = &browser;
        async move {
            let token = browser.token("/compte").await;
            let mut all = vec![("csrf", token)];
            all.extend(fields);
            browser
                .client
                .post(format!("{}{form}", browser.base))
                .header("X-Forwarded-For", "198.51.100.5")
                .form(&all)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut statuses = Vec::new();
    for i in 0..6 {
        let status = if i % 2 == 0 {
            guess(
                "/compte/mot-de-passe",
                vec![
                    ("actuel", format!("devine {i}")),
                    ("mot_de_passe", "un tout autre mot de passe 7".into()),
                    ("confirmation", "un tout autre mot de passe 7".into()),
                ],
            )
            .await
        } else {
            guess(
                "/compte/email",
                vec![
                    ("email", "pirate@p.fr".into()),
                    ("actuel", format!("devine {i}")),
                ],
            )
            .await
        };
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [400, 400, 400, 400, 400, 429],
        "5 guesses, then a 429"
    );
}

#[tokio::test]
async fn one_client_cannot_drain_the_password_checks_everyone_shares() {
    let mut config = behind_proxy();
    // 4 checks a second for the portal: a client's share is 1 a second, with a burst of 5.
    config.password_checks_per_second = Some(4.0);
    let app = spawn_app_with(config, None).await;
    let greedy = app.browser();
    let (mut checked, mut refused) = (0, 0);
    let started = Instant::now();
    for i in 0..15 {
        let r = login_from(&greedy, "198.51.100.77", &format!("x{i}@p.fr"), "faux").await;
        match r.status().as_u16() {
            401 => checked += 1,
            429 => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // Its share: a burst of 5, then 1 a second (each 429 is held back one second).
    let share = 5 + started.elapsed().as_secs() as usize + 1;
    assert!(refused >= 4, "the greedy client got 429s ({refused})");
    assert!(
        checked <= share,
        "{checked} checks in {:?}",
        started.elapsed()
    );
    // The shared budget refills (4 a second, burst 8): another client is served.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = login_from(&app.browser(), "203.0.113.50", "autre@p.fr", "faux").await;
    assert_eq!(r.status(), 401, "another client still gets its checks");
}

// ---------------------------------------------------------------- 5. reset requests

async fn outbox_count(app: &TestApp, to: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE to_address = $1")
        .bind(to)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn reset_requests_are_limited_per_address_and_per_client() {
    let app = spawn_app_with(behind_proxy(), None).await;
    owner(&app, &app.browser(), "Paroisse", "boite@p.fr").await;
    let before = outbox_count(&app, "boite@p.fr").await;
    let ask = |client: &'static str, email: &'static str| {
        let browser = app.browser();
        async move {
            let token = browser.token("/compte/mot-de-passe-oublie").await;
            browser
                .client
                .post(format!("{}/compte/mot-de-passe-oublie", browser.base))
                .header("X-Forwarded-For", client)
                .form(&[("csrf", token.as_str()), ("email", email)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for _ in 0..5 {
        assert_eq!(ask("198.51.100.1", "boite@p.fr").await, 303, "same answer");
    }
    assert_eq!(
        outbox_count(&app, "boite@p.fr").await - before,
        1,
        "one e-mail while the link sent is recent and valid"
    );
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(ask("198.51.100.1", "quelquun@p.fr").await);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        ask("198.51.100.2", "autre@p.fr").await,
        303,
        "another client"
    );
}

#[tokio::test]
async fn invitations_are_limited_and_owners_can_revoke_them() {
    let app = spawn_app().await;
    let browser = app.owner("eglise").await.browser;
    for _ in 0..3 {
        let r = browser
            .submit("/compte", "/compte/membres", &[("email", "invite@p.fr")])
            .await;
        assert_eq!(r.headers()["location"], "/compte?avis=invitation-envoyee");
    }
    assert_eq!(
        outbox_count(&app, "invite@p.fr").await,
        1,
        "one invitation e-mail"
    );
    let link = app.link_in_last_email("invite@p.fr").await;
    let (_, html) = browser.html("/compte").await;
    let revoke = select_attrs(&html, "form[action$='/revocation']", "action");
    assert_eq!(revoke.len(), 1, "one pending invitation, one revoke button");
    let action = revoke[0].clone();
    let r = browser.submit("/compte", &action, &[]).await;
    assert_eq!(r.headers()["location"], "/compte?avis=invitation-revoquee");
    assert_eq!(
        app.browser().get(&link).await.headers()["location"],
        "/compte/info?avis=lien-invalide",
        "a revoked invitation no longer works"
    );
    // Another organisation's owner cannot revoke it (nor learn it exists).
    let other = app.owner("eglise").await;
    let r = other.browser.submit("/compte", &action, &[]).await;
    assert_eq!(r.status(), 404);
}

// ---------------------------------------------------------------- 6. tokens and events

async fn request_reset(app: &TestApp, email: &str) -> String {
    app.browser()
        .submit(
            "/compte/mot-de-passe-oublie",
            "/compte/mot-de-passe-oublie",
            &[("email", email)],
        )
        .await;
    app.link_in_last_email(email).await
}

#[tokio::test]
async fn a_password_change_ends_pending_reset_links_and_tells_the_owner() {
    let app = spawn_app().await;
    let browser = app.browser();
    owner(&app, &browser, "Paroisse", "change@p.fr").await;
    let link = request_reset(&app, "change@p.fr").await;
    let new = "un tout autre mot de passe 7";
    let r = browser
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
    assert_eq!(r.headers()["location"], "/compte?avis=mot-de-passe-change");
    assert_eq!(
        app.browser().get(&link).await.headers()["location"],
        "/compte/info?avis=lien-invalide"
    );
    let (subject, _) = app.last_email("change@p.fr").await;
    assert!(subject.contains("mot de passe"), "{subject}");
}

async fn request_email_change(app: &TestApp, browser: &Browser, new: &str) -> String {
    let r = browser
        .submit(
            "/compte",
            "/compte/email",
            &[("email", new), ("actuel", PASSWORD)],
        )
        .await;
    assert_eq!(r.headers()["location"], "/compte?avis=email-a-confirmer");
    app.link_in_last_email(new).await
}

#[tokio::test]
async fn a_reset_or_signing_out_everywhere_ends_pending_email_changes() {
    let app = spawn_app().await;
    let browser = app.browser();
    owner(&app, &browser, "Paroisse", "a@p.fr").await;
    let change = request_email_change(&app, &browser, "pirate@p.fr").await;
    let reset = request_reset(&app, "a@p.fr").await;
    let token = reset.split("jeton=").nth(1).unwrap().to_owned();
    let new = "un tout autre mot de passe 7";
    let visitor = app.browser();
    visitor
        .submit(
            &reset,
            "/compte/reinitialisation",
            &[
                ("jeton", &token),
                ("mot_de_passe", new),
                ("confirmation", new),
            ],
        )
        .await;
    assert_eq!(
        app.browser().get(&change).await.headers()["location"],
        "/compte/info?avis=lien-invalide",
        "the e-mail change died with the reset"
    );
    // Signing out everywhere.
    let browser = app.browser();
    let r = browser
        .submit(
            "/compte/connexion",
            "/compte/connexion",
            &[("email", "a@p.fr"), ("mot_de_passe", new)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = browser
        .submit(
            "/compte",
            "/compte/email",
            &[("email", "pirate2@p.fr"), ("actuel", new)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let change = app.link_in_last_email("pirate2@p.fr").await;
    browser
        .submit("/compte", "/compte/deconnexion-partout", &[])
        .await;
    assert_eq!(
        app.browser().get(&change).await.headers()["location"],
        "/compte/info?avis=lien-invalide",
        "the e-mail change died with « se déconnecter partout »"
    );
}

#[tokio::test]
async fn an_email_change_tells_the_old_address() {
    let app = spawn_app().await;
    let browser = app.browser();
    owner(&app, &browser, "Paroisse", "vieille@p.fr").await;
    let link = request_email_change(&app, &browser, "neuve@p.fr").await;
    let (_, html) = browser.html(&link).await;
    let token = attr(&html, "input[name=jeton]", "value").unwrap();
    let r = browser
        .submit(&link, "/compte/email/confirmation", &[("jeton", &token)])
        .await;
    assert_eq!(r.headers()["location"], "/compte/info?avis=email-change");
    let (subject, body) = app.last_email("vieille@p.fr").await;
    assert!(subject.contains("adresse e-mail"), "{subject}");
    assert!(body.contains("neuve@p.fr"));
}

// ---------------------------------------------------------------- 7. no change on GET

#[tokio::test]
async fn opening_an_activation_or_confirmation_link_changes_nothing_until_the_button() {
    let app = spawn_app().await;
    let browser = app.browser();
    browser
        .submit(
            "/compte/inscription",
            "/compte/inscription",
            &[
                ("organisation", "Paroisse"),
                ("email", "scanner@p.fr"),
                ("mot_de_passe", PASSWORD),
                ("confirmation", PASSWORD),
                ("plan", "eglise"),
            ],
        )
        .await;
    let link = app.link_in_last_email("scanner@p.fr").await;
    // A mail scanner opens the link.
    let scanner = app.browser();
    let (status, html) = scanner.html(&link).await;
    assert_eq!(status, 200);
    assert!(text(&html, "main button").contains("Activer"));
    let verified: bool = sqlx::query_scalar(
        "SELECT email_verified_at IS NOT NULL FROM users WHERE email = 'scanner@p.fr'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(!verified, "opening the link activates nothing");
    let (status, _) = scanner.html("/compte").await;
    assert_ne!(status, 200, "and signs nobody in");
    let robots = app.get("/robots.txt").await.text().await.unwrap();
    assert!(robots.contains("Disallow: /aide/*/avis"), "{robots}");
}

// ---------------------------------------------------------------- 12. sent e-mails

#[tokio::test]
async fn sent_emails_lose_their_links() {
    use nanoclip::jobs::{Job, run};
    let app = spawn_app().await;
    owner(&app, &app.browser(), "Paroisse", "lien@p.fr").await;
    let link = request_reset(&app, "lien@p.fr").await;
    let token = link.split("jeton=").nth(1).unwrap().to_owned();
    // Wait for the delivery worker (files in development).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let unsent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if unsent == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "e-mails not delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let later = time::OffsetDateTime::now_utc() + time::Duration::minutes(5);
    run(&app.pool, Job::RedactSentMail, later, &Default::default())
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE body_text LIKE '%' || $1 || '%' OR body_html LIKE '%' || $1 || '%'",
    )
    .bind(&token)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "no working link left in the outbox");
    // The link itself still works for its owner.
    let (status, _) = app.browser().html(&link).await;
    assert_eq!(status, 200);
}
