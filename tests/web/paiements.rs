//! Payments through Stripe Checkout, against a local fake of Stripe's API (`wiremock`): the
//! session made on the server under the order's idempotency key, the payer sent to Stripe, the
//! payment confirmed by a signed webhook (recorded payloads), by the return page or by the
//! reconciliation job, and paid once whatever arrives twice; refunds with their credit notes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nanoclip::services::billing::{self, NotRefundable};
use nanoclip::services::payments::Payments;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::common::{TestApp, attr, spawn_app, spawn_app_with, test_config, text};
use crate::credits::assert_ledger_clean;

const WEBHOOK_SECRET: &str = "whsec_for_the_stripe_tests_0123456789abc";
const STRIPE_KEY: &str = "sk_test_fake_0123456789";

/// What the fake Stripe holds: sessions and refunds, each made once per idempotency key (as
/// Stripe replays the first answer to a key), and every request it got.
#[derive(Default)]
struct Fake {
    sessions: HashMap<String, Value>,
    by_key: HashMap<String, String>,
    /// The parameters each key came with first: Stripe refuses a key reused with others.
    params_by_key: HashMap<String, HashMap<String, String>>,
    refunds: HashMap<String, Value>,
    /// PaymentIntents by id, and the off-session ones by idempotency key.
    intents: HashMap<String, Value>,
    intents_by_key: HashMap<String, String>,
    /// Off-session charges are declined with this code while set.
    decline: Option<String>,
    /// Off-session charges are left processing (a bank debit not cleared yet) while set.
    processing: bool,
    /// Answers 500 to this many calls before answering (an outage).
    failures: usize,
}

#[derive(Clone)]
struct FakeStripe {
    server: Arc<MockServer>,
    state: Arc<Mutex<Fake>>,
}

fn form(request: &Request) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(&request.body)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn key_of(request: &Request) -> Option<String> {
    request
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl FakeStripe {
    async fn start() -> Self {
        let server = Arc::new(MockServer::start().await);
        let state = Arc::new(Mutex::new(Fake::default()));
        let s = state.clone();
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .and(header("authorization", format!("Bearer {STRIPE_KEY}").as_str()))
            .and(header("stripe-version", "2024-06-20"))
            .respond_with(move |request: &Request| {
                let mut fake = s.lock().unwrap();
                if fake.failures > 0 {
                    fake.failures -= 1;
                    return ResponseTemplate::new(500)
                        .set_body_json(json!({"error": {"type": "api_error"}}));
                }
                let Some(key) = key_of(request) else {
                    return ResponseTemplate::new(400)
                        .set_body_json(json!({"error": {"type": "invalid_request_error"}}));
                };
                let fields = form(request);
                if let Some(first) = fake.params_by_key.get(&key)
                    && *first != fields
                {
                    return ResponseTemplate::new(400).set_body_json(json!({"error": {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the same parameters they were first used with."}}));
                }
                if let Some(id) = fake.by_key.get(&key).cloned() {
                    return ResponseTemplate::new(200).set_body_json(fake.sessions[&id].clone());
                }
                fake.params_by_key.insert(key.clone(), fields.clone());
                let id = format!("cs_test_{}", Uuid::new_v4().simple());
                let session = json!({
                    "id": id,
                    "object": "checkout.session",
                    "url": format!("https://checkout.stripe.test/c/pay/{id}"),
                    "status": "open",
                    "payment_status": "unpaid",
                    "payment_intent": null,
                    "client_reference_id": fields.get("client_reference_id"),
                    "amount_total": fields.get("line_items[0][price_data][unit_amount]").and_then(|a| a.parse::<i64>().ok()),
                    "currency": fields.get("line_items[0][price_data][currency]"),
                    "customer_email": fields.get("customer_email"),
                    "success_url": fields.get("success_url"),
                    "expires_at": fields.get("expires_at").and_then(|a| a.parse::<i64>().ok()),
                    "metadata": {"order_id": fields.get("metadata[order_id]")},
                });
                fake.by_key.insert(key, id.clone());
                fake.sessions.insert(id, session.clone());
                ResponseTemplate::new(200).set_body_json(session)
            })
            .mount(&server)
            .await;
        let s = state.clone();
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/checkout/sessions/[A-Za-z0-9_]+$"))
            .respond_with(move |request: &Request| {
                let fake = s.lock().unwrap();
                let id = request.url.path().rsplit('/').next().unwrap_or_default();
                match fake.sessions.get(id) {
                    Some(session) => ResponseTemplate::new(200).set_body_json(session.clone()),
                    None => ResponseTemplate::new(404)
                        .set_body_json(json!({"error": {"type": "invalid_request_error", "code": "resource_missing"}})),
                }
            })
            .mount(&server)
            .await;
        let s = state.clone();
        Mock::given(method("POST"))
            .and(path_regex(r"^/v1/checkout/sessions/[A-Za-z0-9_]+/expire$"))
            .respond_with(move |request: &Request| {
                let mut fake = s.lock().unwrap();
                let id = request.url.path().split('/').nth(4).unwrap_or_default();
                match fake.sessions.get_mut(id) {
                    Some(session) if session["status"] == "open" => {
                        session["status"] = json!("expired");
                        ResponseTemplate::new(200).set_body_json(session.clone())
                    }
                    Some(_) => ResponseTemplate::new(400).set_body_json(
                        json!({"error": {"type": "invalid_request_error", "code": "checkout_session_not_open"}}),
                    ),
                    None => ResponseTemplate::new(404),
                }
            })
            .mount(&server)
            .await;
        let s = state.clone();
        Mock::given(method("POST"))
            .and(path("/v1/refunds"))
            .respond_with(move |request: &Request| {
                let mut fake = s.lock().unwrap();
                if fake.failures > 0 {
                    fake.failures -= 1;
                    return ResponseTemplate::new(503);
                }
                let Some(key) = key_of(request) else {
                    return ResponseTemplate::new(400);
                };
                let fields = form(request);
                let refund = fake
                    .refunds
                    .entry(key)
                    .or_insert_with(|| {
                        json!({
                            "id": format!("re_{}", Uuid::new_v4().simple()),
                            "object": "refund",
                            "status": "succeeded",
                            "payment_intent": fields.get("payment_intent"),
                            "amount": fields.get("amount").and_then(|a| a.parse::<i64>().ok()),
                        })
                    })
                    .clone();
                ResponseTemplate::new(200).set_body_json(refund)
            })
            .mount(&server)
            .await;
        let s = state.clone();
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/payment_intents/[A-Za-z0-9_]+$"))
            .respond_with(move |request: &Request| {
                let fake = s.lock().unwrap();
                let id = request.url.path().rsplit('/').next().unwrap_or_default();
                match fake.intents.get(id) {
                    Some(intent) => ResponseTemplate::new(200).set_body_json(intent.clone()),
                    None => ResponseTemplate::new(404),
                }
            })
            .mount(&server)
            .await;
        let s = state.clone();
        Mock::given(method("POST"))
            .and(path("/v1/payment_intents"))
            .and(header("authorization", format!("Bearer {STRIPE_KEY}").as_str()))
            .respond_with(move |request: &Request| {
                let mut fake = s.lock().unwrap();
                let Some(key) = key_of(request) else {
                    return ResponseTemplate::new(400);
                };
                if let Some(id) = fake.intents_by_key.get(&key).cloned() {
                    let intent = fake.intents[&id].clone();
                    return if intent["status"] == "succeeded" || intent["status"] == "processing" {
                        ResponseTemplate::new(200).set_body_json(intent)
                    } else {
                        ResponseTemplate::new(402).set_body_json(json!({"error": {
                            "type": "card_error", "code": "card_declined",
                            "decline_code": intent["last_payment_error"]["decline_code"],
                            "payment_intent": intent}}))
                    };
                }
                let fields = form(request);
                let id = format!("pi_{}", Uuid::new_v4().simple());
                let declined = fake.decline.clone();
                let processing = fake.processing;
                let intent = json!({
                    "id": id,
                    "object": "payment_intent",
                    "amount": fields.get("amount").and_then(|a| a.parse::<i64>().ok()),
                    "currency": fields.get("currency"),
                    "customer": fields.get("customer"),
                    "payment_method": fields.get("payment_method"),
                    "off_session": fields.get("off_session"),
                    "confirm": fields.get("confirm"),
                    "metadata": {"order_id": fields.get("metadata[order_id]")},
                    "status": if declined.is_some() { "requires_payment_method" } else if processing { "processing" } else { "succeeded" },
                    "last_payment_error": declined.as_ref().map(|code| json!({"type": "card_error", "code": "card_declined", "decline_code": code})),
                });
                fake.intents_by_key.insert(key, id.clone());
                fake.intents.insert(id, intent.clone());
                match declined {
                    None => ResponseTemplate::new(200).set_body_json(intent),
                    Some(code) => ResponseTemplate::new(402).set_body_json(json!({"error": {
                        "type": "card_error", "code": "card_declined", "decline_code": code,
                        "payment_intent": intent}})),
                }
            })
            .mount(&server)
            .await;
        Self { server, state }
    }

    fn decline(&self, code: Option<&str>) {
        self.state.lock().unwrap().decline = code.map(str::to_owned);
    }

    fn uri(&self) -> String {
        self.server.uri()
    }

    /// The payer pays the session at Stripe.
    fn pay(&self, session: &str) {
        let mut fake = self.state.lock().unwrap();
        let s = fake
            .sessions
            .get_mut(session)
            .expect("a session of the fake");
        s["status"] = json!("complete");
        s["payment_status"] = json!("paid");
        let intent = format!("pi_{}", Uuid::new_v4().simple());
        s["payment_intent"] = json!(intent);
        s["customer"] = json!(format!("cus_{}", Uuid::new_v4().simple()));
        let paid = json!({"id": intent, "object": "payment_intent", "status": "succeeded",
                          "payment_method": format!("pm_{}", Uuid::new_v4().simple())});
        fake.intents.insert(intent, paid);
    }

    /// How many times money was taken: each succeeded payment, a session paid on Stripe's page
    /// or a card charged off session.
    fn money_taken(&self) -> usize {
        let fake = self.state.lock().unwrap();
        fake.intents
            .values()
            .filter(|intent| intent["status"] == "succeeded")
            .count()
    }

    fn fail_next(&self, calls: usize) {
        self.state.lock().unwrap().failures = calls;
    }

    fn session(&self, id: &str) -> Value {
        self.state.lock().unwrap().sessions[id].clone()
    }

    fn refunds(&self) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .refunds
            .values()
            .cloned()
            .collect()
    }

    async fn requests(&self, verb: &str, prefix: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == verb && r.url.path().starts_with(prefix))
            .collect()
    }
}

fn stripe_config(fake: &FakeStripe) -> nanoclip::config::Config {
    let mut config = test_config();
    config.payments = nanoclip::config::Payments::Stripe;
    config.stripe_secret_key = Some(STRIPE_KEY.into());
    config.stripe_api_url = fake.uri();
    config.webhook_secret = Some(WEBHOOK_SECRET.into());
    config
}

fn jobs(config: &nanoclip::config::Config) -> nanoclip::jobs::Context {
    nanoclip::jobs::Context {
        public_url: config.public_url.clone(),
        payments: Payments::from_config(config).unwrap(),
        ..Default::default()
    }
}

/// A recorded event of `tests/data/stripe/`, for this order and session.
fn recorded(name: &str, order: Uuid, session: &str, amount: i64) -> String {
    let path = crate::common::project_dir().join(format!("tests/data/stripe/{name}.json"));
    std::fs::read_to_string(path)
        .unwrap()
        .replace("{{ORDER_ID}}", &order.to_string())
        .replace("{{SESSION_ID}}", session)
        .replace("{{AMOUNT}}", &amount.to_string())
}

/// Signed as Stripe signs: `t=<unix time>,v1=<HMAC-SHA256 of "{t}.{body}">`.
fn signature(body: &str, at: i64) -> String {
    let mac = nanoclip::web::csrf::sign_bytes(
        WEBHOOK_SECRET.as_bytes(),
        format!("{at}.{body}").as_bytes(),
    );
    format!("t={at},v1={mac}")
}

async fn deliver(app: &TestApp, body: &str) -> u16 {
    app.client
        .post(app.url("/webhooks/paiement"))
        .header("content-type", "application/json")
        .header(
            "stripe-signature",
            signature(body, app.clock.now().unix_timestamp()),
        )
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Confirms the purchase of `pack`: the redirect it answers (to Stripe).
async fn confirm(owner: &crate::common::accounts::Account, pack: &str) -> reqwest::Response {
    let (status, html) = owner.browser.html(&format!("/achats/{pack}")).await;
    assert_eq!(status, 200);
    let fields = ["csrf", "cle", "prix"].map(|n| {
        (
            n,
            attr(&html, &format!("input[name={n}]"), "value").unwrap(),
        )
    });
    owner
        .browser
        .client
        .post(format!("{}/achats/{pack}", owner.browser.base))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

async fn purchases(app: &TestApp, org: Uuid) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders WHERE organisation_id = $1 AND state = 'paid'),
                (SELECT count(*) FROM credit_buckets WHERE organisation_id = $1 AND source = 'purchase'),
                (SELECT count(*) FROM invoices WHERE organisation_id = $1 AND series = 'FA')",
    )
    .bind(org)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn only_order(app: &TestApp, org: Uuid) -> (Uuid, String, String) {
    sqlx::query_as(
        "SELECT id, state, coalesce(provider_ref, '') FROM orders WHERE organisation_id = $1",
    )
    .bind(org)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pack_bought_through_stripe_checkout_is_paid_once_by_its_webhook() {
    let fake = FakeStripe::start().await;
    let app = spawn_app_with(stripe_config(&fake), None).await;
    let owner = app.owner("eglise").await;
    // A double click: two confirmations of one form, one order, one session.
    let first = confirm(&owner, "pack-10").await;
    assert_eq!(first.status(), 303);
    let to_stripe = first.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to_stripe.starts_with("https://checkout.stripe.test/c/pay/cs_test_"),
        "{to_stripe}"
    );
    let (order, state, session) = only_order(&app, owner.org()).await;
    assert_eq!(state, "pending");
    assert!(to_stripe.ends_with(&session));
    // The session was made on the server, priced from the catalogue, under the order's key.
    let made = fake.requests("POST", "/v1/checkout/sessions").await;
    assert_eq!(made.len(), 1);
    let sent = form(&made[0]);
    assert_eq!(sent["client_reference_id"], order.to_string());
    assert_eq!(sent["line_items[0][price_data][unit_amount]"], "1200");
    assert_eq!(sent["line_items[0][price_data][currency]"], "eur");
    assert_eq!(sent["mode"], "payment");
    assert_eq!(
        sent["success_url"],
        format!("http://portail.test/achats/retour/{order}")
    );
    let key: String = sqlx::query_scalar("SELECT idempotency_key FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(key_of(&made[0]).as_deref(), Some(key.as_str()));
    let again = confirm(&owner, "pack-10").await;
    // A new visit of the confirmation page is a new form key, hence a new order: the same
    // submission twice is what must give one order.
    assert_eq!(again.status(), 303);

    // The payer pays; Stripe's webhook, 5 times at once and then twice more.
    fake.pay(&session);
    let body = recorded("checkout.session.completed", order, &session, 1200);
    let deliveries: Vec<_> = (0..5).map(|_| deliver(&app, &body)).collect();
    for status in futures_util::future::join_all(deliveries).await {
        assert_eq!(status, 200);
    }
    assert_eq!(deliver(&app, &body).await, 200);
    assert_eq!(deliver(&app, &body).await, 200);
    let (paid, grants, invoices) = purchases(&app, owner.org()).await;
    assert_eq!((paid, grants, invoices), (1, 1, 1));
    // The return page shows it paid and the balance.
    let (status, html) = owner.browser.html(&format!("/achats/retour/{order}")).await;
    assert_eq!(status, 200);
    assert!(
        text(&html, "#resultat").starts_with("Paiement accepté"),
        "{}",
        text(&html, "#resultat")
    );
    // A forged or stale signature is refused.
    let forged = app
        .client
        .post(app.url("/webhooks/paiement"))
        .header(
            "stripe-signature",
            signature(&body, app.clock.now().unix_timestamp() - 301),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_return_page_settles_a_payment_whose_webhook_has_not_come_yet() {
    let fake = FakeStripe::start().await;
    let app = spawn_app_with(stripe_config(&fake), None).await;
    let owner = app.owner("eglise").await;
    assert_eq!(confirm(&owner, "pack-30").await.status(), 303);
    let (order, _, session) = only_order(&app, owner.org()).await;
    // Back from Stripe before the payment: still waiting.
    let (_, html) = owner.browser.html(&format!("/achats/retour/{order}")).await;
    assert!(!text(&html, "#resultat").starts_with("Paiement accepté"));
    fake.pay(&session);
    // Back from Stripe after paying, before the webhook: the page asks Stripe.
    let (_, html) = owner.browser.html(&format!("/achats/retour/{order}")).await;
    assert!(
        text(&html, "#resultat").starts_with("Paiement accepté"),
        "{}",
        text(&html, "#resultat")
    );
    // The webhook arrives afterwards: nothing more.
    let body = recorded("checkout.session.completed", order, &session, 3300);
    assert_eq!(deliver(&app, &body).await, 200);
    assert_eq!(purchases(&app, owner.org()).await, (1, 1, 1));
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconciliation_settles_payments_whose_webhook_never_came_and_ends_stale_sessions() {
    let fake = FakeStripe::start().await;
    let config = stripe_config(&fake);
    let context = jobs(&config);
    let app = spawn_app_with(config, None).await;
    let paid_owner = app.owner("eglise").await;
    let idle_owner = app.owner("eglise").await;
    assert_eq!(confirm(&paid_owner, "pack-10").await.status(), 303);
    assert_eq!(confirm(&idle_owner, "pack-10").await.status(), 303);
    let (paid_order, _, paid_session) = only_order(&app, paid_owner.org()).await;
    let (idle_order, _, idle_session) = only_order(&app, idle_owner.org()).await;
    fake.pay(&paid_session);
    // Too early: webhooks get their chance first.
    let job = nanoclip::jobs::Job::ReconcilePayments;
    nanoclip::jobs::run(&app.pool, job, app.clock.now(), &context)
        .await
        .unwrap();
    assert_eq!(purchases(&app, paid_owner.org()).await.0, 0);
    // Three minutes later, no webhook: the job asks Stripe.
    app.clock.advance(time::Duration::minutes(3));
    nanoclip::jobs::run(&app.pool, job, app.clock.now(), &context)
        .await
        .unwrap();
    assert_eq!(purchases(&app, paid_owner.org()).await, (1, 1, 1));
    assert_eq!(fake.session(&idle_session)["status"], "open");
    // The idle order's time runs out: the session is ended at Stripe, the order expires, and
    // the local expiry job leaves Stripe's orders to this one.
    app.clock.advance(time::Duration::hours(1));
    nanoclip::jobs::run(
        &app.pool,
        nanoclip::jobs::Job::ExpireOrders,
        app.clock.now(),
        &context,
    )
    .await
    .unwrap();
    assert_eq!(only_order(&app, idle_owner.org()).await.1, "pending");
    nanoclip::jobs::run(&app.pool, job, app.clock.now(), &context)
        .await
        .unwrap();
    assert_eq!(fake.session(&idle_session)["status"], "expired");
    assert_eq!(only_order(&app, idle_owner.org()).await.1, "expired");
    assert_eq!(
        fake.requests(
            "POST",
            &format!("/v1/checkout/sessions/{idle_session}/expire")
        )
        .await
        .len(),
        1
    );
    // Running again changes nothing.
    nanoclip::jobs::run(&app.pool, job, app.clock.now(), &context)
        .await
        .unwrap();
    assert_eq!(purchases(&app, paid_owner.org()).await, (1, 1, 1));
    let _ = (paid_order, idle_order);
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_stripe_is_down_the_order_waits_and_the_same_form_resumes_it() {
    let fake = FakeStripe::start().await;
    let app = spawn_app_with(stripe_config(&fake), None).await;
    let owner = app.owner("eglise").await;
    fake.fail_next(1);
    let (_, html) = owner.browser.html("/achats/pack-10").await;
    let fields = ["csrf", "cle", "prix"].map(|n| {
        (
            n,
            attr(&html, &format!("input[name={n}]"), "value").unwrap(),
        )
    });
    let send = || {
        owner
            .browser
            .client
            .post(format!("{}/achats/pack-10", owner.browser.base))
            .form(&fields)
            .send()
    };
    let down = send().await.unwrap();
    assert_eq!(down.status(), 503);
    let page = down.text().await.unwrap();
    assert!(page.contains("lang=\"fr\""), "a French page");
    let (order, state, session) = only_order(&app, owner.org()).await;
    assert_eq!((state.as_str(), session.as_str()), ("pending", ""));
    // Sent again: the same order, and now its session.
    let up = send().await.unwrap();
    assert_eq!(up.status(), 303);
    let (again, _, session) = only_order(&app, owner.org()).await;
    assert_eq!(again, order);
    assert!(session.starts_with("cs_test_"));
    // Both attempts carried the order's one key.
    let keys: Vec<_> = fake
        .requests("POST", "/v1/checkout/sessions")
        .await
        .iter()
        .map(key_of)
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_made_by_a_portal_that_stopped_before_saving_it_is_found_again() {
    let fake = FakeStripe::start().await;
    let config = stripe_config(&fake);
    let context = jobs(&config);
    let app = spawn_app_with(config, None).await;
    let owner = app.owner("eglise").await;
    assert_eq!(confirm(&owner, "pack-10").await.status(), 303);
    let (order, _, session) = only_order(&app, owner.org()).await;
    // As if the portal had stopped between Stripe's answer and saving the session's id.
    sqlx::query("UPDATE orders SET provider_ref = NULL WHERE id = $1")
        .bind(order)
        .execute(&app.pool)
        .await
        .unwrap();
    fake.pay(&session);
    app.clock.advance(time::Duration::minutes(3));
    let job = nanoclip::jobs::Job::ReconcilePayments;
    nanoclip::jobs::run(&app.pool, job, app.clock.now(), &context)
        .await
        .unwrap();
    assert_eq!(
        only_order(&app, owner.org()).await.2,
        session,
        "the same session"
    );
    assert_eq!(purchases(&app, owner.org()).await, (1, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unused_pack_is_refunded_once_through_stripe_with_a_credit_note() {
    let fake = FakeStripe::start().await;
    let config = stripe_config(&fake);
    let context = jobs(&config);
    let app = spawn_app_with(config, None).await;
    let owner = app.owner("eglise").await;
    assert_eq!(confirm(&owner, "pack-30").await.status(), 303);
    let (order, _, session) = only_order(&app, owner.org()).await;
    fake.pay(&session);
    let price: i64 = sqlx::query_scalar("SELECT amount_cents FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let body = recorded("checkout.session.completed", order, &session, price);
    assert_eq!(deliver(&app, &body).await, 200);
    let payments = Payments::from_config(&stripe_config(&fake)).unwrap();
    let before = nanoclip::services::credits::available(&app.pool, owner.org(), app.clock.now())
        .await
        .unwrap();
    // Stripe does not answer the first time: the refund is recorded, the credits are gone,
    // and the job asks again under the same key.
    fake.fail_next(1);
    let outcome = billing::refund_pack(
        &app.pool,
        &payments,
        order,
        "staff:test",
        "erreur de pack",
        app.clock.now(),
    )
    .await
    .unwrap();
    assert!(outcome.created);
    assert_eq!(outcome.state, "requested");
    let credit_note = outcome.credit_note.clone().unwrap();
    assert!(
        credit_note.starts_with("AV-20") && credit_note.ends_with("-000001"),
        "{credit_note}"
    );
    let after = nanoclip::services::credits::available(&app.pool, owner.org(), app.clock.now())
        .await
        .unwrap();
    assert_eq!(before.0 - after.0, 30);
    nanoclip::jobs::run(
        &app.pool,
        nanoclip::jobs::Job::ReconcilePayments,
        app.clock.now(),
        &context,
    )
    .await
    .unwrap();
    let again = billing::refund_pack(
        &app.pool,
        &payments,
        order,
        "staff:test",
        "deux fois",
        app.clock.now(),
    )
    .await
    .unwrap();
    assert!(!again.created);
    assert_eq!(again.state, "succeeded");
    assert_eq!(again.credit_note, Some(credit_note));
    let refunds = fake.refunds();
    assert_eq!(refunds.len(), 1, "one refund at Stripe");
    assert_eq!(refunds[0]["amount"], price);
    let attempts = fake.requests("POST", "/v1/refunds").await;
    assert_eq!(attempts.len(), 2);
    assert_eq!(key_of(&attempts[0]), key_of(&attempts[1]));
    let state: String = sqlx::query_scalar("SELECT state FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "refunded");
    // The refund event changes nothing more; a late « paid » event does not re-grant.
    assert_eq!(
        deliver(
            &app,
            &body.replace("evt_1QdXyZA1b2C3d4E5completed", "evt_late")
        )
        .await,
        200
    );
    assert_eq!(purchases(&app, owner.org()).await.1, 1);
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn only_unused_packs_are_refunded_within_fourteen_days() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let catalog = nanoclip::services::catalog::CatalogCache::default()
        .get(&app.pool)
        .await
        .unwrap();
    let payments = Payments::Test;
    let mut paid = Vec::new();
    for i in 0..3 {
        let order = billing::order_pack(
            &app.pool,
            &catalog,
            owner.org(),
            owner.id,
            "pack-10",
            &format!("{i:064}"),
            billing::Provider::Test,
            app.clock.now(),
        )
        .await
        .unwrap();
        billing::test_payment(
            &app.pool,
            owner.org(),
            order,
            nanoclip::domain::billing::TestOutcome::Approve,
            app.clock.now(),
        )
        .await
        .unwrap();
        paid.push(order);
    }
    let refuse = |order: Uuid, now| {
        let (pool, payments) = (app.pool.clone(), payments.clone());
        async move {
            match billing::refund_pack(&pool, &payments, order, "staff:test", "essai", now).await {
                Err(billing::BillingError::NotRefundable(why)) => why,
                other => panic!("refused expected: {other:?}"),
            }
        }
    };
    // Spend one credit: it comes from a purchased bucket (earliest expiry first, then oldest).
    let hold = nanoclip::services::credits::hold(
        &app.pool,
        nanoclip::services::credits::HoldInput {
            organisation: owner.org(),
            amount: nanoclip::domain::money::Credits(41),
            creation_type: "image",
            key: "spend",
            reference: "generation:test",
            actor: "user:test",
        },
        app.clock.now(),
    )
    .await
    .unwrap();
    assert!(
        matches!(
            hold,
            nanoclip::services::credits::HoldOutcome::Placed { .. }
        ),
        "{hold:?}"
    );
    let used: Vec<Uuid> = {
        let mut used = Vec::new();
        for order in &paid {
            let remaining: i64 =
                sqlx::query_scalar("SELECT remaining FROM credit_buckets WHERE grant_key = $1")
                    .bind(format!("order:{order}"))
                    .fetch_one(&app.pool)
                    .await
                    .unwrap();
            if remaining < 10 {
                used.push(*order);
            }
        }
        used
    };
    assert!(!used.is_empty());
    assert_eq!(
        refuse(used[0], app.clock.now()).await,
        NotRefundable::CreditsUsed
    );
    let unused = *paid.iter().find(|o| !used.contains(o)).unwrap();
    assert_eq!(
        refuse(unused, app.clock.now() + time::Duration::days(15)).await,
        NotRefundable::TooLate
    );
    let done = billing::refund_pack(
        &app.pool,
        &payments,
        unused,
        "staff:test",
        "erreur",
        app.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(done.state, "succeeded");
    assert!(done.created);
    // Refunded already: nothing more, same credit note.
    let twice = billing::refund_pack(
        &app.pool,
        &payments,
        unused,
        "staff:test",
        "erreur",
        app.clock.now(),
    )
    .await
    .unwrap();
    assert!(!twice.created);
    assert_eq!(twice.credit_note, done.credit_note);
    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices WHERE series = 'AV'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(notes, 1);
    // The owner sees the credit note next to the invoice, and what it cancels.
    let credit_note = done.credit_note.clone().unwrap();
    let (_, history) = owner.browser.html("/achats/historique").await;
    assert!(text(&history, "#commandes").contains(&credit_note));
    let (status, page) = owner
        .browser
        .html(&format!("/achats/factures/{credit_note}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(text(&page, "h1"), format!("Avoir {credit_note}"));
    let invoice: String =
        sqlx::query_scalar("SELECT number FROM invoices WHERE order_id = $1 AND series = 'FA'")
            .bind(unused)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        text(&page, "main").contains(&format!("annule la facture {invoice}")),
        "{}",
        text(&page, "main")
    );
    assert_ledger_clean(&app.pool).await;
}

/// The portal's binary serving the test's database with Stripe (the fake): its base URL.
async fn stripe_portal(app: &TestApp, fake: &FakeStripe) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut portal = tokio::process::Command::new(env!("CARGO_BIN_EXE_nanoclip"))
        .arg("serve")
        .env("DATABASE_URL", app.database_url())
        .env("NANOCLIP_BIND", format!("127.0.0.1:{port}"))
        .env("NANOCLIP_PAYMENTS", "stripe")
        .env("NANOCLIP_STRIPE_SECRET_KEY", STRIPE_KEY)
        .env("NANOCLIP_STRIPE_API_URL", fake.uri())
        .env("NANOCLIP_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("NANOCLIP_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(portal.stderr.take().unwrap()).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("\"ready\"") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "the portal started");
    // Its log keeps flowing somewhere (a full pipe would stop it).
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (portal, format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_portal_killed_between_the_payment_and_its_confirmation_grants_once_after_restart() {
    let fake = FakeStripe::start().await;
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let (mut portal, base) = stripe_portal(&app, &fake).await;
    let browser = crate::common::Browser::new(&base);
    let signed_in = browser
        .submit(
            "/compte/connexion",
            "/compte/connexion",
            &[("email", &owner.email), ("mot_de_passe", &owner.password)],
        )
        .await;
    assert_eq!(signed_in.status(), 303);
    let (_, html) = browser.html("/achats/pack-10").await;
    let fields = ["csrf", "cle", "prix"].map(|n| {
        (
            n,
            attr(&html, &format!("input[name={n}]"), "value").unwrap(),
        )
    });
    let to_stripe = browser
        .client
        .post(format!("{base}/achats/pack-10"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(to_stripe.status(), 303);
    let (order, state, session) = only_order(&app, owner.org()).await;
    assert_eq!(state, "pending");
    // The payer pays at Stripe; Stripe's webhooks start arriving, and the portal is killed
    // in the middle of them.
    fake.pay(&session);
    let body = recorded("checkout.session.completed", order, &session, 1200);
    let client = reqwest::Client::new();
    let storm: Vec<_> = (0..20)
        .map(|i| {
            let (client, body, url) = (
                client.clone(),
                body.clone(),
                format!("{base}/webhooks/paiement"),
            );
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(i * 2)).await;
                let at = time::OffsetDateTime::now_utc().unix_timestamp();
                client
                    .post(url)
                    .header("stripe-signature", signature(&body, at))
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        })
        .collect();
    let storm = tokio::spawn(futures_util::future::join_all(storm));
    tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    portal.start_kill().unwrap(); // SIGKILL
    assert!(!portal.wait().await.unwrap().success());
    let delivered = storm.await.unwrap();
    // A COMMIT sent just before the kill still lands on the server.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before_restart = purchases(&app, owner.org()).await;
    assert!(before_restart.0 <= 1, "{before_restart:?} ({delivered:?})");
    // The restart: the reconciliation job (some minutes later) asks Stripe, then Stripe's
    // retries reach the new portal, and the payer comes back to the result page.
    sqlx::query("UPDATE orders SET updated_at = updated_at - interval '5 minutes' WHERE id = $1")
        .bind(order)
        .execute(&app.pool)
        .await
        .unwrap();
    let reconciled = std::process::Command::new(env!("CARGO_BIN_EXE_nanoclip"))
        .args(["run-job", "reconcile-payments"])
        .env("DATABASE_URL", app.database_url())
        .env("NANOCLIP_PAYMENTS", "stripe")
        .env("NANOCLIP_STRIPE_SECRET_KEY", STRIPE_KEY)
        .env("NANOCLIP_STRIPE_API_URL", fake.uri())
        .env("NANOCLIP_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        reconciled.status.success(),
        "{}",
        String::from_utf8_lossy(&reconciled.stderr)
    );
    assert_eq!(purchases(&app, owner.org()).await, (1, 1, 1));
    let (mut again, base) = stripe_portal(&app, &fake).await;
    for _ in 0..3 {
        let at = time::OffsetDateTime::now_utc().unix_timestamp();
        let status = client
            .post(format!("{base}/webhooks/paiement"))
            .header("stripe-signature", signature(&body, at))
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    assert_eq!(purchases(&app, owner.org()).await, (1, 1, 1));
    let (clean, out, err) = app.command(&["check-ledger"]);
    assert!(clean, "{out}\n{err}");
    again.start_kill().unwrap();
    let _ = again.wait().await;
}

/// `n` orders of a pack by `owner`, made now, each with its own key (unique across owners).
async fn pack_orders(
    app: &TestApp,
    owner: &crate::common::accounts::Account,
    n: usize,
    provider: billing::Provider,
) -> Vec<Uuid> {
    let catalog = nanoclip::services::catalog::CatalogCache::default()
        .get(&app.pool)
        .await
        .unwrap();
    let mut orders = Vec::new();
    for i in 0..n {
        let order = billing::order_pack(
            &app.pool,
            &catalog,
            owner.org(),
            owner.id,
            "pack-10",
            &format!("{}-{i}", owner.org().simple()),
            provider,
            app.clock.now(),
        )
        .await
        .unwrap();
        orders.push(order);
    }
    orders
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_purchases_each_paid_once_whatever_the_webhooks_and_numbers_have_no_gap() {
    let fake = FakeStripe::start().await;
    let app = spawn_app_with(stripe_config(&fake), None).await;
    let owner = app.owner("reseau").await;
    let now = app.clock.now();
    const PURCHASES: usize = 500;
    let orders = pack_orders(&app, &owner, PURCHASES, billing::Provider::Stripe).await;
    let paid = |i: usize| {
        recorded(
            "checkout.session.completed",
            orders[i],
            &format!("cs_test_{i}"),
            1200,
        )
        .replace("evt_1QdXyZA1b2C3d4E5completed", &format!("evt_paid_{i}"))
    };
    let expired = |i: usize| {
        recorded(
            "checkout.session.expired",
            orders[i],
            &format!("cs_test_{i}"),
            1200,
        )
        .replace("evt_1QdXzAA1b2C3d4E5expired0", &format!("evt_expired_{i}"))
    };
    // The first purchase's event: 10 deliveries at once, then 10 in a row.
    let first = paid(0);
    let storm: Vec<_> = (0..10).map(|_| deliver(&app, &first)).collect();
    for status in futures_util::future::join_all(storm).await {
        assert_eq!(status, 200);
    }
    for _ in 0..10 {
        assert_eq!(deliver(&app, &first).await, 200);
    }
    assert_eq!(purchases(&app, owner.org()).await, (1, 1, 1));
    // The first purchase is refunded; then every event of every purchase, twice, shuffled with
    // late « expired » events and the first purchase's events again, 16 at a time.
    let payments = Payments::Test;
    let refund =
        billing::refund_pack(&app.pool, &payments, orders[0], "staff:test", "essai", now).await;
    // (Paid through « Stripe » in this test, refunded with the test provider: the refund is
    // recorded and the provider call refused: the credits and the credit note stand.)
    assert!(refund.is_ok(), "{refund:?}");
    let mut bodies: Vec<String> = Vec::new();
    for i in 0..PURCHASES {
        bodies.push(paid(i));
        bodies.push(paid(i));
        if i % 5 == 0 {
            bodies.push(expired(i));
        }
    }
    // A fixed shuffle (no rand crate): a multiplicative permutation.
    let n = bodies.len();
    assert!(
        !n.is_multiple_of(7919),
        "7919 is prime: a permutation when it does not divide n"
    );
    let shuffled: Vec<String> = (0..n).map(|k| bodies[(k * 7919) % n].clone()).collect();
    for chunk in shuffled.chunks(16) {
        let batch: Vec<_> = chunk.iter().map(|b| deliver(&app, b)).collect();
        for status in futures_util::future::join_all(batch).await {
            assert_eq!(status, 200);
        }
    }
    let (paid_orders, grants, invoices) = purchases(&app, owner.org()).await;
    assert_eq!(
        (paid_orders, grants, invoices),
        (PURCHASES as i64 - 1, PURCHASES as i64, PURCHASES as i64)
    );
    let numbers: Vec<i32> =
        sqlx::query_scalar("SELECT sequence FROM invoices WHERE series = 'FA' ORDER BY sequence")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(numbers, (1..=PURCHASES as i32).collect::<Vec<i32>>());
    let refunded: Vec<String> = sqlx::query_scalar(
        "SELECT state FROM orders WHERE organisation_id = $1 AND state <> 'paid'",
    )
    .bind(owner.org())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(refunded, ["refunded"]);
    let grants_ledger: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM credit_ledger WHERE organisation_id = $1 AND kind = 'grant' AND reference LIKE 'order:%'",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(grants_ledger, PURCHASES as i64);
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewals_are_charged_off_session_to_the_card_stripe_checkout_kept() {
    let stripe = stripe_renewals().await;
    let (app, fake, renewals) = (&stripe.app, &stripe.fake, &stripe.renewals);
    let owner = app.owner("eglise").await;
    let browser = app.sign_in_again(&owner).await;
    // An upgrade paid through Stripe Checkout keeps the card for the renewals.
    let (_, html) = browser.html("/abonnement").await;
    let field = |name: &str| {
        attr(
            &html,
            &format!("form[action='/abonnement/changement'] input[name={name}]"),
            "value",
        )
        .unwrap()
    };
    let (token, key, price, credits) =
        (field("csrf"), field("cle"), field("prix"), field("credits"));
    let response = browser
        .client
        .post(format!("{}/abonnement/changement", browser.base))
        .form(&[
            ("csrf", token.as_str()),
            ("cle", key.as_str()),
            ("plan", "reseau"),
            ("prix", price.as_str()),
            ("credits", credits.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let (order, session, kind): (Uuid, String, String) =
        sqlx::query_as("SELECT id, provider_ref, kind FROM orders WHERE organisation_id = $1")
            .bind(owner.org())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(kind, "upgrade");
    let made = fake.requests("POST", "/v1/checkout/sessions").await;
    assert_eq!(
        form(&made[0])["payment_intent_data[setup_future_usage]"],
        "off_session"
    );
    fake.pay(&session);
    let price: i64 = sqlx::query_scalar("SELECT amount_cents FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let body = recorded("checkout.session.completed", order, &session, price);
    assert_eq!(deliver(app, &body).await, 200);
    let (customer, method): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT payment_customer, payment_method FROM subscriptions WHERE organisation_id = $1",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        customer.as_deref(),
        fake.session(&session)["customer"].as_str()
    );
    assert!(method.as_deref().is_some_and(|m| m.starts_with("pm_")));
    let renewal_state = |n: i32| {
        let pool = app.pool.clone();
        let org = owner.org();
        async move {
            sqlx::query_as::<_, (String, Option<String>, String)>(
                "SELECT o.state, o.failure, s.status FROM orders o JOIN subscriptions s USING (organisation_id)
                 WHERE o.organisation_id = $1 AND o.kind = 'renewal' AND o.period_number = $2",
            )
            .bind(org)
            .bind(n)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    // The period ends: the renewal is charged to that card, off session, once.
    let end: time::OffsetDateTime =
        sqlx::query_scalar("SELECT period_end FROM subscriptions WHERE organisation_id = $1")
            .bind(owner.org())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let first: i32 =
        sqlx::query_scalar("SELECT period_number FROM subscriptions WHERE organisation_id = $1")
            .bind(owner.org())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let at = end + time::Duration::hours(1);
    nanoclip::services::billing::renew_due(&app.pool, renewals, at)
        .await
        .unwrap();
    nanoclip::services::billing::renew_due(&app.pool, renewals, at)
        .await
        .unwrap();
    let (state, _, status) = renewal_state(first + 1).await;
    assert_eq!((state.as_str(), status.as_str()), ("paid", "active"));
    let charges = fake.requests("POST", "/v1/payment_intents").await;
    assert_eq!(charges.len(), 1, "charged once");
    let sent = form(&charges[0]);
    assert_eq!(Some(sent["customer"].as_str()), customer.as_deref());
    assert_eq!(Some(sent["payment_method"].as_str()), method.as_deref());
    assert_eq!(
        (sent["off_session"].as_str(), sent["confirm"].as_str()),
        ("true", "true")
    );
    assert_eq!(sent["currency"], "eur");
    assert!(key_of(&charges[0]).is_some());
    // The next period: the bank declines (insufficient funds): past due, no allotment; the
    // retry a day later goes through.
    fake.decline(Some("insufficient_funds"));
    let end: time::OffsetDateTime =
        sqlx::query_scalar("SELECT period_end FROM subscriptions WHERE organisation_id = $1")
            .bind(owner.org())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    nanoclip::services::billing::renew_due(&app.pool, renewals, end + time::Duration::hours(1))
        .await
        .unwrap();
    let (state, failure, status) = renewal_state(first + 2).await;
    assert_eq!(
        (state.as_str(), failure.as_deref(), status.as_str()),
        ("failed", Some("insufficient_funds"), "past_due")
    );
    fake.decline(None);
    nanoclip::services::billing::renew_due(&app.pool, renewals, end + time::Duration::hours(26))
        .await
        .unwrap();
    let (state, _, status) = renewal_state(first + 2).await;
    assert_eq!((state.as_str(), status.as_str()), ("paid", "active"));
    let keys: Vec<_> = fake
        .requests("POST", "/v1/payment_intents")
        .await
        .iter()
        .map(key_of)
        .collect();
    assert_eq!(keys.len(), 3);
    assert_ne!(keys[1], keys[2], "each attempt its own key");
    assert_ledger_clean(&app.pool).await;
}

/// Review: Stripe signs every event of the account, including Checkout Sessions the portal did
/// not make (a Payment Link takes `client_reference_id` from its URL, so anyone can set it to
/// their pending order's id). A signed `checkout.session.completed` for 1 € naming another
/// session must not pay a 99 € order: the session must be the order's and the amount and
/// currency its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_event_for_another_session_or_amount_does_not_pay_the_order() {
    let fake = FakeStripe::start().await;
    let app = spawn_app_with(stripe_config(&fake), None).await;
    let owner = app.owner("eglise").await;
    assert_eq!(confirm(&owner, "pack-100").await.status(), 303);
    let (order, state, session) = only_order(&app, owner.org()).await;
    assert_eq!(state, "pending");
    // Another session (a 1 € Payment Link opened with ?client_reference_id=<order>).
    let foreign = recorded(
        "checkout.session.completed",
        order,
        "cs_test_payment_link_0001",
        100,
    );
    assert_eq!(deliver(&app, &foreign).await, 200);
    // The order's own session, but 1 € (or in dollars) instead of 99 €.
    let cheap = recorded("checkout.session.completed", order, &session, 100)
        .replace("evt_1QdXyZA1b2C3d4E5completed", "evt_review_cheap");
    assert_eq!(deliver(&app, &cheap).await, 200);
    let dollars = recorded("checkout.session.completed", order, &session, 9900)
        .replace("evt_1QdXyZA1b2C3d4E5completed", "evt_review_usd")
        .replace("\"currency\": \"eur\"", "\"currency\": \"usd\"");
    assert!(dollars.contains("\"usd\""));
    assert_eq!(deliver(&app, &dollars).await, 200);
    assert_eq!(
        purchases(&app, owner.org()).await,
        (0, 0, 0),
        "nothing paid by another session's or another amount's event"
    );
    assert_eq!(only_order(&app, owner.org()).await.1, "pending");
    // The real payment, at Stripe and then its event: paid once.
    fake.pay(&session);
    let real = recorded("checkout.session.completed", order, &session, 9900)
        .replace("evt_1QdXyZA1b2C3d4E5completed", "evt_review_real");
    assert_eq!(deliver(&app, &real).await, 200);
    assert_eq!(purchases(&app, owner.org()).await, (1, 1, 1));
    assert_ledger_clean(&app.pool).await;
}

/// Review: a renewal is charged off session; it has no Checkout Session until its owner pays it
/// by hand. The period of a suspended subscription renews with its order pending and not
/// charged: the reconciliation job must not take it for « a session lost between Stripe's answer
/// and saving it » and open a Checkout Session nobody asked for, whose expiry a day later expires
/// the order, after which the owner's « Régler » only finds an expired order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suspended_subscription_s_renewal_stays_payable_whatever_the_reconciliation() {
    let stripe = stripe_renewals().await;
    let (app, fake, context, renewals) =
        (&stripe.app, &stripe.fake, &stripe.context, &stripe.renewals);
    let owner = app.owner("eglise").await;
    // Unpaid past its retries: suspended.
    sqlx::query("UPDATE subscriptions SET status = 'suspended', past_due_since = $2, failed_charges = 4 WHERE organisation_id = $1")
        .bind(owner.org())
        .bind(time::macros::datetime!(2026-11-20 09:00 UTC))
        .execute(&app.pool)
        .await
        .unwrap();
    // The period ends (1 January, 00:00 Paris): renewed, its order waits for the owner.
    let end = time::macros::datetime!(2026-12-31 23:00 UTC);
    app.clock.set(end);
    assert_eq!(
        nanoclip::services::billing::renew_due(&app.pool, renewals, end)
            .await
            .unwrap(),
        1
    );
    let job = nanoclip::jobs::Job::ReconcilePayments;
    app.clock.advance(time::Duration::minutes(3));
    nanoclip::jobs::run(&app.pool, job, app.clock.now(), context)
        .await
        .unwrap();
    // Whatever the job did, a day later any session it made has expired at Stripe.
    {
        let mut state = fake.state.lock().unwrap();
        for session in state.sessions.values_mut() {
            session["status"] = json!("expired");
        }
    }
    app.clock.advance(time::Duration::days(1));
    nanoclip::jobs::run(&app.pool, job, app.clock.now(), context)
        .await
        .unwrap();
    let state: String = sqlx::query_scalar(
        "SELECT state FROM orders WHERE organisation_id = $1 AND kind = 'renewal' AND period_number = 2",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(state, "pending", "the renewal is still to pay");
    // The owner pays from the banner: to Stripe's page.
    let browser = app.sign_in_again(&owner).await;
    let response = browser
        .submit("/abonnement", "/abonnement/reglement", &[])
        .await;
    assert_eq!(response.status(), 303);
    let to = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with("https://checkout.stripe.test/c/pay/"),
        "the owner is sent to pay, not to {to}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resuming_a_payment_later_sends_stripe_the_same_parameters_under_the_same_key() {
    let fake = FakeStripe::start().await;
    let app = spawn_app_with(stripe_config(&fake), None).await;
    let owner = app.owner("eglise").await;
    fake.fail_next(1);
    let (_, html) = owner.browser.html("/achats/pack-10").await;
    let fields = ["csrf", "cle", "prix"].map(|n| {
        (
            n,
            attr(&html, &format!("input[name={n}]"), "value").unwrap(),
        )
    });
    let send = || {
        owner
            .browser
            .client
            .post(format!("{}/achats/pack-10", owner.browser.base))
            .form(&fields)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 503);
    // 40 minutes later (the order lives an hour): the same call, the same parameters.
    app.clock.advance(time::Duration::minutes(40));
    let resumed = send().await.unwrap();
    assert_eq!(
        resumed.status(),
        303,
        "Stripe must not see the key with other parameters"
    );
    let made = fake.requests("POST", "/v1/checkout/sessions").await;
    assert_eq!(made.len(), 2);
    assert_eq!(form(&made[0]), form(&made[1]));
}

/// A portal on the fake Stripe with what its renewals and jobs need, its clock on 1 December 2026.
struct StripeRenewals {
    fake: FakeStripe,
    context: nanoclip::jobs::Context,
    renewals: nanoclip::services::billing::Renewals,
    app: TestApp,
}

async fn stripe_renewals() -> StripeRenewals {
    let fake = FakeStripe::start().await;
    let config = stripe_config(&fake);
    let context = jobs(&config);
    let renewals = nanoclip::services::billing::Renewals {
        payments: Payments::from_config(&config).unwrap(),
        public_url: config.public_url.clone(),
    };
    let app = spawn_app_with(config, None).await;
    app.clock.set(time::macros::datetime!(2026-12-01 09:00 UTC));
    StripeRenewals {
        fake,
        context,
        renewals,
        app,
    }
}

/// A card on file for the organisation's renewals: the fake charges it, or declines it.
async fn card_on_file(app: &TestApp, org: Uuid) {
    sqlx::query(
        "UPDATE subscriptions SET payment_customer = 'cus_banc', payment_method = 'pm_banc'
         WHERE organisation_id = $1",
    )
    .bind(org)
    .execute(&app.pool)
    .await
    .unwrap();
}

/// The renewal of the organisation's second period: its state and its Stripe session.
async fn second_renewal(app: &TestApp, org: Uuid) -> (String, Option<String>) {
    sqlx::query_as(
        "SELECT state, provider_ref FROM orders
         WHERE organisation_id = $1 AND kind = 'renewal' AND period_number = 2",
    )
    .bind(org)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// The owner's « Régler » on /abonnement (signed in again): where it sends them.
async fn pay_by_hand(app: &TestApp, owner: &crate::common::accounts::Account) -> String {
    let browser = app.sign_in_again(owner).await;
    let response = browser
        .submit("/abonnement", "/abonnement/reglement", &[])
        .await;
    assert_eq!(response.status(), 303);
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The organisation's subscription status.
async fn subscription_status(app: &TestApp, org: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM subscriptions WHERE organisation_id = $1")
        .bind(org)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The period ends (1 January 2027, 00:00 in Paris) and an hour later the renewals run.
async fn renew_at_new_year(stripe: &StripeRenewals) {
    let app = &stripe.app;
    app.clock
        .set(time::macros::datetime!(2026-12-31 23:00 UTC) + time::Duration::hours(1));
    nanoclip::services::billing::renew_due(&app.pool, &stripe.renewals, app.clock.now())
        .await
        .unwrap();
}

/// A renewal whose off-session charge failed is paid by hand on Stripe's page (the banner's
/// button), and its webhook never comes (lost, or the portal was down): the reconciliation job
/// asks Stripe about it as about a pending payment, so the subscription is paid up and active
/// again, once, rather than staying past due and being suspended for a renewal its owner paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_renewal_paid_by_hand_is_settled_by_the_reconciliation_when_its_webhook_is_lost() {
    let stripe = stripe_renewals().await;
    let (app, fake) = (&stripe.app, &stripe.fake);
    let owner = app.owner("eglise").await;
    // A card on file, which the bank declines at the period's end.
    card_on_file(app, owner.org()).await;
    fake.decline(Some("insufficient_funds"));
    renew_at_new_year(&stripe).await;
    let renewal = |org: Uuid| async move {
        (
            second_renewal(app, org).await.0,
            subscription_status(app, org).await,
        )
    };
    assert_eq!(
        renewal(owner.org()).await,
        ("failed".to_owned(), "past_due".to_owned())
    );
    // The owner pays from the banner, on Stripe's page; no webhook reaches the portal.
    let browser = app.sign_in_again(&owner).await;
    let response = browser
        .submit("/abonnement", "/abonnement/reglement", &[])
        .await;
    assert_eq!(response.status(), 303);
    let to = response.headers()["location"].to_str().unwrap().to_owned();
    let session = to
        .rsplit('/')
        .next()
        .expect("a Checkout Session's address")
        .to_owned();
    fake.pay(&session);
    // The job, a few minutes later, twice: paid up once.
    let job = nanoclip::jobs::Job::ReconcilePayments;
    for _ in 0..2 {
        app.clock.advance(time::Duration::minutes(3));
        nanoclip::jobs::run(&app.pool, job, app.clock.now(), &stripe.context)
            .await
            .unwrap();
    }
    assert_eq!(
        renewal(owner.org()).await,
        ("paid".to_owned(), "active".to_owned())
    );
    let invoices: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM invoices i JOIN orders o ON o.id = i.order_id
         WHERE o.organisation_id = $1 AND o.kind = 'renewal'",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(invoices, 1, "one invoice for the renewal paid by hand");
    // The card that paid by hand is the one the next renewals are charged to.
    let method: Option<String> =
        sqlx::query_scalar("SELECT payment_method FROM subscriptions WHERE organisation_id = $1")
            .bind(owner.org())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        method.as_deref().is_some_and(|m| m != "pm_banc"),
        "{method:?}"
    );
    assert_ledger_clean(&app.pool).await;
}

/// The owner of a past-due subscription opens Stripe's page to pay the failed renewal by hand,
/// and the retry comes due while that page is open, then again after the owner paid but before
/// Stripe's webhook arrived. The card is charged once: the retry waits for the session that may
/// still pay (or has paid) the renewal, and the reconciliation settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renewal_being_paid_by_hand_is_not_charged_again_by_its_retry() {
    let stripe = stripe_renewals().await;
    let (app, fake) = (&stripe.app, &stripe.fake);
    let owner = app.owner("eglise").await;
    card_on_file(app, owner.org()).await;
    fake.decline(Some("insufficient_funds"));
    renew_at_new_year(&stripe).await;
    assert_eq!(second_renewal(app, owner.org()).await.0, "failed");
    // The owner opens Stripe's page from the banner; meanwhile the bank would accept the card.
    let to = pay_by_hand(app, &owner).await;
    let session = to.rsplit('/').next().unwrap().to_owned();
    fake.decline(None);
    // The first retry's time (a day after the failure) comes while the page is open.
    let renew = || async {
        nanoclip::services::billing::renew_due(&app.pool, &stripe.renewals, app.clock.now())
            .await
            .unwrap();
    };
    app.clock
        .advance(time::Duration::days(1) + time::Duration::hours(1));
    renew().await;
    // The owner pays; the second retry's time comes before any webhook.
    fake.pay(&session);
    app.clock.advance(time::Duration::days(2));
    renew().await;
    let job = nanoclip::jobs::Job::ReconcilePayments;
    nanoclip::jobs::run(&app.pool, job, app.clock.now(), &stripe.context)
        .await
        .unwrap();
    renew().await;
    assert_eq!(
        fake.money_taken(),
        1,
        "the renewal was paid on Stripe's page and charged off session as well"
    );
    assert_eq!(
        (
            second_renewal(app, owner.org()).await.0,
            subscription_status(app, owner.org()).await
        ),
        ("paid".to_owned(), "active".to_owned())
    );
    assert_ledger_clean(&app.pool).await;
}

/// The other way round: while a retry's off-session charge is under way, the owner's « Régler »
/// makes no session and says why; and a session being made (marked, its reference not saved
/// yet) keeps the retry from charging until it may have been made.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renewal_being_charged_is_not_paid_by_hand_meanwhile() {
    let stripe = stripe_renewals().await;
    let (app, fake) = (&stripe.app, &stripe.fake);
    let owner = app.owner("eglise").await;
    card_on_file(app, owner.org()).await;
    fake.decline(Some("card_declined"));
    renew_at_new_year(&stripe).await;
    let order: Uuid = sqlx::query_scalar(
        "SELECT id FROM orders WHERE organisation_id = $1 AND kind = 'renewal' AND period_number = 2",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // A runner has claimed the retry's attempt and waits for the bank.
    sqlx::query(
        "INSERT INTO charge_attempts (order_id, number, idempotency_key, started_at)
         VALUES ($1, 2, 'essai:2', $2)",
    )
    .bind(order)
    .bind(app.clock.now())
    .execute(&app.pool)
    .await
    .unwrap();
    let browser = app.sign_in_again(&owner).await;
    let response = browser
        .submit("/abonnement", "/abonnement/reglement", &[])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/abonnement");
    // The banner says the card is being charged, and offers no « Régler » meanwhile.
    for path in ["/abonnement", "/tableau-de-bord"] {
        let page = browser.get(path).await.text().await.unwrap();
        assert!(
            page.contains("est en cours auprès de votre banque"),
            "{path}: {page}"
        );
        assert!(!page.contains("/abonnement/reglement"), "{path}: {page}");
    }
    assert!(
        fake.requests("POST", "/v1/checkout/sessions")
            .await
            .is_empty()
    );
    assert_eq!(second_renewal(app, owner.org()).await.1, None);
    // The bank answered; a session is being made at the retry's time: no charge yet.
    sqlx::query("UPDATE charge_attempts SET answered_at = $2, outcome = 'card_declined' WHERE order_id = $1 AND number = 2")
        .bind(order)
        .bind(app.clock.now())
        .execute(&app.pool)
        .await
        .unwrap();
    fake.decline(None);
    app.clock
        .advance(time::Duration::days(1) + time::Duration::hours(1));
    sqlx::query("UPDATE orders SET hand_payment_at = $2 WHERE id = $1")
        .bind(order)
        .bind(app.clock.now() - time::Duration::minutes(1))
        .execute(&app.pool)
        .await
        .unwrap();
    let renew = || async {
        nanoclip::services::billing::renew_due(&app.pool, &stripe.renewals, app.clock.now())
            .await
            .unwrap();
    };
    renew().await;
    assert_eq!(fake.money_taken(), 0);
    // No session came of it (its payer never got the page): the retry, put off by an hour,
    // charges then.
    app.clock.advance(time::Duration::minutes(30));
    renew().await;
    assert_eq!(fake.money_taken(), 0);
    app.clock.advance(time::Duration::minutes(31));
    renew().await;
    assert_eq!(fake.money_taken(), 1);
    assert_eq!(
        (
            second_renewal(app, owner.org()).await.0,
            subscription_status(app, owner.org()).await
        ),
        ("paid".to_owned(), "active".to_owned())
    );
    assert_ledger_clean(&app.pool).await;
}

/// A renewal that is owed while the subscription is suspended (its period rolled after the
/// last retry failed) is paid by hand; its owner leaves Stripe's page and Stripe's
/// `checkout.session.expired` arrives a day later. The renewal stays owed and payable: the
/// session is forgotten, and « Régler » makes a new one (the renewal used to expire with it,
/// leaving a suspended subscription that nothing could pay).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renewal_whose_session_expires_by_webhook_stays_payable() {
    let stripe = stripe_renewals().await;
    let (app, fake) = (&stripe.app, &stripe.fake);
    let owner = app.owner("eglise").await;
    card_on_file(app, owner.org()).await;
    fake.decline(Some("card_declined"));
    renew_at_new_year(&stripe).await;
    let renewals = &stripe.renewals;
    // An hour after each retry is due (the first failure was at 1 January, 01:00 in Paris).
    let renew = |days: i64| async move {
        let at = time::macros::datetime!(2027-01-01 01:00 +01:00) + time::Duration::days(days);
        app.clock.set(at + time::Duration::hours(1));
        nanoclip::services::billing::renew_due(&app.pool, renewals, app.clock.now())
            .await
            .unwrap();
    };
    for days in [1, 3, 7] {
        renew(days).await;
    }
    assert_eq!(subscription_status(app, owner.org()).await, "suspended");
    // The next period starts on 1 February: its renewal is owed, not charged (suspended).
    renew(31).await;
    let third = || async {
        sqlx::query_as::<_, (Uuid, String, Option<String>, i64)>(
            "SELECT id, state, provider_ref, amount_cents FROM orders
             WHERE organisation_id = $1 AND kind = 'renewal' AND period_number = 3",
        )
        .bind(owner.org())
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    assert_eq!(third().await.1, "pending");
    let pay = || pay_by_hand(app, &owner);
    let first = pay().await;
    let (order, _, session, amount) = third().await;
    let session = session.expect("the order's session");
    assert!(first.ends_with(&session), "{first}");
    // The owner leaves; a day later Stripe says the session expired.
    app.clock.advance(time::Duration::days(1));
    let expired = recorded("checkout.session.expired", order, &session, amount);
    assert_eq!(deliver(app, &expired).await, 200);
    let (_, state, forgotten, _) = third().await;
    assert_eq!((state.as_str(), forgotten), ("pending", None));
    // « Régler » again, while Stripe still keeps the first session's idempotency key: a new
    // session for the same renewal (the order's next round), which pays it.
    let second = pay().await;
    assert!(
        second.starts_with("https://checkout.stripe.test/"),
        "{second}"
    );
    assert!(!second.ends_with(&session), "{second}");
    let new_session = second.rsplit('/').next().unwrap().to_owned();
    fake.pay(&new_session);
    let job = nanoclip::jobs::Job::ReconcilePayments;
    app.clock.advance(time::Duration::minutes(3));
    nanoclip::jobs::run(&app.pool, job, app.clock.now(), &stripe.context)
        .await
        .unwrap();
    assert_eq!(third().await.1, "paid");
    assert_eq!(subscription_status(app, owner.org()).await, "active");
    assert_eq!(fake.money_taken(), 1);
    assert_ledger_clean(&app.pool).await;
}

/// A debit still processing whose webhook never comes: the renewals ask Stripe about its
/// PaymentIntent (by its id, never by charging again) an hour later, and again until it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_processing_renewal_debit_without_its_webhook_is_asked_about_until_it_clears() {
    let stripe = stripe_renewals().await;
    let (app, fake) = (&stripe.app, &stripe.fake);
    let owner = app.owner("eglise").await;
    card_on_file(app, owner.org()).await;
    fake.state.lock().unwrap().processing = true;
    renew_at_new_year(&stripe).await;
    let renew = || async {
        nanoclip::services::billing::renew_due(&app.pool, &stripe.renewals, app.clock.now())
            .await
            .unwrap();
    };
    let charges = || async { fake.requests("POST", "/v1/payment_intents").await.len() };
    let asked = || async { fake.requests("GET", "/v1/payment_intents/").await.len() };
    // Not a failure: the renewal stays pending, the subscription awaits it (not past due).
    assert_eq!(second_renewal(app, owner.org()).await.0, "pending");
    assert_eq!(subscription_status(app, owner.org()).await, "unpaid");
    // Ten minutes on, nothing is asked yet; an hour on, the PaymentIntent is read, not charged.
    app.clock.advance(time::Duration::minutes(11));
    renew().await;
    assert_eq!((charges().await, asked().await), (1, 0));
    app.clock.advance(time::Duration::hours(1));
    renew().await;
    assert_eq!((charges().await, asked().await), (1, 1));
    assert_eq!(second_renewal(app, owner.org()).await.0, "pending");
    // It clears; the next look pays the renewal, once.
    for intent in fake.state.lock().unwrap().intents.values_mut() {
        intent["status"] = json!("succeeded");
    }
    app.clock.advance(time::Duration::hours(1));
    renew().await;
    assert_eq!(second_renewal(app, owner.org()).await.0, "paid");
    assert_eq!(subscription_status(app, owner.org()).await, "active");
    app.clock.advance(time::Duration::days(2));
    renew().await;
    assert_eq!((fake.money_taken(), charges().await), (1, 1));
    assert_ledger_clean(&app.pool).await;
}

/// A past-due church opens Stripe's page to pay January at 23:50 (Paris); at midnight the
/// renewals open February and its retry comes due. February is not charged while January's
/// page may still pay (January's late payment pays February): the card is charged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_next_period_is_not_charged_while_the_last_one_is_being_paid_by_hand() {
    let stripe = stripe_renewals().await;
    let (app, fake) = (&stripe.app, &stripe.fake);
    let owner = app.owner("eglise").await;
    card_on_file(app, owner.org()).await;
    let february = time::macros::datetime!(2027-01-31 23:00 UTC);
    sqlx::query(
        "UPDATE subscriptions SET status = 'past_due', past_due_since = $2, failed_charges = 2,
                next_retry_at = $3 WHERE organisation_id = $1",
    )
    .bind(owner.org())
    .bind(time::macros::datetime!(2026-11-20 09:00 UTC))
    .bind(february)
    .execute(&app.pool)
    .await
    .unwrap();
    renew_at_new_year(&stripe).await;
    let (order, amount): (Uuid, i64) = sqlx::query_as(
        "SELECT id, amount_cents FROM orders WHERE organisation_id = $1 AND kind = 'renewal' AND period_number = 2",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    app.clock.set(february - time::Duration::minutes(10));
    pay_by_hand(app, &owner).await;
    let session = second_renewal(app, owner.org())
        .await
        .1
        .expect("January's session");
    // Midnight in Paris: February opens, its retry is due.
    app.clock.set(february);
    nanoclip::services::billing::renew_due(&app.pool, &stripe.renewals, february)
        .await
        .unwrap();
    assert_eq!(
        fake.requests("POST", "/v1/payment_intents").await.len(),
        0,
        "February charged off session while January's page was open"
    );
    // 00:02: January is paid; it pays February.
    app.clock.set(february + time::Duration::minutes(2));
    fake.pay(&session);
    let paid = recorded("checkout.session.completed", order, &session, amount);
    assert_eq!(deliver(app, &paid).await, 200);
    app.clock.set(february + time::Duration::hours(2));
    nanoclip::services::billing::renew_due(&app.pool, &stripe.renewals, app.clock.now())
        .await
        .unwrap();
    assert_eq!(fake.money_taken(), 1);
    assert_eq!(subscription_status(app, owner.org()).await, "active");
    assert_ledger_clean(&app.pool).await;
}

/// A renewal's hand-payment session completed with a delayed method (a bank debit) that then
/// failed, its webhook lost: the reconciliation reads the session's payment, forgets the
/// session, and the retry charges the card again (the session used to read as open for ever,
/// blocking every retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hand_payment_whose_debit_failed_is_forgotten_and_the_retry_goes_on() {
    let stripe = stripe_renewals().await;
    let (app, fake) = (&stripe.app, &stripe.fake);
    let owner = app.owner("eglise").await;
    card_on_file(app, owner.org()).await;
    fake.decline(Some("insufficient_funds"));
    renew_at_new_year(&stripe).await;
    pay_by_hand(app, &owner).await;
    let session = second_renewal(app, owner.org())
        .await
        .1
        .expect("the session");
    {
        let mut state = fake.state.lock().unwrap();
        let s = state.sessions.get_mut(&session).unwrap();
        s["status"] = json!("complete");
        s["payment_status"] = json!("unpaid");
        s["payment_intent"] = json!("pi_debit_refuse");
        state.intents.insert(
            "pi_debit_refuse".into(),
            json!({"id": "pi_debit_refuse", "object": "payment_intent", "status": "requires_payment_method",
                   "last_payment_error": {"type": "card_error", "code": "payment_method_provider_decline"}}),
        );
    }
    app.clock.advance(time::Duration::minutes(3));
    let job = nanoclip::jobs::Job::ReconcilePayments;
    nanoclip::jobs::run(&app.pool, job, app.clock.now(), &stripe.context)
        .await
        .unwrap();
    assert_eq!(
        second_renewal(app, owner.org()).await,
        ("failed".to_owned(), None)
    );
    fake.decline(None);
    app.clock
        .advance(time::Duration::days(1) + time::Duration::hours(1));
    nanoclip::services::billing::renew_due(&app.pool, &stripe.renewals, app.clock.now())
        .await
        .unwrap();
    assert_eq!(second_renewal(app, owner.org()).await.0, "paid");
    assert_eq!(fake.money_taken(), 1);
    assert_ledger_clean(&app.pool).await;
}

/// The settlement a naive webhook handler would write: the order read without its lock, the
/// invoice numbered by the largest number plus one (no counter row), the state set without
/// checking what it was. Each call waits at `barrier` between its reads and its writes, as
/// concurrent deliveries of webhooks do.
async fn naive_settle(
    pool: sqlx::PgPool,
    order: Uuid,
    now: time::OffsetDateTime,
    barrier: Arc<tokio::sync::Barrier>,
) -> anyhow::Result<()> {
    // Every call reaches the barrier, even one whose reads failed (the others wait for it).
    let read = async {
        let mut conn = pool.acquire().await?;
        let found = nanoclip::db::billing::order(&mut conn, order)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no order {order}"))?;
        let next: i32 = sqlx::query_scalar(
            "SELECT coalesce(max(sequence), 0) + 1 FROM invoices WHERE series = 'FA' AND year = $1",
        )
        .bind(now.year())
        .fetch_one(&mut *conn)
        .await?;
        anyhow::Ok((conn, found, next))
    }
    .await;
    barrier.wait().await;
    let (mut conn, found, next) = read?;
    if found.state == nanoclip::domain::billing::OrderState::Paid {
        return Ok(());
    }
    let (ht, tva) = nanoclip::domain::billing::split_ttc(found.amount_cents);
    let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
    nanoclip::db::billing::insert_invoice(
        &mut tx,
        &format!("FA-{}-{next:06}", now.year()),
        "FA",
        now.year(),
        next,
        &found,
        "Paroisse",
        "tresorier@paroisse.test",
        ht,
        tva,
        now,
    )
    .await?;
    sqlx::query("UPDATE orders SET state = 'paid', paid_at = $2, updated_at = $2 WHERE id = $1")
        .bind(order)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What a storm of settlements left: calls that failed, orders paid, invoices and their numbers.
#[derive(Debug)]
struct Settled {
    errors: usize,
    paid: i64,
    numbers: Vec<i32>,
}

/// Settles `orders` as paid, each `times` at once (every call lined up at a barrier), through
/// `settle`; then counts.
async fn settle_storm<F, Fut>(
    app: &TestApp,
    org: Uuid,
    orders: &[Uuid],
    times: usize,
    settle: F,
) -> Settled
where
    F: Fn(sqlx::PgPool, Uuid, Arc<tokio::sync::Barrier>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(orders.len() * times));
    let calls: Vec<_> = orders
        .iter()
        .flat_map(|order| std::iter::repeat_n(*order, times))
        .map(|order| tokio::spawn(settle(app.pool.clone(), order, barrier.clone())))
        .collect();
    let mut errors = 0;
    let all = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        futures_util::future::join_all(calls),
    )
    .await
    .expect("the storm ends within a minute");
    for call in all {
        if !matches!(call, Ok(Ok(()))) {
            errors += 1;
        }
    }
    let paid: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE organisation_id = $1 AND state = 'paid'",
    )
    .bind(org)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let numbers: Vec<i32> = sqlx::query_scalar(
        "SELECT i.sequence FROM invoices i WHERE i.organisation_id = $1 AND i.series = 'FA'
         ORDER BY i.sequence",
    )
    .bind(org)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    Settled {
        errors,
        paid,
        numbers,
    }
}

/// Concurrent confirmations of 16 payments, each delivered twice at the same moment: through
/// the service, each order is paid once with one invoice, numbered without gap or duplicate.
/// The same storm catches a naive settlement (no lock on the order, the invoice numbered by the
/// largest number plus one): it fails calls (the invoices' unique numbers and one invoice per
/// order refuse its writes), or pays with duplicate or missing numbers. The control is caught
/// by its numbering (every call reads the same largest number); a settlement that numbered
/// from the counter row without locking the order would be refused by the one invoice per
/// order, which this storm does not single out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_settlement_storm_pays_each_order_once_and_catches_a_naive_settlement() {
    let app = spawn_app().await;
    app.clock.set(time::macros::datetime!(2026-12-01 09:00 UTC));
    let now = app.clock.now();
    const ORDERS: usize = 16;
    // Two organisations: the service's storm on one, the naive control's on the other.
    let mut orders_of = Vec::new();
    for _ in 0..2 {
        let owner = app.owner("reseau").await;
        let orders = pack_orders(&app, &owner, ORDERS, billing::Provider::Test).await;
        orders_of.push((owner.org(), orders));
    }
    let (service_org, service_orders) = &orders_of[0];
    let service = settle_storm(
        &app,
        *service_org,
        service_orders,
        2,
        |pool, order, barrier| async move {
            barrier.wait().await;
            billing::settle(&pool, order, billing::Settlement::Paid, None, now).await?;
            Ok(())
        },
    )
    .await;
    assert_eq!(service.errors, 0, "{service:?}");
    assert_eq!(service.paid, ORDERS as i64, "{service:?}");
    assert_eq!(
        service.numbers,
        (1..=ORDERS as i32).collect::<Vec<_>>(),
        "one invoice each, no gap"
    );
    let grants: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM credit_ledger WHERE organisation_id = $1 AND kind = 'grant' AND reference LIKE 'order:%'",
    )
    .bind(service_org)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(grants, ORDERS as i64, "credits granted once per order");
    // The control, on 4 of the other organisation's orders (numbers go on from the service's):
    // each naive call holds a pooled connection at the barrier, so no more calls than the
    // pool's 20 connections.
    const NAIVE_ORDERS: usize = 4;
    let (naive_org, naive_orders) = &orders_of[1];
    let naive = settle_storm(
        &app,
        *naive_org,
        &naive_orders[..NAIVE_ORDERS],
        2,
        |pool, order, barrier| naive_settle(pool, order, now, barrier),
    )
    .await;
    let expected: Vec<i32> = (ORDERS as i32 + 1..=(ORDERS + NAIVE_ORDERS) as i32).collect();
    println!("the naive control: {naive:?}");
    assert!(
        naive.errors > 0 || naive.paid != NAIVE_ORDERS as i64 || naive.numbers != expected,
        "the storm must catch the naive settlement: {naive:?}"
    );
    assert_ledger_clean(&app.pool).await;
}

/// A renewal's session that expired unpaid (its owner left Stripe's page) is forgotten by the
/// reconciliation, never ends the renewal: a failed renewal stays failed with its retry, a
/// pending one stays pending, and each can still be paid by hand through a new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_abandoned_session_of_a_renewal_is_forgotten_and_the_renewal_stays_payable() {
    let stripe = stripe_renewals().await;
    let (app, fake) = (&stripe.app, &stripe.fake);
    // One organisation whose card is declined (a failed renewal), one with no card and
    // suspended (a pending renewal, waiting for its owner).
    let declined = app.owner("eglise").await;
    card_on_file(app, declined.org()).await;
    let suspended = app.owner("eglise").await;
    sqlx::query("UPDATE subscriptions SET status = 'suspended', past_due_since = $2, failed_charges = 4 WHERE organisation_id = $1")
        .bind(suspended.org())
        .bind(time::macros::datetime!(2026-11-20 09:00 UTC))
        .execute(&app.pool)
        .await
        .unwrap();
    fake.decline(Some("card_declined"));
    renew_at_new_year(&stripe).await;
    let renewal = |org: Uuid| second_renewal(app, org);
    let job = nanoclip::jobs::Job::ReconcilePayments;
    for (owner, state) in [(&declined, "failed"), (&suspended, "pending")] {
        // The owner goes to Stripe's page and leaves it; a day later the session has expired.
        let browser = app.sign_in_again(owner).await;
        let first = browser
            .submit("/abonnement", "/abonnement/reglement", &[])
            .await;
        assert_eq!(first.status(), 303);
        let (_, session) = renewal(owner.org()).await;
        let session = session.expect("the session the owner was sent to");
        fake.state
            .lock()
            .unwrap()
            .sessions
            .get_mut(&session)
            .unwrap()["status"] = json!("expired");
        app.clock.advance(time::Duration::days(1));
        nanoclip::jobs::run(&app.pool, job, app.clock.now(), &stripe.context)
            .await
            .unwrap();
        assert_eq!(
            renewal(owner.org()).await,
            (state.to_owned(), None),
            "the renewal stays {state}, its expired session forgotten"
        );
        // Asked no more about it.
        let asked = fake
            .requests("GET", &format!("/v1/checkout/sessions/{session}"))
            .await
            .len();
        app.clock.advance(time::Duration::minutes(5));
        nanoclip::jobs::run(&app.pool, job, app.clock.now(), &stripe.context)
            .await
            .unwrap();
        assert_eq!(
            fake.requests("GET", &format!("/v1/checkout/sessions/{session}"))
                .await
                .len(),
            asked
        );
        // Paying by hand again (signed in again: a day has gone by, and Stripe has forgotten
        // the order's idempotency key, as it does after 24 hours): a new session, which pays it.
        fake.state
            .lock()
            .unwrap()
            .by_key
            .retain(|_, id| *id != session);
        let browser = app.sign_in_again(owner).await;
        let again = browser
            .submit("/abonnement", "/abonnement/reglement", &[])
            .await;
        assert_eq!(again.status(), 303);
        let (_, new_session) = renewal(owner.org()).await;
        let new_session = new_session.expect("a new session");
        assert_ne!(new_session, session);
        fake.pay(&new_session);
        app.clock.advance(time::Duration::minutes(5));
        nanoclip::jobs::run(&app.pool, job, app.clock.now(), &stripe.context)
            .await
            .unwrap();
        assert_eq!(renewal(owner.org()).await.0, "paid");
    }
    assert_ledger_clean(&app.pool).await;
}

/// Stripe ends an unpaid Checkout Session after a day and tells the portal with a signed
/// « checkout.session.expired » webhook. For a renewal paid by hand (here a suspended
/// subscription's, pending, waiting for its owner) that session is only one attempt of a debt:
/// the webhook must forget it as the reconciliation does, not end the renewal (ended, it could
/// no longer be paid: « Régler » showed only its result page, no retry claimed it, and the
/// subscription stayed suspended with no way to pay).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_expired_webhook_of_a_renewal_s_abandoned_session_leaves_it_payable() {
    let stripe = stripe_renewals().await;
    let (app, fake) = (&stripe.app, &stripe.fake);
    let owner = app.owner("eglise").await;
    sqlx::query("UPDATE subscriptions SET status = 'suspended', past_due_since = $2, failed_charges = 4 WHERE organisation_id = $1")
        .bind(owner.org())
        .bind(time::macros::datetime!(2026-11-20 09:00 UTC))
        .execute(&app.pool)
        .await
        .unwrap();
    renew_at_new_year(&stripe).await;
    // The owner goes to Stripe's page from the banner, and leaves it.
    let browser = app.sign_in_again(&owner).await;
    let first = browser
        .submit("/abonnement", "/abonnement/reglement", &[])
        .await;
    assert_eq!(first.status(), 303);
    let (state, session) = second_renewal(app, owner.org()).await;
    assert_eq!(state, "pending");
    let session = session.expect("the session the owner was sent to");
    let order: Uuid = sqlx::query_scalar(
        "SELECT id FROM orders WHERE organisation_id = $1 AND kind = 'renewal' AND period_number = 2",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // A day later Stripe expires the session and sends its webhook.
    fake.state
        .lock()
        .unwrap()
        .sessions
        .get_mut(&session)
        .unwrap()["status"] = json!("expired");
    app.clock.advance(time::Duration::days(1));
    let expired = recorded("checkout.session.expired", order, &session, 2900);
    assert_eq!(deliver(app, &expired).await, 200);
    assert_eq!(
        second_renewal(app, owner.org()).await.0,
        "pending",
        "the renewal is still owed: an abandoned session must not end it"
    );
    // The owner can still pay it (Stripe has forgotten the order's key after a day).
    fake.state
        .lock()
        .unwrap()
        .by_key
        .retain(|_, id| *id != session);
    let browser = app.sign_in_again(&owner).await;
    let again = browser
        .submit("/abonnement", "/abonnement/reglement", &[])
        .await;
    assert_eq!(again.status(), 303);
    let to = again.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with("https://checkout.stripe.test/c/pay/"),
        "the owner is sent to pay, not to {to}"
    );
    assert_ledger_clean(&app.pool).await;
}

/// A renewal's off-session charge that Stripe answers « processing » (a bank debit that clears
/// days later) is not a failure: no retry charges the card again under a new key while the
/// first debit is under way (that used to pay the renewal twice), and the debit's webhook pays
/// the renewal once when it clears.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renewal_whose_debit_is_processing_is_not_charged_again_by_its_retry() {
    let stripe = stripe_renewals().await;
    let (app, fake) = (&stripe.app, &stripe.fake);
    let owner = app.owner("eglise").await;
    card_on_file(app, owner.org()).await;
    // The bank takes a few days to clear the renewal's debit.
    fake.state.lock().unwrap().processing = true;
    renew_at_new_year(&stripe).await;
    let charges = || async { fake.requests("POST", "/v1/payment_intents").await.len() };
    assert_eq!(charges().await, 1);
    // The retry's time comes (a day later) while the first debit is still processing.
    fake.state.lock().unwrap().processing = false;
    app.clock
        .advance(time::Duration::days(1) + time::Duration::hours(1));
    nanoclip::services::billing::renew_due(&app.pool, &stripe.renewals, app.clock.now())
        .await
        .unwrap();
    // The first debit clears, and Stripe says so.
    let order: Uuid = sqlx::query_scalar(
        "SELECT id FROM orders WHERE organisation_id = $1 AND kind = 'renewal' AND period_number = 2",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let first = {
        let mut state = fake.state.lock().unwrap();
        let (id, intent) = state
            .intents
            .iter_mut()
            .find(|(_, intent)| intent["status"] == "processing")
            .map(|(id, intent)| (id.clone(), intent))
            .expect("the debit still processing");
        intent["status"] = json!("succeeded");
        id
    };
    let cleared = json!({
        "id": "evt_debit_cleared",
        "object": "event",
        "type": "payment_intent.succeeded",
        "data": {"object": {
            "id": first, "object": "payment_intent", "status": "succeeded",
            "amount": 2900, "amount_received": 2900, "currency": "eur",
            "metadata": {"order_id": order.to_string()}}}
    })
    .to_string();
    assert_eq!(deliver(app, &cleared).await, 200);
    assert_eq!(second_renewal(app, owner.org()).await.0, "paid");
    assert_eq!(
        (fake.money_taken(), charges().await),
        (1, 1),
        "(money taken, off-session charges): the renewal was charged again while its debit was processing"
    );
    assert_ledger_clean(&app.pool).await;
}

/// A suspended church pays January's renewal by hand at 23:50 on 31 January (Paris). Its
/// Checkout Session has no end of its own (Stripe's default: a day), so Stripe takes the payment
/// at 00:02, after the renewals have opened February. The money must not be taken for nothing
/// (it used to be: no allotment, still suspended, nothing refunded): January's late payment
/// pays February, still owed, and the subscription is active again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renewal_paid_by_hand_just_after_its_period_ended_is_applied_or_refunded() {
    let stripe = stripe_renewals().await;
    let (app, fake) = (&stripe.app, &stripe.fake);
    let owner = app.owner("eglise").await;
    sqlx::query("UPDATE subscriptions SET status = 'suspended', past_due_since = $2, failed_charges = 4 WHERE organisation_id = $1")
        .bind(owner.org())
        .bind(time::macros::datetime!(2026-11-20 09:00 UTC))
        .execute(&app.pool)
        .await
        .unwrap();
    renew_at_new_year(&stripe).await;
    let order: Uuid = sqlx::query_scalar(
        "SELECT id FROM orders WHERE organisation_id = $1 AND kind = 'renewal' AND period_number = 2",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // 31 January, 23:50 in Paris: the owner opens Stripe's page to pay January.
    app.clock.set(time::macros::datetime!(2027-01-31 22:50 UTC));
    let browser = app.sign_in_again(&owner).await;
    let response = browser
        .submit("/abonnement", "/abonnement/reglement", &[])
        .await;
    assert_eq!(response.status(), 303);
    let (_, session) = second_renewal(app, owner.org()).await;
    let session = session.expect("January's session");
    // Midnight in Paris: the renewals open February.
    let february = time::macros::datetime!(2027-01-31 23:00 UTC);
    app.clock.set(february);
    nanoclip::services::billing::renew_due(&app.pool, &stripe.renewals, february)
        .await
        .unwrap();
    // February's renewal failed meanwhile (a charge declined): still owed, it is what January's
    // late payment pays.
    sqlx::query(
        "UPDATE orders SET state = 'failed', failure = 'card_declined'
         WHERE organisation_id = $1 AND kind = 'renewal' AND period_number = 3",
    )
    .bind(owner.org())
    .execute(&app.pool)
    .await
    .unwrap();
    // 00:02: Stripe takes the payment and says so.
    app.clock.set(february + time::Duration::minutes(2));
    fake.pay(&session);
    let paid = recorded("checkout.session.completed", order, &session, 2900);
    assert_eq!(deliver(app, &paid).await, 200);
    assert_eq!(fake.money_taken(), 1);
    let (granted, status, refunds, state, invoices): (i64, String, i64, String, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM credit_buckets WHERE organisation_id = $1 AND source = 'allotment'
                   AND grant_key IN ('period:2', 'period:3')),
                (SELECT status FROM subscriptions WHERE organisation_id = $1),
                (SELECT count(*) FROM refunds WHERE organisation_id = $1),
                (SELECT state FROM orders WHERE id = $2),
                (SELECT count(*) FROM invoices WHERE order_id = $2 AND series = 'FA')",
    )
    .bind(owner.org())
    .bind(order)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        granted > 0 || status == "active" || refunds > 0,
        "29 € taken and nothing given: order {state} with {invoices} invoice(s), allotments granted {granted}, subscription {status}, refunds {refunds}"
    );
    // The policy: January's late payment pays February, which the church had not paid: its
    // allotment, the subscription active again, February's renewal closed as paid by it.
    let february_order: (String, Option<String>) = sqlx::query_as(
        "SELECT state, failure FROM orders WHERE organisation_id = $1 AND kind = 'renewal' AND period_number = 3",
    )
    .bind(owner.org())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        (granted, status.as_str(), state.as_str(), invoices, refunds),
        (1, "active", "paid", 1, 0)
    );
    assert_eq!(
        february_order,
        (
            "cancelled".to_owned(),
            Some("paid_by_late_renewal".to_owned())
        )
    );
    let history = browser
        .get("/achats/historique")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        history.contains("Réglée par le paiement du renouvellement précédent"),
        "{history}"
    );
    assert_ledger_clean(&app.pool).await;
}
