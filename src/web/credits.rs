//! `/credits/historique`: every movement of the organisation's credits, newest first, filtered by
//! kind and by days (Europe/Paris), paginated; and its CSV export for French Excel (`;`, a UTF-8
//! BOM, dd/mm/yyyy dates), streamed chunk by chunk so that a long history never sits in memory.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::stream;
use time::Date;
use uuid::Uuid;

use super::error::PageError;
use super::extract::CurrentUser;
use super::layout::Layout;
use super::{AppState, filters};
use crate::db::credits::{Entry, HistoryFilter};
use crate::domain::ledger::{BucketSource, EntryKind};
use crate::services::credits;

/// Lines per page.
const PER_PAGE: i64 = 50;
/// Lines per chunk of the export.
const CHUNK: i64 = 1000;

/// The kinds as the URL spells them (`?type=debit`), in the form's order.
const KINDS: [(&str, EntryKind); 7] = [
    ("attribution", EntryKind::Grant),
    ("reservation", EntryKind::Hold),
    ("debit", EntryKind::Capture),
    ("liberation", EntryKind::Release),
    ("expiration", EntryKind::Expiry),
    ("ajustement", EntryKind::Adjustment),
    ("remboursement", EntryKind::Refund),
];

/// What is wrong with a filter; `templates/credits/probleme.txt` words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterProblem {
    UnknownKind(String),
    BadDate(&'static str),
    DateOutOfRange(&'static str),
    DatesReversed,
    BadPage,
    PageBeyond { pages: i64 },
}

impl FilterProblem {
    /// The date fields the problem is about.
    fn fields(&self) -> Vec<&'static str> {
        match self {
            FilterProblem::BadDate(field) | FilterProblem::DateOutOfRange(field) => vec![field],
            FilterProblem::DatesReversed => vec!["du", "au"],
            _ => Vec::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "credits/probleme.txt")]
struct ProblemText<'a> {
    problem: &'a FilterProblem,
}

/// The filters as typed (kept in the form when one is wrong).
#[derive(Debug, Clone, Default)]
struct Typed {
    kinds: Vec<String>,
    du: String,
    au: String,
    page: String,
}

fn parse_query(query: &str) -> Typed {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let mut typed = Typed::default();
    for (name, value) in pairs {
        // Shown again in the page: no control character (a NUL is not even HTML).
        let value: String = value.chars().filter(|c| !c.is_control()).collect();
        let value = value.trim().to_owned();
        match name.as_str() {
            "type" if !value.is_empty() && value != "tous" => typed.kinds.push(value),
            "du" => typed.du = value,
            "au" => typed.au = value,
            "page" => typed.page = value,
            _ => {}
        }
    }
    typed.kinds.truncate(KINDS.len() + 1);
    typed
}

/// A day typed as 2026-12-04 (the date field) or 04/12/2026 (by hand).
fn parse_day(raw: &str, field: &'static str) -> Result<Option<Date>, FilterProblem> {
    if raw.is_empty() {
        return Ok(None);
    }
    let iso = time::macros::format_description!("[year]-[month]-[day]");
    let french = time::macros::format_description!("[day]/[month]/[year]");
    let day = Date::parse(raw, iso)
        .or_else(|_| Date::parse(raw, french))
        .map_err(|_| FilterProblem::BadDate(field))?;
    if !(2020..=2100).contains(&day.year()) {
        return Err(FilterProblem::DateOutOfRange(field));
    }
    Ok(Some(day))
}

/// The filter, or every problem found in it.
fn filter_of(typed: &Typed) -> Result<(HistoryFilter, i64), Vec<FilterProblem>> {
    let mut problems = Vec::new();
    let mut kinds = Vec::new();
    for raw in &typed.kinds {
        match KINDS.iter().find(|(name, _)| name == raw) {
            Some((_, kind)) if !kinds.contains(kind) => kinds.push(*kind),
            Some(_) => {}
            None => problems.push(FilterProblem::UnknownKind(raw.chars().take(40).collect())),
        }
    }
    let from = parse_day(&typed.du, "du").unwrap_or_else(|p| {
        problems.push(p);
        None
    });
    let to = parse_day(&typed.au, "au").unwrap_or_else(|p| {
        problems.push(p);
        None
    });
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        problems.push(FilterProblem::DatesReversed);
    }
    let page = if typed.page.is_empty() {
        1
    } else {
        match typed.page.parse::<i64>() {
            Ok(n @ 1..=100_000) => n,
            _ => {
                problems.push(FilterProblem::BadPage);
                1
            }
        }
    };
    if problems.is_empty() {
        Ok((HistoryFilter { kinds, from, to }, page))
    } else {
        Err(problems)
    }
}

/// A line of the page.
struct Line {
    entry: Entry,
}

impl Line {
    fn signed(&self) -> String {
        let e = &self.entry;
        match e.kind {
            // A capture moves nothing from the available balance: the credits were reserved
            // (the template says how many), so that the column adds up to the balance.
            EntryKind::Capture => "0".to_owned(),
            _ if e.delta > 0 => format!("+{}", crate::domain::format::thousands(e.delta)),
            _ => format!("\u{2212}{}", crate::domain::format::thousands(-e.delta)),
        }
    }

    fn reason(&self) -> String {
        crate::content::text::typography(&reason_label(&self.entry))
    }

    fn author(&self) -> String {
        author_label(&self.entry, true)
    }

    fn time(&self) -> String {
        let t = self.entry.local_at.time();
        format!("{:02}\u{a0}h\u{a0}{:02}", t.hour(), t.minute())
    }
}

#[derive(Template)]
#[template(path = "credits/historique.html")]
struct HistoriquePage {
    layout: Layout,
    typed: Typed,
    problems: Vec<String>,
    lines: Vec<Line>,
    total: i64,
    page: i64,
    pages: i64,
    /// The filters as a query string, without `page` (for the links).
    query: String,
    /// The fields a problem is about (`du`, `au`): marked invalid in the form.
    invalid: Vec<&'static str>,
}

impl HistoriquePage {
    fn checked(&self, name: &str) -> bool {
        self.typed.kinds.iter().any(|k| k == name)
    }

    fn invalid(&self, field: &str) -> bool {
        self.invalid.contains(&field)
    }

    /// Empty, or a day a date field can hold (2026-12-04): anything else is kept in a text field.
    fn is_day(&self, raw: &str) -> bool {
        raw.is_empty()
            || Date::parse(
                raw,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .is_ok()
    }

    fn page_link(&self, page: i64) -> String {
        if self.query.is_empty() {
            format!("/credits/historique?page={page}")
        } else {
            format!("/credits/historique?{}&page={page}", self.query)
        }
    }

    fn export_link(&self) -> String {
        if self.query.is_empty() {
            "/credits/historique.csv".to_owned()
        } else {
            format!("/credits/historique.csv?{}", self.query)
        }
    }
}

fn query_of(typed: &Typed) -> String {
    let mut pairs: Vec<(&str, &str)> = typed.kinds.iter().map(|k| ("type", k.as_str())).collect();
    if !typed.du.is_empty() {
        pairs.push(("du", &typed.du));
    }
    if !typed.au.is_empty() {
        pairs.push(("au", &typed.au));
    }
    serde_urlencoded::to_string(&pairs).unwrap_or_default()
}

fn organisation_of(user: &CurrentUser) -> Result<Uuid, PageError> {
    user.organisation.ok_or(PageError::Forbidden)
}

fn words(problem: &FilterProblem) -> String {
    ProblemText { problem }.render().unwrap_or_default()
}

pub async fn historique(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    user: CurrentUser,
) -> Result<HttpResponse, PageError> {
    let organisation = organisation_of(&user)?;
    let typed = parse_query(request.query_string());
    let query = query_of(&typed);
    let mut page = HistoriquePage {
        layout,
        typed,
        problems: Vec::new(),
        lines: Vec::new(),
        total: 0,
        page: 1,
        pages: 1,
        query,
        invalid: Vec::new(),
    };
    let (filter, number) = match filter_of(&page.typed) {
        Ok(found) => found,
        Err(problems) => {
            page.problems = problems.iter().map(words).collect();
            page.invalid = problems.iter().flat_map(FilterProblem::fields).collect();
            return respond(&page, actix_web::http::StatusCode::BAD_REQUEST);
        }
    };
    let found = credits::history(
        &state.pool,
        organisation,
        &filter,
        (number - 1) * PER_PAGE,
        PER_PAGE,
    )
    .await
    .map_err(PageError::from)?;
    page.total = found.total;
    page.pages = ((found.total + PER_PAGE - 1) / PER_PAGE).max(1);
    page.page = number;
    if number > page.pages {
        page.problems = vec![words(&FilterProblem::PageBeyond { pages: page.pages })];
        page.page = 1;
        return respond(&page, actix_web::http::StatusCode::NOT_FOUND);
    }
    page.lines = found
        .entries
        .into_iter()
        .map(|entry| Line { entry })
        .collect();
    respond(&page, actix_web::http::StatusCode::OK)
}

fn respond(
    page: &HistoriquePage,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, PageError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(page.render()?))
}

/// The words of a line's kind, bucket, reason or author, from one template for the page and
/// the CSV.
#[derive(Template, Default)]
#[template(path = "credits/libelles.txt")]
struct Label<'a> {
    kind: Option<&'a EntryKind>,
    source: Option<&'a BucketSource>,
    restricted_to: Option<&'a str>,
    reason: Option<&'a str>,
    actor: Option<Author<'a>>,
    /// The author within a sentence (« par l’équipe NanoClip »), not alone in a cell.
    in_sentence: bool,
    header: bool,
}

/// Who made a movement, as the history names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Author<'a> {
    /// The portal itself (renewals, purchases, expiries, time-outs).
    NanoClip,
    /// The generation engine's report.
    Engine,
    /// NanoClip's staff (back office, operator commands).
    Staff,
    /// A member of the organisation: the e-mail, while the account is still the organisation's.
    Member(Option<&'a str>),
    /// An API key of the organisation: its name, if it still exists.
    ApiKey(Option<&'a str>),
    /// Anything else, as recorded.
    Other(&'a str),
}

impl<'a> Author<'a> {
    fn of(entry: &'a Entry) -> Self {
        let name = entry.actor_name.as_deref();
        match entry.actor.as_str() {
            "system" | "migration" => Author::NanoClip,
            "engine" => Author::Engine,
            "cli" => Author::Staff,
            a if a.starts_with("staff:") => Author::Staff,
            a if a.starts_with("user:") => Author::Member(name),
            a if a.starts_with("api-key:") => Author::ApiKey(name),
            other => Author::Other(other),
        }
    }
}

fn label(label: Label<'_>) -> String {
    label.render().unwrap_or_default()
}

fn kind_label(kind: &EntryKind) -> String {
    label(Label {
        kind: Some(kind),
        ..Label::default()
    })
}

fn bucket_label(source: &BucketSource, restricted_to: Option<&str>) -> String {
    label(Label {
        source: Some(source),
        restricted_to,
        ..Label::default()
    })
}

/// The reason's words as written (the CSV keeps staff's text as typed; the page sets its
/// typography).
fn reason_label(entry: &Entry) -> String {
    label(Label {
        reason: Some(&entry.reason),
        ..Label::default()
    })
}

fn author_label(entry: &Entry, in_sentence: bool) -> String {
    label(Label {
        actor: Some(Author::of(entry)),
        in_sentence,
        ..Label::default()
    })
}

fn csv_line(entry: &Entry) -> Vec<String> {
    let date = entry.local_at.date();
    let t = entry.local_at.time();
    // What the available balance moved by, a capture's 0 included: the column adds up.
    let credits = entry.delta.to_string();
    let bucket = format!(
        "{} ({:02}/{:02}/{})",
        bucket_label(&entry.bucket_source, entry.bucket_restricted_to.as_deref()),
        entry.bucket_last_day.day(),
        u8::from(entry.bucket_last_day.month()),
        entry.bucket_last_day.year()
    );
    vec![
        format!(
            "{:02}/{:02}/{}",
            date.day(),
            u8::from(date.month()),
            date.year()
        ),
        format!("{:02}:{:02}", t.hour(), t.minute()),
        kind_label(&entry.kind),
        credits,
        bucket,
        as_text(reason_label(entry)),
        as_text(entry.reference.clone()),
        as_text(author_label(entry, false)),
    ]
}

/// A text cell a spreadsheet must not take for a formula (OWASP's « CSV injection »): a reason
/// typed by staff, often pasted from a church's e-mail, may start with `=`, `+`, `-` or `@`.
/// Such a cell starts with an apostrophe, which Excel and LibreOffice show as text.
fn as_text(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

fn csv_bytes(rows: &[Vec<String>]) -> Result<web::Bytes, PageError> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(row)
            .map_err(|e| PageError::Internal(e.into()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| PageError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(web::Bytes::from(bytes))
}

/// `/credits/historique.csv`: the filtered history, every line, for French Excel.
pub async fn export(
    state: web::Data<AppState>,
    request: HttpRequest,
    user: CurrentUser,
) -> Result<HttpResponse, PageError> {
    let organisation = organisation_of(&user)?;
    let typed = parse_query(request.query_string());
    let Ok((filter, _)) = filter_of(&typed) else {
        // The page says what is wrong, with the values kept.
        let location = format!("/credits/historique?{}", query_of(&typed));
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", location))
            .finish());
    };
    // The first chunk is read before answering, so that a database fault is the 503 page
    // rather than a cut download.
    let first = credits::history_chunk(&state.pool, organisation, &filter, None, CHUNK)
        .await
        .map_err(PageError::from)?;
    let header = Label {
        header: true,
        ..Label::default()
    }
    .render()?;
    let mut head = b"\xEF\xBB\xBF".to_vec();
    head.extend_from_slice(&csv_bytes(&[header
        .split(';')
        .map(str::to_owned)
        .collect()])?);
    let head = web::Bytes::from(head);
    struct Cursor {
        state: web::Data<AppState>,
        organisation: Uuid,
        filter: HistoryFilter,
        pending: Option<Vec<Entry>>,
        before: Option<i64>,
        done: bool,
    }
    let cursor = Cursor {
        state: state.clone(),
        organisation,
        filter,
        pending: Some(first),
        before: None,
        done: false,
    };
    let body = stream::once(async move { Ok::<_, PageError>(head) }).chain(stream::unfold(
        cursor,
        |mut c| async move {
            if c.done {
                return None;
            }
            let chunk = match c.pending.take() {
                Some(chunk) => chunk,
                None => match credits::history_chunk(
                    &c.state.pool,
                    c.organisation,
                    &c.filter,
                    c.before,
                    CHUNK,
                )
                .await
                {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        tracing::error!(error = %error, "credit export cut short");
                        c.done = true;
                        return Some((Err(PageError::from(error)), c));
                    }
                },
            };
            if chunk.is_empty() {
                return None;
            }
            c.done = (chunk.len() as i64) < CHUNK;
            c.before = chunk.last().map(|e| e.id);
            let rows: Vec<Vec<String>> = chunk.iter().map(csv_line).collect();
            Some((csv_bytes(&rows), c))
        },
    ));
    let today = state.clock.now().date();
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"historique-credits-{today}.csv\""),
        ))
        .streaming(body))
}

use futures_util::StreamExt as _;
