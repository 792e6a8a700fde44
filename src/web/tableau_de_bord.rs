//! `/tableau-de-bord`: the organisation's credits at a glance: the balance, the buckets and their
//! expiry (with the radar of what expires soon), the plan and its period, the fair-use limits,
//! 30 days of use as a server-drawn chart with a projection, and the low-balance banner. No
//! JavaScript.

use actix_web::{HttpResponse, web};
use std::sync::Arc;

use askama::Template;
use time::Date;

use super::error::PageError;
use super::extract::CurrentUser;
use super::layout::Layout;
use super::{AppState, filters};
use crate::cache::{Key, Slot};
use crate::db;
use crate::domain::catalog::Plan;
use crate::domain::ledger::{self, BucketSource};
use crate::services::accounts;
use crate::services::credits::Overview;

/// Credits expiring within this many days are on the radar.
const RADAR_DAYS: i64 = 14;

#[derive(Template)]
#[template(path = "tableau_de_bord.html")]
struct DashboardPage {
    layout: Layout,
    user: CurrentUser,
    organisation: db::accounts::Organisation,
    plan: Option<Plan>,
    overview: Overview,
    period: Option<(Date, Date)>,
    buckets: Vec<BucketLine>,
    radar: Vec<BucketLine>,
    limits: Vec<LimitBar>,
    /// A temporary raise in force: its caps replace the plan's until its last day.
    raise: Option<crate::db::generations::Raise>,
    chart: Chart,
    /// A renewal unpaid (past due or suspended): the banner and the way to pay.
    arrears: Option<super::abonnement::Arrears>,
}

impl DashboardPage {
    /// Whoever reads may pay the arrears (the banner's button).
    fn can_pay(&self) -> bool {
        self.user.is_owner()
    }
}

/// A bucket as the page words it.
#[derive(Clone)]
struct BucketLine {
    source: BucketSource,
    restricted_to: Option<String>,
    remaining: i64,
    last_day: Date,
    days_left: i64,
    /// For an allotment: what carries over at the period's end (up to the rollover cap).
    carried: i64,
}

impl BucketLine {
    /// The credits lost at expiry (an allotment's carried share is not).
    fn lost(&self) -> i64 {
        self.remaining - self.carried
    }
}

/// A fair-use limit's use, drawn as a bar.
struct LimitBar {
    rule: &'static str,
    used: i64,
    cap: i64,
}

impl LimitBar {
    fn percent(&self) -> i64 {
        if self.cap <= 0 {
            return 100;
        }
        (self.used * 100 / self.cap).clamp(0, 100)
    }
}

/// The chart of credits spent per day: bars in a 600 × 160 view box.
struct Chart {
    bars: Vec<Bar>,
    /// The top of the scale (credits).
    max: i64,
    total: i64,
    /// « au rythme actuel, votre solde couvre environ N jours », once there is a pace.
    pace: ledger::Pace,
    first: Option<Date>,
    last: Option<Date>,
}

struct Bar {
    day: Date,
    spent: i64,
    x: i64,
    y: i64,
    height: i64,
}

const CHART_HEIGHT: i64 = 160;
const BAR_WIDTH: i64 = 20;

fn chart(overview: &Overview, since: Option<Date>) -> Chart {
    let days = &overview.spent_per_day;
    let max = days.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    // A round top for the scale: 5, 10, 20, 50…
    let max = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
        .into_iter()
        .find(|step| *step >= max)
        .unwrap_or(max);
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, (day, spent))| {
            let height = spent * (CHART_HEIGHT - 10) / max;
            Bar {
                day: *day,
                spent: *spent,
                x: i as i64 * BAR_WIDTH + 2,
                y: CHART_HEIGHT - height,
                height,
            }
        })
        .collect();
    // The pace counts the days since the subscription began, within the 30 shown.
    let counted: Vec<i64> = days
        .iter()
        .filter(|(day, _)| since.is_none_or(|s| *day >= s))
        .map(|d| d.1)
        .collect();
    Chart {
        bars,
        max,
        total: days.iter().map(|d| d.1).sum(),
        pace: ledger::pace(&counted, overview.available),
        first: days.first().map(|d| d.0),
        last: days.last().map(|d| d.0),
    }
}

/// What the dashboard reads from the database. The read cache keeps it until the organisation
/// is touched (`crate::cache`), or until the moment it would change by itself.
struct Reading {
    organisation: db::accounts::Organisation,
    /// The organisation's plan, from the catalog its caps were computed with.
    plan: Option<Plan>,
    balance: crate::services::generations::Balance,
    arrears: Option<super::abonnement::Arrears>,
}

impl Reading {
    /// When the page would change with no write: the next Paris midnight (the day's and the
    /// month's use, the chart, the days left, a raise coming into force or ending), a bucket's
    /// expiry, the period's end.
    fn until(&self, now: time::OffsetDateTime) -> time::OffsetDateTime {
        let today = crate::domain::format::paris(now).date();
        let midnight = today.next_day().map_or(
            now + time::Duration::DAY,
            crate::domain::price_edit::paris_midnight,
        );
        let overview = &self.balance.overview;
        overview
            .buckets
            .iter()
            .map(|b| b.expires_at)
            .chain(overview.subscription.as_ref().map(|s| s.period_end))
            .filter(|at| *at > now)
            .fold(midnight, time::OffsetDateTime::min)
    }
}

async fn reading(
    state: &AppState,
    organisation_id: uuid::Uuid,
    now: time::OffsetDateTime,
) -> Result<Option<Arc<Reading>>, PageError> {
    let slot = Slot::Dashboard(organisation_id);
    if let Some(reading) = state.caches.get::<Reading>(&slot, now) {
        return Ok(Some(reading));
    }
    let ticket = state.caches.ticket();
    let Some(organisation) = accounts::organisation(&state.pool, organisation_id).await? else {
        return Ok(None);
    };
    let catalog = state.catalog.get(&state.pool).await?;
    let balance =
        crate::services::generations::balance(&state.pool, &catalog, organisation_id, now)
            .await
            .map_err(PageError::from)?;
    let arrears = match balance.overview.subscription.as_ref() {
        Some(sub) => super::abonnement::Arrears::of(&state.pool, sub).await?,
        None => None,
    };
    let reading = Arc::new(Reading {
        plan: catalog.plan(&organisation.plan_id).cloned(),
        organisation,
        balance,
        arrears,
    });
    if let Some(ticket) = ticket {
        let until = reading.until(now);
        let keys = vec![Key::Organisation(organisation_id)];
        state
            .caches
            .put(slot, ticket, keys, reading.clone(), now, Some(until));
    }
    Ok(Some(reading))
}

pub async fn page(
    state: web::Data<AppState>,
    layout: Layout,
    user: CurrentUser,
) -> Result<HttpResponse, PageError> {
    let Some(organisation_id) = user.organisation else {
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", "/admin"))
            .finish());
    };
    let now = state.clock.now();
    let Some(reading) = reading(&state, organisation_id, now).await? else {
        return Err(PageError::NotFound);
    };
    let organisation = reading.organisation.clone();
    let plan = reading.plan.clone();
    let balance = &reading.balance;
    let overview = balance.overview.clone();
    let caps = balance.caps;
    let raise = balance.raise.clone();
    // What the renewal will carry over: up to the next period's cap (a scheduled downgrade's),
    // taken from the period's allotments in the renewal's order (the period's, then an
    // upgrade's), so that the lines never promise more than the cap in all.
    let (mut cap_left, period_end) = match overview.subscription.as_ref() {
        Some(sub) => (sub.rollover_cap.0, Some(sub.period_end)),
        None => (plan.as_ref().map_or(0, |p| p.rollover_cap), None),
    };
    let today = overview.today;
    let buckets: Vec<BucketLine> = overview
        .buckets
        .iter()
        .map(|b| {
            let ends_with_period = period_end.is_none_or(|end| b.expires_at == end);
            let carried = if b.source == BucketSource::Allotment && ends_with_period {
                let carried = b.remaining.0.min(cap_left);
                cap_left -= carried;
                carried
            } else {
                0
            };
            BucketLine {
                source: b.source,
                restricted_to: b.restricted_to.clone(),
                remaining: b.remaining.0,
                last_day: b.last_day,
                days_left: (b.last_day - today).whole_days(),
                carried,
            }
        })
        .collect();
    let radar = buckets
        .iter()
        .filter(|b| b.days_left < RADAR_DAYS && b.lost() > 0)
        .cloned()
        .collect();
    let limits = vec![
        LimitBar {
            rule: "daily",
            used: overview.usage.generations_today,
            cap: caps.daily,
        },
        LimitBar {
            rule: "monthly",
            used: overview.usage.credits_this_month,
            cap: caps.monthly,
        },
        LimitBar {
            rule: "concurrent",
            used: overview.usage.renders_running,
            cap: caps.concurrent,
        },
    ];
    let period = overview.subscription.as_ref().map(|s| {
        let last = s.period_end - time::Duration::DAY;
        (paris_day(s.period_start), paris_day(last))
    });
    let since = overview.subscription.as_ref().map(|s| s.anchor_date);
    let chart = chart(&overview, since);
    let arrears = reading.arrears.clone();
    let body = DashboardPage {
        layout,
        user,
        organisation,
        plan,
        overview,
        period,
        buckets,
        radar,
        limits,
        raise,
        chart,
        arrears,
    }
    .render()?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}

/// The Europe/Paris day of a period bound (midnight there: 22:00 or 23:00 UTC the day before).
fn paris_day(at: time::OffsetDateTime) -> Date {
    // Period bounds are Paris midnights; two hours later is the same Paris day in UTC terms.
    (at + time::Duration::hours(2)).date()
}
