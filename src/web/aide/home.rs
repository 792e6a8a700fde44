//! The help centre's home, `/`, and `/sitemap.xml`.

use super::*;

// ---------------------------------------------------------------- home

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    layout: Layout,
    library: &'a Library,
    most_read: Vec<&'a Guide>,
}

pub async fn home(state: web::Data<AppState>, layout: Layout) -> Result<HttpResponse, PageError> {
    let library = state.help.library();
    let library = library.as_ref();
    let mut most_read: Vec<&Guide> = state
        .help
        .most_read(&state.pool)
        .await
        .iter()
        .filter_map(|s| library.get(s))
        .collect();
    // Before anyone has read anything, the first guides of the help centre.
    for guide in [
        "credits-et-limites",
        "tarifs",
        "prompts-ia",
        "faq",
        "guide-d-achat",
    ]
    .iter()
    .filter_map(|s| library.get(s))
    {
        if most_read.len() < 5 && !most_read.iter().any(|g| g.slug == guide.slug) {
            most_read.push(guide);
        }
    }
    let body = HomePage {
        layout,
        library,
        most_read,
    }
    .render()?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

// ---------------------------------------------------------------- sitemap

pub async fn sitemap(state: web::Data<AppState>) -> HttpResponse {
    let base = &state.config.public_url;
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    let library = state.help.library();
    let newest = library.guides.iter().map(|g| g.updated).max();
    let mut url = |path: &str, lastmod: Option<time::Date>| {
        xml.push_str(&format!("  <url><loc>{base}{path}</loc>"));
        if let Some(date) = lastmod {
            xml.push_str(&format!("<lastmod>{date}</lastmod>"));
        }
        xml.push_str("</url>\n");
    };
    url("/", newest);
    for guide in &library.guides {
        url(&guide.url(), Some(guide.updated));
    }
    for path in super::super::routes::sitemap_paths() {
        if path != "/" {
            url(path, None);
        }
    }
    xml.push_str("</urlset>\n");
    HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(xml)
}
