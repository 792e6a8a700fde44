//! `/healthz` and `/robots.txt` (`/sitemap.xml` lists the guides: it is `aide::sitemap`).

use std::time::Duration;

use actix_web::{HttpResponse, web};

use super::AppState;

/// 200 when the database answers within two seconds; 503 with the reason otherwise. Never
/// panics, and needs no restart: the pool reconnects when the database comes back.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    // A success is remembered for a second: probes and load balancers may poll very often, and
    // the answer stays fresh enough. A failure is never remembered. One request at a time checks
    // the database; the others meanwhile reuse a success of the last ten seconds, so a burst of
    // probes never queues on the pool.
    // Prompt checks that could not be read (a broken `content/`) make the instance unhealthy
    // for good; while they are read, it serves everything else.
    if state.prompt_checks.failed() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "status": "unavailable", "reason": "prompt checks not loaded" }));
    }
    let last = state.last_healthy.read().ok().and_then(|l| *l);
    let fresh = |limit: u64| last.is_some_and(|at| at.elapsed() < Duration::from_secs(limit));
    if fresh(1) {
        return ok();
    }
    let checking = state
        .health_check_running
        .swap(true, std::sync::atomic::Ordering::AcqRel);
    if checking && fresh(10) {
        return ok();
    }
    // Clears the flag even if this request is dropped half-way.
    struct Done<'a>(&'a std::sync::atomic::AtomicBool, bool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            if self.1 {
                self.0.store(false, std::sync::atomic::Ordering::Release);
            }
        }
    }
    let _done = Done(&state.health_check_running, !checking);
    check(&state).await
}

async fn check(state: &AppState) -> HttpResponse {
    let check = tokio::time::timeout(
        Duration::from_secs(2),
        crate::services::health::database_answers(&state.pool),
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
    let mut body = String::from("User-agent: *\n");
    for rule in super::routes::disallowed() {
        body.push_str(&format!("Disallow: {rule}\n"));
    }
    body.push_str(&format!(
        "\nSitemap: {}/sitemap.xml\n",
        state.config.public_url
    ));
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
