//! One scope per kind of caller: each has its own guard and its own error format, so a route
//! added to it cannot be reached past them.

use crate::common::{spawn_app_with, test_config};

const ENGINE_TOKEN: &str = "moteur-0123456789abcdef0123456789abcdef";
const WEBHOOK_SECRET: &str = "whsec_0123456789abcdef0123456789abcdef";

fn signature(t: i64, body: &str) -> String {
    let signed = format!("{t}.{body}");
    format!(
        "t={t},v1={}",
        nanoclip::web::csrf::sign_bytes(WEBHOOK_SECRET.as_bytes(), signed.as_bytes())
    )
}

#[tokio::test]
async fn the_engine_and_webhook_scopes_refuse_requests_without_their_credentials() {
    let mut config = test_config();
    config.engine_token = Some(ENGINE_TOKEN.into());
    config.webhook_secret = Some(WEBHOOK_SECRET.into());
    let app = spawn_app_with(config, None).await;
    let post = |path: &str| app.client.post(app.url(path));
    let json = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.expect("a JSON error");
        (
            status,
            body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    // The engine: its bearer token, or a JSON 401 before any route.
    let path = "/api/v1/moteur/generations/0000";
    assert_eq!(
        json(post(path).send().await.unwrap()).await,
        (401, "unauthorized".into())
    );
    let wrong = post(path).bearer_auth("pas-le-bon").send().await.unwrap();
    assert_eq!(json(wrong).await, (401, "unauthorized".into()));
    let cookie_only = post(path)
        .header("Cookie", "nanoclip_session=x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json(cookie_only).await.0,
        401,
        "no cookie stands for the token"
    );
    let right = post(path).bearer_auth(ENGINE_TOKEN).send().await.unwrap();
    assert_eq!(
        json(right).await,
        (404, "not_found".into()),
        "past the guard (no route yet)"
    );
    // Webhooks: a signature on the raw body, within 5 minutes.
    let body = r#"{"id":"evt_1","type":"checkout.session.completed"}"#;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let send = |sig: Option<String>| {
        let mut request = post("/webhooks/paiement").body(body);
        if let Some(sig) = sig {
            request = request.header("Stripe-Signature", sig);
        }
        request.send()
    };
    assert_eq!(
        json(send(None).await.unwrap()).await,
        (400, "invalid_signature".into())
    );
    let old = signature(now - 600, body);
    assert_eq!(
        json(send(Some(old)).await.unwrap()).await.0,
        400,
        "replayed"
    );
    let forged = format!("t={now},v1={}", "0".repeat(64));
    assert_eq!(
        json(send(Some(forged)).await.unwrap()).await.0,
        400,
        "forged"
    );
    let good = send(Some(signature(now, body))).await.unwrap();
    assert_eq!(
        good.status(),
        200,
        "past the guard: an event without an order, without effect"
    );
    // No CSRF or session in either scope: a POST without a token was judged by its credentials
    // alone above. The API answers JSON, never HTML, even for an unknown path.
    assert_eq!(
        json(app.get("/api/v1/rien").await).await,
        (404, "not_found".into())
    );
}

#[tokio::test]
async fn without_a_configured_token_the_engine_scope_refuses_everything() {
    let app = spawn_app_with(test_config(), None).await;
    let r = app
        .client
        .post(app.url("/api/v1/moteur/generations/0000"))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
