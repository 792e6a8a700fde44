//! The header knows who is there: visitors are offered « Se connecter », signed-in users the
//! dashboard, their account and « Se déconnecter », on every kind of page.

use crate::common::{attr, spawn_app};
use crate::securite::owner;

fn nav(html: &scraper::Html) -> Vec<String> {
    let selector = scraper::Selector::parse("header nav li").unwrap();
    html.select(&selector)
        .map(|li| li.text().collect::<String>().trim().to_owned())
        .collect()
}

#[tokio::test]
async fn the_header_offers_sign_in_to_visitors_and_the_account_to_members() {
    let app = spawn_app().await;
    let visitor = app.browser();
    for page in [
        "/",
        "/aide/tarifs",
        "/simulateur",
        "/contact",
        "/page-inconnue",
    ] {
        let (_, html) = visitor.html(page).await;
        let items = nav(&html);
        assert!(
            items.iter().any(|i| i == "Se connecter"),
            "{page}: {items:?}"
        );
        assert!(
            !items.iter().any(|i| i == "Mon compte"),
            "{page}: {items:?}"
        );
    }
    let member = app.browser();
    owner(&app, &member, "Paroisse", "entete@p.fr").await;
    for page in [
        "/",
        "/aide/tarifs",
        "/simulateur",
        "/compte",
        "/page-inconnue",
    ] {
        let (_, html) = member.html(page).await;
        let items = nav(&html);
        for expected in ["Tableau de bord", "Mon compte", "Se déconnecter"] {
            assert!(items.iter().any(|i| i == expected), "{page}: {items:?}");
        }
        assert!(
            !items.iter().any(|i| i == "Se connecter"),
            "{page}: {items:?}"
        );
    }
    // On a page of its own, « Se déconnecter » is a POST button; a guide (the same bytes for
    // everyone signed in) links to the sign-out page, whose button POSTs.
    let (_, html) = member.html("/").await;
    assert_eq!(
        attr(&html, "header form", "action").as_deref(),
        Some("/compte/deconnexion")
    );
    assert_eq!(
        attr(&html, "header form", "method").as_deref(),
        Some("post")
    );
    let (_, html) = member.html("/aide/tarifs").await;
    assert_eq!(
        attr(&html, "header a[href='/compte/deconnexion']", "href").as_deref(),
        Some("/compte/deconnexion")
    );
    let signed_out = member
        .submit("/compte/deconnexion", "/compte/deconnexion", &[])
        .await;
    assert_eq!(signed_out.status(), 303);
    let (status, _) = member.html("/compte").await;
    assert_eq!(status, 303, "signed out");
}
