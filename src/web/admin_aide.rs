//! `/admin/aide`: the help centre's quality for staff: votes on guides by guide and by week,
//! searches that found nothing by week, and the one-click synonym that turns a missed query
//! into a word of the search lexicon (searched by every instance without a restart).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::admin::{NoticeQuery, audit_reason};
use super::error::PageError;
use super::extract::Staff;
use super::layout::Layout;
use super::{AppState, filters};
use crate::db::help_quality::{FeedbackWeek, MissWeek, Synonym};
use crate::services::help_quality::{self, SynonymError};

/// The synonym form as typed (kept when refused).
#[derive(Default, serde::Deserialize)]
pub struct SynonymForm {
    #[serde(default)]
    mot: String,
    #[serde(default)]
    motif: String,
}

/// A refused synonym: the missed search's id, why (`mot`, `motif`, `meme`, `introuvable`,
/// `lexique`, `deja`) and the form as typed.
struct Refused {
    miss: i64,
    why: &'static str,
    form: SynonymForm,
}

#[derive(Template)]
#[template(path = "admin/aide.html")]
struct QualityPage {
    layout: Layout,
    csrf: String,
    /// Votes by guide (slug, title), each guide's weeks newest first.
    feedback: Vec<(String, String, Vec<FeedbackWeek>)>,
    /// Missed searches by week (its Monday), newest first.
    misses: Vec<(time::Date, Vec<MissWeek>)>,
    synonyms: Vec<Synonym>,
    refused: Option<Refused>,
    /// After a success: `synonyme`.
    notice: Option<&'static str>,
}

impl QualityPage {
    /// The value typed in the form of `miss` if it was refused.
    fn typed(&self, miss: &i64, field: &str) -> &str {
        let miss = *miss;
        match &self.refused {
            Some(r) if r.miss == miss && field == "mot" => &r.form.mot,
            Some(r) if r.miss == miss => &r.form.motif,
            _ => "",
        }
    }
}

async fn render(
    state: &AppState,
    request: &HttpRequest,
    layout: Layout,
    refused: Option<Refused>,
    notice: Option<&'static str>,
) -> Result<String, PageError> {
    let report = help_quality::report(&state.pool, state.clock.now()).await?;
    let library = state.help.library();
    let mut feedback: Vec<(String, String, Vec<FeedbackWeek>)> = Vec::new();
    for row in report.feedback {
        match feedback.iter_mut().find(|(slug, _, _)| *slug == row.slug) {
            Some((_, _, weeks)) => weeks.push(row),
            None => {
                let title = library
                    .get(&row.slug)
                    .map_or_else(|| row.slug.clone(), |g| g.title.clone());
                feedback.push((row.slug.clone(), title, vec![row]));
            }
        }
    }
    feedback.sort_by(|a, b| a.1.cmp(&b.1));
    let mut misses: Vec<(time::Date, Vec<MissWeek>)> = Vec::new();
    for row in report.misses {
        match misses.last_mut() {
            Some((week, rows)) if *week == row.week => rows.push(row),
            _ => misses.push((row.week, vec![row])),
        }
    }
    Ok(QualityPage {
        layout,
        csrf: super::csrf::token(request)?,
        feedback,
        misses,
        synonyms: report.synonyms,
        refused,
        notice,
    }
    .render()?)
}

/// `GET /admin/aide`
pub async fn page(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    _staff: Staff,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = query.notice(&["synonyme"]);
    let body = render(&state, &request, layout, None, notice).await?;
    Ok(super::html(200, body))
}

/// `POST /admin/aide/recherches/{id}/synonyme`: the missed query becomes a synonym of a word
/// the guides use (its lexicon group, or a new one), audited; this instance's search index is
/// rebuilt at once, the others' at their next look (`web::aide::lexique`).
pub async fn add_synonym(
    state: web::Data<AppState>,
    request: HttpRequest,
    layout: Layout,
    staff: Staff,
    miss: web::Path<i64>,
    form: web::Form<SynonymForm>,
) -> Result<HttpResponse, PageError> {
    let miss = miss.into_inner();
    let form = form.into_inner();
    let Some(query) = help_quality::miss(&state.pool, miss).await? else {
        return Err(PageError::NotFound);
    };
    let word = form.mot.split_whitespace().collect::<Vec<_>>().join(" ");
    let reason = audit_reason(&form.motif);
    let library = state.help.library();
    let problem = if word.is_empty() || word.chars().count() > 80 {
        Some("mot")
    } else if reason.is_none() {
        Some("motif")
    } else if crate::content::text::fold(&word) == query {
        Some("meme")
    } else if library.in_lexicon(&query) {
        Some("lexique")
    } else if library.search.search(&word, 1).is_empty() {
        Some("introuvable")
    } else {
        None
    };
    let problem = match (problem, reason) {
        (Some(problem), _) => problem,
        (None, None) => "motif",
        (None, Some(reason)) => {
            let actor = staff.actor();
            let synonym = Synonym { query, word };
            match help_quality::add_synonym(
                &state.pool,
                &synonym,
                &actor,
                &reason,
                state.clock.now(),
            )
            .await
            {
                Ok(()) => {
                    // The poll would do it within seconds; here, at once.
                    if let Err(error) = state.help.refresh_lexicon(&state.pool).await {
                        tracing::warn!("search index not rebuilt yet: {error:#}");
                    }
                    return Ok(super::see_other("/admin/aide?avis=synonyme#recherches"));
                }
                Err(SynonymError::AlreadyThere) => "deja",
                Err(SynonymError::Fault(fault)) => return Err(fault.into()),
            }
        }
    };
    let refused = Refused {
        miss,
        why: problem,
        form,
    };
    let body = render(&state, &request, layout, Some(refused), None).await?;
    Ok(super::html(400, body))
}
