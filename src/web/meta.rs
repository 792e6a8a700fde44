//! `/healthz`, `/robots.txt`, `/sitemap.xml`.

use std::time::Duration;

use actix_web::{HttpResponse, web};

use super::AppState;

/// 200 when the database answers within two seconds; 503 with the reason otherwise. Never
/// panics, and needs no restart: the pool reconnects when the database comes back.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    // A success is remembered for a second: probes and load balancers may poll very often, and
    // the answer stays fresh enough. A failure is never remembered.
    if let Ok(last) = state.last_healthy.read()
        && last.is_some_and(|at| at.elapsed() < Duration::from_secs(1))
    {
        return ok();
    }
    let check = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool),
    )
    .await;
    let reason = match check {
        Ok(Ok(_)) => {
            if let Ok(mut last) = state.last_healthy.write() {
                *last = Some(std::time::Instant::now());
            }
            return ok();
        }
        Ok(Err(error)) => {
            tracing::warn!("health check: database unreachable: {error}");
            "database unreachable"
        }
        Err(_) => "database did not answer within 2 s",
    };
    HttpResponse::ServiceUnavailable()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Retry-After", "5"))
        .json(serde_json::json!({ "status": "unavailable", "reason": reason }))
}

pub async fn robots(state: web::Data<AppState>) -> HttpResponse {
    let body = format!(
        "User-agent: *\nDisallow: /compte\nDisallow: /tableau-de-bord\nDisallow: /credits\nDisallow: /abonnement\n\
         Disallow: /achats\nDisallow: /generations\nDisallow: /admin\nDisallow: /api/\n\nSitemap: {}/sitemap.xml\n",
        state.config.public_url
    );
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

fn ok() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}
