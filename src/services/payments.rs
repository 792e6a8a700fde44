//! The payment provider's boundary. Two implementations go through the same order state machine
//! (`services::billing`): the built-in test provider (the « Paiement de test » page, where the
//! payer's choice settles the order at once) and Stripe Checkout (a Checkout Session made here,
//! the payer sent to Stripe, the payment confirmed by Stripe's webhooks, or by asking Stripe:
//! the return page and the reconciliation job).
//!
//! Every outgoing call that changes something carries an `Idempotency-Key` saved in the database
//! before its first attempt (the order's key for its Checkout Session, the refund's key for a
//! refund): a retry after a crash or a timeout asks for the same thing again and Stripe answers
//! with what it did the first time.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{Config, Payments as Choice};
use crate::db::billing::Order;

/// Stripe's API version this adapter is written against (its answers' shapes).
pub const STRIPE_VERSION: &str = "2024-06-20";

/// Who takes the payments.
#[derive(Debug, Clone, Default)]
pub enum Payments {
    #[default]
    Test,
    Stripe(Stripe),
}

/// Why a call to the provider did not give an answer we can act on.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// Unreachable, slow, rate-limited or failing on its side: try again later (same key).
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request (its error code): trying again will not help.
    #[error("the payment provider refused: {0}")]
    Refused(String),
}

/// Where to send the payer, and the provider's reference for the payment (a Checkout Session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub url: String,
    pub reference: Option<String>,
}

/// What the provider says of a payment it was asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Paid: the order is paid.
    Paid,
    /// Still open: the payer may still pay.
    Open,
    /// The payment was attempted and failed for good.
    Failed(String),
    /// The session ended without a payment.
    Expired,
}

/// What an off-session charge gave: its status, and the provider's payment (a PaymentIntent),
/// to ask about again while it is processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub status: PaymentStatus,
    pub payment: Option<String>,
}

/// A refund the provider accepted (done, or under way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub reference: String,
}

/// A card kept for off-session charges: Stripe's customer and payment method ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    pub customer: String,
    pub method: String,
}

/// The addresses Stripe sends the payer back to.
#[derive(Debug, Clone)]
pub struct ReturnUrls {
    pub success: String,
    pub cancel: String,
}

impl Payments {
    /// The provider the configuration chooses.
    pub fn from_config(config: &Config) -> Result<Self, PaymentError> {
        match config.payments {
            Choice::Test => Ok(Payments::Test),
            Choice::Stripe => {
                let key = config.stripe_secret_key.clone().ok_or_else(|| {
                    PaymentError::Refused("NANOCLIP_STRIPE_SECRET_KEY is not set".into())
                })?;
                Ok(Payments::Stripe(Stripe::new(&config.stripe_api_url, key)?))
            }
        }
    }

    /// The name stored with the orders it takes.
    pub fn name(&self) -> &'static str {
        match self {
            Payments::Test => "test",
            Payments::Stripe(_) => "stripe",
        }
    }

    /// Starts the payment of an order: where the payer goes. Asked twice for one order, Stripe
    /// gives the same session (the order's key of its round: a new one once the last session
    /// was forgotten).
    pub async fn checkout(
        &self,
        order: &Order,
        payer_email: &str,
        urls: &ReturnUrls,
    ) -> Result<Checkout, PaymentError> {
        match self {
            Payments::Test => Ok(Checkout {
                url: format!("/paiement-test/{}", order.id),
                reference: None,
            }),
            Payments::Stripe(stripe) => stripe.create_session(order, payer_email, urls).await,
        }
    }

    /// Asks the provider how the order's payment stands. `None`: the provider has nothing to
    /// say that the portal does not know (the test provider settles at once).
    pub async fn status(&self, order: &Order) -> Result<Option<PaymentStatus>, PaymentError> {
        match (self, order.provider_ref.as_deref()) {
            (Payments::Stripe(stripe), Some(session)) => {
                let session = stripe.session(session).await?;
                Ok(Some(match (session.status(), &session.payment_intent) {
                    // Complete but unpaid: a delayed method (a bank debit), under way or failed;
                    // its payment says which (a failed one never pays: the session is over).
                    (PaymentStatus::Open, Some(intent))
                        if session.status.as_deref() == Some("complete") =>
                    {
                        stripe.payment_intent(intent).await?.outcome()
                    }
                    (status, _) => status,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Ends a session that was not paid (an order that expired here), so that it cannot be paid
    /// any more. Stripe answers with the session as it ends up: if the payer paid meanwhile,
    /// `Paid`.
    pub async fn expire(&self, order: &Order) -> Result<Option<PaymentStatus>, PaymentError> {
        match (self, order.provider_ref.as_deref()) {
            (Payments::Stripe(stripe), Some(session)) => {
                Ok(Some(stripe.expire_session(session).await?.status()))
            }
            _ => Ok(None),
        }
    }

    /// The card that paid the order, kept for the subscription's renewals: (customer, payment
    /// method). `None` with the test provider, or when the payment kept no card.
    pub async fn saved_card(&self, order: &Order) -> Result<Option<SavedCard>, PaymentError> {
        let (Payments::Stripe(stripe), Some(session)) = (self, order.provider_ref.as_deref())
        else {
            return Ok(None);
        };
        let session = stripe.session(session).await?;
        let (Some(customer), Some(intent)) = (session.customer, session.payment_intent) else {
            return Ok(None);
        };
        let intent = stripe.payment_intent(&intent).await?;
        Ok(intent
            .payment_method
            .map(|method| SavedCard { customer, method }))
    }

    /// Charges a renewal order to the subscription's saved card, off session, under `key`
    /// (the attempt's, saved before this call). `None`: this provider charges
    /// no saved card (the test provider's renewals are settled by `services::billing`).
    pub async fn charge_saved(
        &self,
        order: &Order,
        card: &SavedCard,
        key: &str,
    ) -> Result<Option<Charge>, PaymentError> {
        match self {
            Payments::Test => Ok(None),
            Payments::Stripe(stripe) => stripe.charge(order, card, key).await.map(Some),
        }
    }

    /// How a payment made by `charge_saved` stands now (a debit that was still processing).
    /// `None`: this provider makes no such payment.
    pub async fn charge_status(
        &self,
        payment: &str,
    ) -> Result<Option<PaymentStatus>, PaymentError> {
        match self {
            Payments::Test => Ok(None),
            Payments::Stripe(stripe) => Ok(Some(stripe.payment_intent(payment).await?.outcome())),
        }
    }

    /// Refunds `amount_cents` of the order's payment, under `key` (saved before this call).
    pub async fn refund(
        &self,
        order: &Order,
        amount_cents: i64,
        key: &str,
    ) -> Result<Refund, PaymentError> {
        match self {
            Payments::Test => Ok(Refund {
                reference: format!("test_refund_{}", order.id.simple()),
            }),
            Payments::Stripe(stripe) => {
                let session = order.provider_ref.as_deref().ok_or_else(|| {
                    PaymentError::Refused("the order has no Checkout Session".into())
                })?;
                let paid = stripe.session(session).await?;
                let intent = paid.payment_intent.ok_or_else(|| {
                    PaymentError::Refused("the session has no payment intent".into())
                })?;
                stripe
                    .refund(&intent, amount_cents, key, &order.id.to_string())
                    .await
            }
        }
    }
}

/// Stripe's API through HTTPS, with the secret key.
#[derive(Clone)]
pub struct Stripe {
    base: String,
    key: String,
    client: reqwest::Client,
}

/// The fields of a Checkout Session this adapter reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    /// `open`, `complete` or `expired`.
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: Option<String>,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub customer: Option<String>,
}

impl Session {
    pub fn status(&self) -> PaymentStatus {
        match (self.status.as_deref(), self.payment_status.as_deref()) {
            (_, Some("paid")) => PaymentStatus::Paid,
            (Some("expired"), _) => PaymentStatus::Expired,
            // Complete but unpaid: a delayed method (a bank debit) still under way.
            _ => PaymentStatus::Open,
        }
    }
}

/// The fields of a PaymentIntent this adapter reads.
#[derive(Debug, Deserialize)]
struct PaymentIntent {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    payment_method: Option<String>,
    #[serde(default)]
    last_payment_error: Option<StripeErrorDetail>,
}

impl PaymentIntent {
    fn outcome(&self) -> PaymentStatus {
        match self.status.as_deref() {
            Some("succeeded") => PaymentStatus::Paid,
            Some("processing") => PaymentStatus::Open,
            // The bank asks the payer to authenticate: off session, that is a failure, and the
            // e-mail's link lets the payer pay in person.
            Some("requires_action") => PaymentStatus::Failed("authentication_required".into()),
            _ => PaymentStatus::Failed(
                self.last_payment_error
                    .as_ref()
                    .and_then(StripeErrorDetail::reason)
                    .unwrap_or_else(|| "card_declined".into()),
            ),
        }
    }
}

#[derive(Debug, Deserialize)]
struct StripeRefund {
    id: String,
    status: Option<String>,
    #[serde(default)]
    failure_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StripeErrorBody {
    error: StripeErrorDetail,
}

#[derive(Debug, Deserialize)]
struct StripeErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    /// The payment a declined charge made.
    #[serde(default)]
    payment_intent: Option<Box<PaymentIntent>>,
}

impl StripeErrorDetail {
    /// The most precise reason: the bank's decline code (`insufficient_funds`), else the code
    /// (`expired_card`, `card_declined`).
    fn reason(&self) -> Option<String> {
        self.decline_code.clone().or_else(|| self.code.clone())
    }
}

/// The key a Checkout Session of the order is asked for under: the order's own key, then one
/// per round once a session was forgotten (Stripe would give the dead one back for a day).
fn session_key(order: &Order) -> String {
    match order.session_round {
        0 => order.idempotency_key.clone(),
        round => format!("{}:session:{round}", order.idempotency_key),
    }
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log.
        f.debug_struct("Stripe")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Stripe {
    pub fn new(base: &str, key: String) -> Result<Self, PaymentError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("nanoclip-portal/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PaymentError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            key,
            client,
        })
    }

    /// `POST /v1/checkout/sessions` for the order, under its session key (`session_key`).
    async fn create_session(
        &self,
        order: &Order,
        payer_email: &str,
        urls: &ReturnUrls,
    ) -> Result<Checkout, PaymentError> {
        let order_id = order.id.to_string();
        let amount = order.amount_cents.0.to_string();
        // Stripe ends a session 30 minutes to 24 hours after it is made (24 hours by default).
        // The same key must come with the same parameters (Stripe refuses a key reused with
        // others), so the end is computed from the order alone: the order's own end when the
        // order is short-lived (a pack: an hour), no end at all for a long-lived one (a renewal
        // paid by hand).
        let earliest = order.created_at + time::Duration::minutes(31);
        let expires = (order.expires_at <= order.created_at + time::Duration::hours(23))
            .then(|| order.expires_at.max(earliest).unix_timestamp().to_string());
        let mut form: Vec<(&str, &str)> = vec![
            ("mode", "payment"),
            ("client_reference_id", &order_id),
            ("metadata[order_id]", &order_id),
            ("payment_intent_data[metadata][order_id]", &order_id),
            ("line_items[0][quantity]", "1"),
            ("line_items[0][price_data][currency]", "eur"),
            ("line_items[0][price_data][unit_amount]", &amount),
            (
                "line_items[0][price_data][product_data][name]",
                &order.label,
            ),
            ("success_url", &urls.success),
            ("cancel_url", &urls.cancel),
            ("locale", "fr"),
        ];
        if let Some(expires) = &expires {
            form.push(("expires_at", expires));
        }
        if !payer_email.is_empty() {
            form.push(("customer_email", payer_email));
        }
        if order.kind != "pack" {
            // A subscription's payment keeps the card for the next renewals (Checkout tells the
            // payer so).
            form.push(("customer_creation", "always"));
            form.push(("payment_intent_data[setup_future_usage]", "off_session"));
        }
        let session: Session = self
            .send(
                self.client
                    .post(format!("{}/v1/checkout/sessions", self.base))
                    .header("Idempotency-Key", session_key(order))
                    .form(&form),
            )
            .await?;
        let url = session
            .url
            .clone()
            .ok_or_else(|| PaymentError::Refused("a Checkout Session without its URL".into()))?;
        Ok(Checkout {
            url,
            reference: Some(session.id),
        })
    }

    /// `GET /v1/checkout/sessions/{id}`.
    pub async fn session(&self, id: &str) -> Result<Session, PaymentError> {
        self.send(self.client.get(format!(
            "{}/v1/checkout/sessions/{}",
            self.base,
            path_part(id)?
        )))
        .await
    }

    /// `POST /v1/checkout/sessions/{id}/expire`; a session that is no longer open is read
    /// instead (Stripe refuses to expire it).
    async fn expire_session(&self, id: &str) -> Result<Session, PaymentError> {
        let expired = self
            .send::<Session>(self.client.post(format!(
                "{}/v1/checkout/sessions/{}/expire",
                self.base,
                path_part(id)?
            )))
            .await;
        match expired {
            Err(PaymentError::Refused(_)) => self.session(id).await,
            other => other,
        }
    }

    /// `GET /v1/payment_intents/{id}`.
    async fn payment_intent(&self, id: &str) -> Result<PaymentIntent, PaymentError> {
        self.send(self.client.get(format!(
            "{}/v1/payment_intents/{}",
            self.base,
            path_part(id)?
        )))
        .await
    }

    /// `POST /v1/payment_intents`, confirmed off session on the saved card, under `key`. A card declined is Stripe's 402 with the PaymentIntent in the error: a failure of
    /// the payment, not of the call.
    async fn charge(
        &self,
        order: &Order,
        card: &SavedCard,
        key: &str,
    ) -> Result<Charge, PaymentError> {
        let order_id = order.id.to_string();
        let amount = order.amount_cents.0.to_string();
        let request = self
            .client
            .post(format!("{}/v1/payment_intents", self.base))
            .header("Idempotency-Key", key)
            .form(&[
                ("amount", amount.as_str()),
                ("currency", "eur"),
                ("customer", &card.customer),
                ("payment_method", &card.method),
                ("off_session", "true"),
                ("confirm", "true"),
                ("description", &order.label),
                ("metadata[order_id]", &order_id),
            ]);
        let (status, body) = self.exchange(request).await?;
        if status.as_u16() == 402 {
            let error = serde_json::from_slice::<StripeErrorBody>(&body).ok();
            let reason = error
                .as_ref()
                .and_then(|b| b.error.reason())
                .unwrap_or_else(|| "card_declined".into());
            return Ok(Charge {
                status: PaymentStatus::Failed(reason),
                payment: error.and_then(|b| b.error.payment_intent.and_then(|p| p.id)),
            });
        }
        let intent = read::<PaymentIntent>(status, &body)?;
        Ok(Charge {
            status: intent.outcome(),
            payment: intent.id,
        })
    }

    /// `POST /v1/refunds` of the payment intent, under `key`.
    async fn refund(
        &self,
        intent: &str,
        amount: i64,
        key: &str,
        order: &str,
    ) -> Result<Refund, PaymentError> {
        let amount = amount.to_string();
        let refund: StripeRefund = self
            .send(
                self.client
                    .post(format!("{}/v1/refunds", self.base))
                    .header("Idempotency-Key", key)
                    .form(&[
                        ("payment_intent", intent),
                        ("amount", &amount),
                        ("reason", "requested_by_customer"),
                        ("metadata[order_id]", order),
                    ]),
            )
            .await?;
        match refund.status.as_deref() {
            Some("failed") | Some("canceled") => Err(PaymentError::Refused(
                refund
                    .failure_reason
                    .unwrap_or_else(|| "refund failed".into()),
            )),
            _ => Ok(Refund {
                reference: refund.id,
            }),
        }
    }

    /// Sends an authenticated request of the pinned API version: the status and the body.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), PaymentError> {
        let response = request
            .bearer_auth(&self.key)
            .header("Stripe-Version", STRIPE_VERSION)
            .send()
            .await
            .map_err(|e| PaymentError::Unavailable(without_url(e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| PaymentError::Unavailable(without_url(e)))?;
        Ok((status, body.to_vec()))
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, PaymentError> {
        let (status, body) = self.exchange(request).await?;
        read(status, &body)
    }
}

/// Stripe's answer as `T`, or the error it says.
fn read<T: serde::de::DeserializeOwned>(
    status: reqwest::StatusCode,
    body: &[u8],
) -> Result<T, PaymentError> {
    if status.is_success() {
        return serde_json::from_slice(body)
            .map_err(|e| PaymentError::Unavailable(format!("unexpected answer: {e}")));
    }
    let detail = serde_json::from_slice::<StripeErrorBody>(body)
        .ok()
        .map(|b| {
            format!(
                "{} {}",
                b.error.kind.unwrap_or_default(),
                b.error.code.unwrap_or_default()
            )
        })
        .unwrap_or_default();
    // 409: the same key is still being processed by Stripe; 429 and 5xx: later.
    if status.as_u16() == 409 || status.as_u16() == 429 || status.is_server_error() {
        Err(PaymentError::Unavailable(format!("{status} {detail}")))
    } else {
        Err(PaymentError::Refused(format!("{status} {detail}")))
    }
}

/// An id as one path segment: Stripe's ids are letters, digits and `_`.
fn path_part(id: &str) -> Result<&str, PaymentError> {
    if !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(id)
    } else {
        Err(PaymentError::Refused("not a Stripe id".into()))
    }
}

/// A transport error without the URL (which holds no secret, but keeps logs short).
fn without_url(error: reqwest::Error) -> String {
    error.without_url().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(status: &str, paid: &str) -> Session {
        Session {
            id: "cs_test_1".into(),
            url: None,
            status: Some(status.into()),
            payment_status: Some(paid.into()),
            payment_intent: None,
            customer: None,
        }
    }

    #[test]
    fn a_session_reads_as_paid_open_or_expired() {
        assert_eq!(session("complete", "paid").status(), PaymentStatus::Paid);
        assert_eq!(session("open", "unpaid").status(), PaymentStatus::Open);
        assert_eq!(session("complete", "unpaid").status(), PaymentStatus::Open);
        assert_eq!(
            session("expired", "unpaid").status(),
            PaymentStatus::Expired
        );
    }

    #[test]
    fn only_stripe_ids_go_into_a_path() {
        assert!(path_part("cs_test_a1B2").is_ok());
        for bad in ["", "../v1/refunds", "cs_1?x=y", "cs 1", "cs/1"] {
            assert!(path_part(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_stays_out_of_debug() {
        let stripe = Stripe::new("http://127.0.0.1:9", "sk_test_secret".into())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{stripe:?}").contains("sk_test_secret"));
    }
}
