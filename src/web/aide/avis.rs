//! « Cet article vous a-t-il aidé ? »: votes as plain links, the comment after a « non ».

use super::*;

// ---------------------------------------------------------------- feedback

const COMMENT_MAX_CHARS: usize = 2000;

#[derive(Deserialize)]
pub struct Vote {
    utile: Option<String>,
}

#[derive(Deserialize)]
pub struct Comment {
    #[serde(default)]
    commentaire: String,
    #[serde(default)]
    avis: String,
}

#[derive(Template)]
#[template(path = "aide/avis.html")]
struct FeedbackPage<'a> {
    layout: Layout,
    guide: &'a Guide,
    helpful: bool,
    commented: bool,
    csrf: String,
    /// The vote this comment completes, signed (`id.signature`): no session row for a vote.
    vote: String,
    comment: String,
    error: Option<&'static str>,
}

/// The reference of a vote given to the comment form, signed with the portal's key.
fn vote_reference(key: &[u8], slug: &str, id: i64) -> String {
    let id = id.to_string();
    format!(
        "{id}.{}",
        super::super::csrf::sign(key, &["avis", slug, &id])
    )
}

/// The vote id of a signed reference, if the signature holds.
fn vote_id(key: &[u8], slug: &str, reference: &str) -> Option<i64> {
    let (id, signature) = reference.split_once('.')?;
    let expected = super::super::csrf::sign(key, &["avis", slug, id]);
    super::super::csrf::equal(expected.as_bytes(), signature.as_bytes())
        .then(|| id.parse().ok())
        .flatten()
}

/// `GET /aide/{slug}/avis?utile=oui|non`: « Cet article vous a-t-il aidé ? » works with plain
/// links and no JavaScript; a vote is a counter, like a view. The comment that may follow a
/// « non » is a POST with a CSRF token.
pub async fn vote(
    state: web::Data<AppState>,
    request: HttpRequest,
    slug: web::Path<String>,
    query: web::Query<Vote>,
) -> Result<HttpResponse, PageError> {
    let library = state.help.library();
    let guide = library.get(&slug).ok_or(PageError::NotFound)?;
    let helpful = match query.utile.as_deref() {
        Some("oui") => true,
        Some("non") => false,
        _ => return Err(PageError::BadRequest),
    };
    let client = super::super::client_key(&request);
    let id = crate::services::help::vote(&state.pool, &guide.slug, helpful, &client).await?;
    let (csrf, vote) = if helpful {
        (String::new(), String::new())
    } else {
        (
            super::super::csrf::token(&request)?,
            vote_reference(&state.config.session_key, &guide.slug, id),
        )
    };
    let layout = Layout::new(&state, &format!("{}/avis", guide.url()));
    let page = FeedbackPage {
        layout,
        guide,
        helpful,
        commented: false,
        csrf,
        vote,
        comment: String::new(),
        error: None,
    };
    Ok(super::super::html(200, page.render()?))
}

pub async fn comment(
    state: web::Data<AppState>,
    request: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<Comment>,
) -> Result<HttpResponse, PageError> {
    let library = state.help.library();
    let guide = library.get(&slug).ok_or(PageError::NotFound)?;
    let layout = Layout::new(&state, &format!("{}/avis", guide.url()));
    let comment = crate::content::text::pasted(form.commentaire.trim());
    let error = if comment.is_empty() {
        Some("empty")
    } else if comment.chars().count() > COMMENT_MAX_CHARS {
        Some("too_long")
    } else {
        None
    };
    if error.is_some() {
        let csrf = super::super::csrf::token(&request)?;
        let page = FeedbackPage {
            layout,
            guide,
            helpful: false,
            commented: false,
            csrf,
            vote: form.avis.clone(),
            comment,
            error,
        };
        return Ok(super::super::html(400, page.render()?));
    }
    // The vote this comment completes is the one this visitor just cast (signed in the form).
    let Some(id) = vote_id(&state.config.session_key, &guide.slug, &form.avis) else {
        return Err(PageError::BadRequest);
    };
    crate::services::help::comment(&state.pool, id, &guide.slug, &comment).await?;
    let page = FeedbackPage {
        layout,
        guide,
        helpful: false,
        commented: true,
        csrf: String::new(),
        vote: String::new(),
        comment: String::new(),
        error: None,
    };
    Ok(super::super::html(200, page.render()?))
}
