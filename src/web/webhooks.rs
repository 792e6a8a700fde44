//! `/webhooks/paiement`: the payment provider's events (Stripe's format), after the scope's
//! signature check. Each event is recorded in the transaction of its effect (a second delivery
//! does nothing), orders only move forward, and the answer is 2xx only after the commit.
//! Unknown orders and event types are answered without effect.

use actix_web::{HttpResponse, web};
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use super::api_error::{ApiError, ApiErrorCode};
use crate::services::billing::{self, BillingError, Event, Settlement};

pub async fn payment(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return Err(ApiError::Code(ApiErrorCode::BadRequest));
    };
    let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
        return Err(ApiError::Code(ApiErrorCode::BadRequest));
    };
    let object = &event["data"]["object"];
    let order = object["client_reference_id"]
        .as_str()
        .or_else(|| object["metadata"]["order_id"].as_str())
        .and_then(|v| Uuid::parse_str(v).ok());
    let settlement = match kind {
        "checkout.session.completed" if object["payment_status"] == "paid" => {
            Some(Settlement::Paid)
        }
        "checkout.session.async_payment_succeeded" => Some(Settlement::Paid),
        "checkout.session.async_payment_failed" => {
            Some(Settlement::Failed("async_payment_failed".into()))
        }
        "checkout.session.expired" => Some(Settlement::Expired),
        // A renewal charged off session that was still processing when the charge answered.
        "payment_intent.succeeded" => Some(Settlement::Paid),
        _ => None,
    };
    let (Some(order), Some(settlement)) = (order, settlement) else {
        tracing::info!(event = id, kind, "payment event without effect");
        return Ok(received());
    };
    // The event must be about the order's own payment: its session, its amount, in euros.
    let claimed = if kind.starts_with("checkout.session.") {
        billing::Claimed {
            session: object["id"].as_str(),
            amount: object["amount_total"].as_i64(),
            currency: object["currency"].as_str(),
        }
    } else {
        billing::Claimed {
            session: None,
            amount: object["amount_received"]
                .as_i64()
                .or_else(|| object["amount"].as_i64()),
            currency: object["currency"].as_str(),
        }
    };
    match billing::event_is_for(&state.pool, order, claimed).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                event = id,
                kind,
                %order,
                "payment event for another session, amount or currency: refused without effect"
            );
            return Ok(received());
        }
        Err(BillingError::Credit(crate::services::credits::CreditError::Fault(f))) => {
            return Err(f.into());
        }
        Err(other) => return Err(ApiError::Internal(other.into())),
    }
    let event = Event {
        id,
        provider: "stripe",
        kind,
        session: claimed.session,
    };
    match billing::settle(
        &state.pool,
        order,
        settlement,
        Some(event),
        state.clock.now(),
    )
    .await
    {
        Ok(crate::domain::billing::OrderState::Paid) => {
            billing::remember_card(&state.pool, &state.payments, order).await;
            Ok(received())
        }
        Ok(_) | Err(BillingError::UnknownOrder) => Ok(received()),
        Err(BillingError::Credit(crate::services::credits::CreditError::Fault(f))) => Err(f.into()),
        Err(other) => Err(ApiError::Internal(other.into())),
    }
}

fn received() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "received": true }))
}
