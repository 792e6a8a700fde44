//! A guide page, `/aide/{slug}`: rendered once, served from memory with an ETag.

use super::*;

// ---------------------------------------------------------------- guide page

#[derive(Template)]
#[template(path = "aide/guide.html")]
struct GuidePage<'a> {
    layout: Layout,
    guide: &'a Guide,
    body: String,
    category: Option<&'a Category>,
    related: Vec<&'a Guide>,
    previous: Option<&'a Guide>,
    next: Option<&'a Guide>,
}

/// A guide's body with the catalog's figures as they read at `at` (the back office's preview
/// passes a date to come).
pub(crate) fn guide_body(
    guide: &Guide,
    catalog: &Catalog,
    at: OffsetDateTime,
) -> Result<String, PageError> {
    let mut body = String::new();
    for segment in &guide.segments {
        match segment {
            Segment::Html(html) => body.push_str(&with_figures(html, guide, catalog, at)),
            Segment::Live(table) => body.push_str(&live_table(*table, catalog, at)?),
        }
    }
    Ok(body)
}

pub(super) fn render_guide(
    state: &AppState,
    library: &Library,
    guide: &Guide,
    catalog: &Catalog,
    signed_in: bool,
    at: OffsetDateTime,
) -> Result<String, PageError> {
    let body = guide_body(guide, catalog, at)?;
    let position = library.position(&guide.slug).unwrap_or(0);
    // Related: the guides this one links to first, then the rest of its category.
    let mut related: Vec<&Guide> = Vec::new();
    for link in &guide.links {
        let slug = link
            .url
            .strip_prefix("/aide/")
            .map(|s| s.split(['#', '?']).next().unwrap_or(s));
        if let Some(other) = slug.and_then(|s| library.get(s))
            && other.slug != guide.slug
            && !related.iter().any(|g| g.slug == other.slug)
        {
            related.push(other);
        }
    }
    for other in library.in_category(&guide.category) {
        if other.slug != guide.slug && !related.iter().any(|g| g.slug == other.slug) {
            related.push(other);
        }
    }
    related.truncate(4);
    let page = GuidePage {
        layout: Layout::shared(state, &guide.url(), signed_in),
        guide,
        body,
        category: library.categories.iter().find(|c| c.name == guide.category),
        related,
        previous: position.checked_sub(1).and_then(|p| library.guides.get(p)),
        next: library.guides.get(position + 1),
    };
    Ok(page.render()?)
}

pub async fn guide(
    state: web::Data<AppState>,
    request: HttpRequest,
    slug: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let catalog = state.catalog.get(&state.pool).await?;
    let rendered = state.help.rendered(&state, &catalog)?;
    let signed_in = super::super::layout::has_session_cookie(&state, &request);
    let Some(page) = rendered
        .pages
        .get(slug.as_str())
        .and_then(|variants| variants.get(usize::from(signed_in)))
    else {
        return Ok(super::super::error::not_found_page(&state, &request));
    };
    state.help.count_view(&slug);
    let cache = HeaderValue::from_static("public, max-age=0, must-revalidate");
    let not_modified = request.headers().get(header::IF_NONE_MATCH) == Some(&page.etag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, page.etag.clone()))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((
            header::VARY,
            HeaderValue::from_static("Accept-Encoding, Cookie"),
        ));
    if not_modified {
        return Ok(response.finish());
    }
    response.content_type("text/html; charset=utf-8");
    if !page.gzipped.is_empty() && super::super::accepts_gzip(&request) {
        response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
        return Ok(response.body(page.gzipped.clone()));
    }
    Ok(response.body(page.body.clone()))
}
