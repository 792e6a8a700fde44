//! The read cache (`src/cache.rs`) with two instances of the portal on one database: what one
//! instance keeps in memory, a write through the other makes it forget, within moments and
//! long before the cache's 30 seconds.

use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use crate::common::{
    DbProxy, TestApp, fresh_database, spawn_app_with, spawn_on, test_config, text,
};

/// Two instances on one database, with the same session key (a cookie works on both, as
/// behind a load balancer), both listening for the other's changes.
async fn two_instances() -> (TestApp, TestApp) {
    let mut config = test_config();
    config.session_key = vec![7; 64];
    let first = spawn_app_with(config.clone(), None).await;
    let options = first.pool.connect_options().as_ref().clone();
    // An empty name: the second instance does not drop the first one's database.
    let second = spawn_on(config, options, String::new(), None).await;
    listening(&first).await;
    listening(&second).await;
    (first, second)
}

/// Waits (at most 10 s) until `app` listens for the other instances' changes.
async fn listening(app: &TestApp) {
    let start = Instant::now();
    while !app.caches.is_listening() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the instance listens"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The dashboard as `app` answers it to the session `cookie`: status and body, no redirect
/// followed.
async fn dashboard(app: &TestApp, cookie: &str) -> (u16, String) {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/tableau-de-bord", app.address))
        .header("Cookie", format!("nanoclip_session={cookie}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Asks the dashboard with the session `cookie` until `done` holds (at most 3 s): how long it
/// took, or the last answer.
async fn until(
    app: &TestApp,
    cookie: &str,
    done: impl Fn(u16, &str) -> bool,
) -> Result<Duration, (u16, String)> {
    within(Duration::from_secs(3), app, cookie, done).await
}

async fn within(
    limit: Duration,
    app: &TestApp,
    cookie: &str,
    done: impl Fn(u16, &str) -> bool,
) -> Result<Duration, (u16, String)> {
    let start = Instant::now();
    loop {
        let (status, body) = dashboard(app, cookie).await;
        if done(status, &body) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            return Err((status, body));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The session `cookie` is refused by `app` (a redirect to the login form) within a second;
/// `who` names it in the failure.
async fn refused_within_a_second(app: &TestApp, cookie: &str, who: &str) {
    let refused = until(app, cookie, |s, _| s == 303)
        .await
        .unwrap_or_else(|(s, _)| panic!("{who} still answers {s}"));
    assert!(
        refused < Duration::from_secs(1),
        "refused after {refused:?}"
    );
}

fn available(body: &str) -> String {
    text(&scraper::Html::parse_document(body), "#disponible")
}

#[tokio::test]
async fn a_dashboard_kept_by_one_instance_shows_a_launch_made_through_the_other() {
    let (first, second) = two_instances().await;
    let owner = first.owner("reseau").await;
    let cookie = owner.browser.session_cookie().expect("signed in");
    let (_, key) = nanoclip::services::api_keys::create(
        &first.pool,
        owner.org(),
        true,
        "Tests",
        "cli",
        None,
        first.clock.now(),
    )
    .await
    .unwrap();
    let before = until(&second, &cookie, |s, _| s == 200)
        .await
        .unwrap_or_else(|(s, b)| panic!("the dashboard answers {s}: {b}"));
    assert!(before < Duration::from_secs(1));
    let balance = available(&dashboard(&second, &cookie).await.1);
    // Kept: a write that no code path announces (an operator's SQL) is not seen at once.
    sqlx::query("UPDATE organisations SET name = 'Renommée en SQL' WHERE id = $1")
        .bind(owner.org())
        .execute(&first.pool)
        .await
        .unwrap();
    let kept = within(Duration::from_millis(500), &second, &cookie, |_, body| {
        body.contains("Renommée en SQL")
    })
    .await;
    assert!(
        kept.is_err(),
        "the second instance kept the dashboard it read"
    );
    // A launch through the first instance's API: the second forgets the organisation.
    let launched = reqwest::Client::new()
        .post(format!("{}/api/v1/generations", first.address))
        .bearer_auth(&key)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&json!({"type": "image"}))
        .send()
        .await
        .unwrap();
    assert_eq!(launched.status().as_u16(), 201);
    let seen = until(&second, &cookie, |_, body| {
        body.contains("Renommée en SQL") && available(body) != balance
    })
    .await
    .unwrap_or_else(|(s, b)| panic!("still {s} with {} available", available(&b)));
    assert!(seen < Duration::from_secs(1), "seen after {seen:?}");
}

#[tokio::test]
async fn a_session_signed_out_on_one_instance_is_refused_at_once_by_the_other() {
    let (first, second) = two_instances().await;
    let owner = first.owner("eglise").await;
    let cookie = owner.browser.session_cookie().expect("signed in");
    // The second instance reads the session, and keeps it.
    for _ in 0..2 {
        until(&second, &cookie, |s, _| s == 200)
            .await
            .unwrap_or_else(|(s, b)| panic!("the dashboard answers {s}: {b}"));
    }
    let out = owner
        .browser
        .submit("/compte", "/compte/deconnexion", &[])
        .await;
    assert_eq!(out.status().as_u16(), 303);
    refused_within_a_second(&second, &cookie, "the signed-out session").await;
}

#[tokio::test]
async fn a_password_changed_on_one_instance_ends_the_sessions_kept_by_the_other() {
    let (first, second) = two_instances().await;
    let owner = first.owner("eglise").await;
    // Another session of the same user, read and kept by the second instance.
    let elsewhere = second.sign_in_again(&owner).await;
    let cookie = elsewhere.session_cookie().expect("signed in");
    until(&second, &cookie, |s, _| s == 200)
        .await
        .unwrap_or_else(|(s, b)| panic!("the dashboard answers {s}: {b}"));
    let out = owner
        .browser
        .submit("/compte", "/compte/deconnexion-partout", &[])
        .await;
    assert_eq!(out.status().as_u16(), 303);
    refused_within_a_second(&second, &cookie, "the other session").await;
}

/// While the connection it listens on is down, an instance may miss another's announcements:
/// once it has noticed the loss and is back, nothing kept from before is served. Here the database goes down and comes
/// back; a change made meanwhile, which nobody announced, shows at the first page after.
#[tokio::test]
async fn after_its_listening_connection_was_lost_an_instance_serves_nothing_kept_from_before() {
    let (database, direct) = fresh_database().await;
    let proxy = DbProxy::start(&direct).await;
    let app = spawn_on(test_config(), proxy.options(&direct), database, None).await;
    listening(&app).await;
    let owner = app.owner("eglise").await;
    let cookie = owner.browser.session_cookie().expect("signed in");
    until(&app, &cookie, |s, _| s == 200)
        .await
        .unwrap_or_else(|(s, b)| panic!("the dashboard answers {s}: {b}"));
    // Kept: an unannounced change is not seen.
    let rename = "UPDATE organisations SET name = $2 WHERE id = $1";
    let direct_pool = sqlx::PgPool::connect_with(direct.clone()).await.unwrap();
    sqlx::query(rename)
        .bind(owner.org())
        .bind("Avant la panne")
        .execute(&direct_pool)
        .await
        .unwrap();
    let kept = within(Duration::from_millis(300), &app, &cookie, |_, body| {
        body.contains("Avant la panne")
    })
    .await;
    assert!(kept.is_err(), "the dashboard was kept");
    let losses = app.caches.losses();
    proxy.cut();
    sqlx::query(rename)
        .bind(owner.org())
        .bind("Pendant la panne")
        .execute(&direct_pool)
        .await
        .unwrap();
    proxy.restore();
    // Once the instance has noticed that its connection was lost (until then it cannot know
    // that it missed anything), the first dashboard it answers is read afresh.
    let start = std::time::Instant::now();
    while app.caches.losses() == losses {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the instance notices the lost connection"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let back = within(Duration::from_secs(20), &app, &cookie, |s, _| s == 200)
        .await
        .unwrap_or_else(|(s, _)| panic!("the dashboard answers {s} after the outage"));
    assert!(back < Duration::from_secs(20));
    // Listening again: from here entries are read and kept again.
    listening(&app).await;
    let (_, body) = dashboard(&app, &cookie).await;
    assert!(
        body.contains("Pendant la panne"),
        "a dashboard kept from before the outage"
    );
    direct_pool.close().await;
}

/// `GET /api/v1/solde` with `secret` on `app`: the status.
async fn balance_status(app: &TestApp, secret: &str) -> u16 {
    app.client
        .get(format!("{}/api/v1/solde", app.address))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An API key is kept by each instance that read it: a request costs no round trip before its
/// own work. A revocation written behind the portal's back (an operator's SQL) is therefore not
/// seen at once (within the cache's 30 seconds); one made by the owner on one instance is seen
/// by the other within a second, as is a plan without the API.
#[tokio::test]
async fn an_api_key_kept_by_one_instance_is_refused_once_revoked_through_the_other() {
    let (first, second) = two_instances().await;
    let owner = first.owner("reseau").await;
    let response = owner
        .browser
        .submit("/compte/api", "/compte/api", &[("nom", "Site")])
        .await;
    let html = scraper::Html::parse_document(&response.text().await.unwrap());
    let secret = crate::common::attr(&html, "#secret", "value").unwrap();
    for _ in 0..2 {
        assert_eq!(balance_status(&second, &secret).await, 200);
    }
    // Kept: a revocation nobody announced is not seen yet.
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE organisation_id = $1")
        .bind(owner.org())
        .execute(&first.pool)
        .await
        .unwrap();
    assert_eq!(balance_status(&second, &secret).await, 200, "kept");
    sqlx::query("UPDATE api_keys SET revoked_at = NULL WHERE organisation_id = $1")
        .bind(owner.org())
        .execute(&first.pool)
        .await
        .unwrap();
    // Revoked by the owner through the first instance.
    let (_, html) = owner.browser.html("/compte/api").await;
    let action = crate::common::attr(&html, "#liste-cles form", "action").unwrap();
    let response = owner
        .browser
        .submit("/compte/api", &action, &[("confirmer", "oui")])
        .await;
    assert_eq!(response.status(), 303);
    let start = Instant::now();
    while balance_status(&second, &secret).await != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the revoked key still answers after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
