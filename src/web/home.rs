//! `/`: the help-centre home.

use askama::Template;
use askama_web::WebTemplate;

use super::layout::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
}

pub async fn page(layout: Layout) -> HomePage {
    HomePage { layout }
}
