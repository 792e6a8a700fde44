//! The help centre: guides, live tables, search, sitemap, and content checks.

use std::time::Duration;

use nanoclip::content::Library;
use serde_json::Value;

use crate::common::{attr, count, project_dir, spawn_app, text};

const SLUGS: [&str; 11] = [
    "credits-et-limites",
    "respect-et-ethique",
    "depannage",
    "guide-d-achat",
    "tarifs",
    "prompts-ia",
    "video",
    "musique",
    "mini-livres",
    "faq",
    "compte-et-abonnement",
];

#[tokio::test]
async fn every_guide_of_the_contract_is_served_with_its_frame() {
    let app = spawn_app().await;
    for slug in SLUGS {
        let (status, html) = app.get_html(&format!("/aide/{slug}")).await;
        assert_eq!(status, 200, "{slug}");
        assert!(!text(&html, "h1").is_empty(), "{slug} has a title");
        assert_eq!(
            attr(&html, "link[rel=canonical]", "href"),
            Some(format!("http://portail.test/aide/{slug}"))
        );
        assert!(
            attr(&html, "meta[name=description]", "content").is_some_and(|d| d.len() > 50),
            "{slug} description"
        );
        assert_eq!(
            attr(&html, "meta[property='og:type']", "content").as_deref(),
            Some("article")
        );
        assert!(
            text(&html, ".breadcrumbs").starts_with("Centre d’aide"),
            "{slug} breadcrumbs"
        );
        assert!(text(&html, ".meta").starts_with("Mis à jour le "), "{slug}");
        assert_eq!(
            text(&html, "#avis"),
            "Cet article vous a-t-il aidé\u{202f}?"
        );
        // Every anchor of the Sommaire exists on the page.
        let selector = scraper::Selector::parse(".toc a").unwrap();
        for link in html.select(&selector) {
            let id = link.value().attr("href").unwrap().trim_start_matches('#');
            assert_eq!(count(&html, &format!("[id='{id}']")), 1, "{slug}#{id}");
        }
    }
}

#[tokio::test]
async fn an_unknown_guide_is_a_404() {
    let app = spawn_app().await;
    assert_eq!(app.get("/aide/nexiste-pas").await.status(), 404);
}

#[tokio::test]
async fn guides_are_revalidated_with_an_etag() {
    let app = spawn_app().await;
    let first = app.get("/aide/faq").await;
    let etag = first.headers()["etag"].clone();
    let again = app
        .client
        .get(app.url("/aide/faq"))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn the_seed_facts_hold_in_the_credits_guide() {
    let app = spawn_app().await;
    let (_, html) = app.get_html("/aide/credits-et-limites").await;
    let page = text(&html, "article");
    for fact in [
        "Un crédit est une unité de consommation",
        "Seules les générations effectivement lancées et non bloquées consomment des crédits",
        "Les crédits expirent-ils",
        "Puis-je augmenter mes limites pour un événement",
        "Les tests ratés sont-ils débités",
    ] {
        assert!(page.contains(fact), "missing: {fact}");
    }
    // Every link the seed names goes to a real page.
    for href in [
        "/aide/guide-d-achat",
        "/aide/tarifs",
        "/simulateur",
        "/aide/prompts-ia",
        "/aide/video",
        "/aide/musique",
        "/aide/depannage",
        "/aide/respect-et-ethique",
        "/",
    ] {
        assert!(
            count(&html, &format!("article a[href^='{href}']")) >= 1,
            "link to {href}"
        );
    }
}

#[tokio::test]
async fn live_tables_show_the_data_in_force() {
    let app = spawn_app().await;
    // Staff changed the price before anyone read the page: the table shows the new one.
    sqlx::query("UPDATE plans SET price_cents = 3100 WHERE id = 'eglise'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (_, html) = app.get_html("/aide/tarifs").await;
    let tables = text(&html, "article");
    assert!(tables.contains("31,00\u{a0}€ par mois"), "{tables}");
    assert!(tables.contains("99,00\u{a0}€ par mois"));
    assert!(
        tables.contains("Pack 10 crédits")
            && tables.contains("12,00\u{a0}€")
            && tables.contains("2,00\u{a0}€"),
        "packs with VAT"
    );
    assert!(
        tables.contains("La 4K est réservée au Plan Réseau."),
        "4K refused on Église in the schedule"
    );
    assert!(count(&html, "article .live table") >= 3);
}

async fn first_result(app: &crate::common::TestApp, query: &str) -> String {
    let response = app
        .client
        .get(app.url("/api/v1/aide/recherche"))
        .query(&[("q", query)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["results"][0]["slug"]
        .as_str()
        .unwrap_or("(none)")
        .to_owned()
}

#[tokio::test]
async fn search_finds_the_right_guide_first_in_the_readers_own_words() {
    let app = spawn_app().await;
    for (query, expected) in [
        ("credits expirent", "credits-et-limites"),
        ("crédit", "credits-et-limites"),
        ("remboursement", "compte-et-abonnement"),
        ("4k", "tarifs"),
        ("limite quotidienne", "credits-et-limites"),
        ("musique", "musique"),
        ("facture", "guide-d-achat"),
        ("depannage", "depannage"),
        ("prompt interdit", "respect-et-ethique"),
        ("credit expire", "credits-et-limites"),
        ("mot de passe oublie", "compte-et-abonnement"),
        ("inviter un membre", "compte-et-abonnement"),
        ("chant instrumental", "musique"),
        ("livre illustré pages", "mini-livres"),
        ("homélie en vidéo", "video"),
    ] {
        assert_eq!(
            first_result(&app, query).await,
            expected,
            "query « {query} »"
        );
    }
}

#[tokio::test]
async fn search_answers_the_json_contract_and_suggests_a_correction() {
    let app = spawn_app().await;
    let body: Value = app
        .get("/api/v1/aide/recherche?q=cr%C3%A9dits")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["query"], "crédits");
    let first = &body["results"][0];
    assert_eq!(
        first["url"],
        format!("/aide/{}", first["slug"].as_str().unwrap())
    );
    assert!(first["title"].is_string() && first["snippet"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(body["suggestion"].is_null());
    let typo: Value = app
        .get("/api/v1/aide/recherche?q=facturs")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(typo["suggestion"], "facture");
    let empty = app.get("/api/v1/aide/recherche?q=").await;
    assert_eq!(empty.status(), 400);
    let body: Value = empty.json().await.unwrap();
    assert!(body["errors"]["q"].is_string());
}

#[tokio::test]
async fn the_search_page_highlights_and_records_what_it_cannot_find() {
    let app = spawn_app().await;
    let (status, html) = app.get_html("/aide/recherche?q=credits+expirent").await;
    assert_eq!(status, 200);
    assert!(count(&html, ".results li") >= 1);
    assert!(count(&html, ".results mark") >= 1, "highlighted words");
    let (status, html) = app.get_html("/aide/recherche?q=zzyzx+quorglub").await;
    assert_eq!(status, 200);
    assert_eq!(count(&html, ".results li"), 0);
    assert_eq!(
        count(&html, "main a[href^='/contact']"),
        1,
        "contact link on the empty page"
    );
    assert!(
        count(&html, "main ul a[href^='/aide/']") >= 3,
        "top guides offered"
    );
    let mut recorded = 0;
    for _ in 0..50 {
        recorded = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM search_misses WHERE query = 'zzyzx quorglub'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if recorded == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorded, 1);
    let (status, _) = app
        .get_html(&format!("/aide/recherche?q={}", "a".repeat(300)))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn views_are_counted_in_memory_and_written_in_a_batch() {
    let app = spawn_app().await;
    for _ in 0..3 {
        assert_eq!(app.get("/aide/video").await.status(), 200);
    }
    let before: Option<i64> =
        sqlx::query_scalar("SELECT views FROM guide_views WHERE slug = 'video'")
            .fetch_optional(&app.pool)
            .await
            .unwrap();
    assert_eq!(before, None, "reading does not write");
    app.stop().await;
    // A fresh pool: connections the server's workers opened die with their runtimes.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*app.pool.connect_options()).clone())
        .await
        .unwrap();
    let mut views: Option<i64> = None;
    // Up to 10 s: a loaded machine (CI, parallel tests) may take a while to stop the server.
    for _ in 0..200 {
        views = sqlx::query_scalar("SELECT views FROM guide_views WHERE slug = 'video'")
            .fetch_optional(&pool)
            .await
            .unwrap();
        if views.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(views, Some(3));
}

#[tokio::test]
async fn the_home_lists_categories_search_and_most_read_guides() {
    let app = spawn_app().await;
    let (status, html) = app.get_html("/").await;
    assert_eq!(status, 200);
    assert_eq!(
        attr(&html, "form[role=search]", "action").as_deref(),
        Some("/aide/recherche")
    );
    assert!(count(&html, "main section h2") >= 5);
    for slug in SLUGS {
        assert!(
            count(&html, &format!("a[href='/aide/{slug}']")) >= 1,
            "{slug} reachable from the home"
        );
    }
}

#[tokio::test]
async fn the_sitemap_lists_every_guide_with_its_date() {
    let app = spawn_app().await;
    let xml = app.get("/sitemap.xml").await.text().await.unwrap();
    for slug in SLUGS {
        assert!(
            xml.contains(&format!(
                "<loc>http://portail.test/aide/{slug}</loc><lastmod>2026-"
            )),
            "{slug}"
        );
    }
    let robots = app.get("/robots.txt").await.text().await.unwrap();
    assert!(robots.contains("Sitemap: http://portail.test/sitemap.xml"));
}

fn write_guide(dir: &std::path::Path, slug: &str, front: &str, body: &str) {
    std::fs::write(
        dir.join(format!("{slug}.md")),
        format!("+++\n{front}\n+++\n{body}"),
    )
    .unwrap();
}

fn content_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nanoclip-content-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["categories.toml", "synonymes.toml"] {
        std::fs::copy(project_dir().join("content").join(file), dir.join(file)).unwrap();
    }
    dir
}

const FRONT: &str = "title = \"Essai\"\ndescription = \"Un guide d’essai.\"\ncategory = \"Bien démarrer\"\norder = 1\nupdated = 2026-11-24\nslug = \"essai\"";

#[test]
fn the_real_content_loads_without_errors() {
    let library = Library::load(&project_dir().join("content")).unwrap_or_else(|e| panic!("{e}"));
    assert!(library.guides.len() >= 11);
}

#[test]
fn a_broken_link_or_anchor_names_the_file_and_line() {
    let dir = content_dir();
    write_guide(
        &dir,
        "essai",
        FRONT,
        "## Début\n\nVoir [rien](/aide/nulle-part).\n\nEt [ici](#absent).\n",
    );
    let errors = Library::load(&dir).err().unwrap().to_string();
    assert!(
        errors.contains("essai.md:11: broken link `/aide/nulle-part`"),
        "{errors}"
    );
    assert!(
        errors.contains("essai.md:13: broken anchor `#absent`"),
        "{errors}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_front_matter_field_or_a_duplicate_slug_is_refused() {
    let dir = content_dir();
    write_guide(
        &dir,
        "essai",
        &FRONT.replace("title = \"Essai\"\n", ""),
        "Texte.\n",
    );
    let errors = Library::load(&dir).err().unwrap().to_string();
    assert!(
        errors.contains("essai.md:") && errors.contains("missing field `title`"),
        "{errors}"
    );
    write_guide(&dir, "essai", FRONT, "Texte.\n");
    write_guide(
        &dir,
        "autre",
        &FRONT.replace("slug = \"essai\"", "slug = \"autre\""),
        "## A\n\n## A\n",
    );
    let errors = Library::load(&dir).err().unwrap().to_string();
    assert!(
        errors.contains("autre.md:11: duplicate heading anchor `#a`"),
        "{errors}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn raw_html_in_markdown_is_sanitised() {
    let dir = content_dir();
    write_guide(
        &dir,
        "essai",
        FRONT,
        "Texte <script>alert(1)</script> <a href=\"https://x.fr\" onclick=\"x()\">lien</a>\n",
    );
    let library = Library::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let nanoclip::content::Segment::Html(html) = &library.get("essai").unwrap().segments[0] else {
        panic!()
    };
    assert!(
        !html.contains("<script") && !html.contains("onclick"),
        "{html}"
    );
    assert!(html.contains("rel=\"noopener noreferrer\""));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn in_development_an_edited_guide_is_reloaded_without_a_restart() {
    let dir = crate::common::content_copy("live");
    let mut config = crate::common::test_config();
    config.content_dir = dir.clone();
    let app = crate::common::spawn_app_with(config, None).await;
    let (_, html) = app.get_html("/aide/faq").await;
    let before = text(&html, "h1");
    let path = dir.join("faq.md");
    let source = std::fs::read_to_string(&path).unwrap();
    let edited = source.replacen(
        &format!("title = \"{before}\""),
        "title = \"FAQ modifiée\"",
        1,
    );
    assert_ne!(source, edited, "title line found");
    tokio::time::sleep(Duration::from_millis(1100)).await; // a new modification time
    std::fs::write(&path, edited).unwrap();
    let mut title = before.clone();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (_, html) = app.get_html("/aide/faq").await;
        title = text(&html, "h1");
        if title != before {
            break;
        }
    }
    assert_eq!(title, "FAQ modifiée");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn every_question_of_the_seed_is_found_in_a_readers_words() {
    let app = spawn_app().await;
    let mut wrong = Vec::new();
    for (query, expected) in [
        ("c'est quoi un credit", "credits-et-limites"),
        ("combien coute une video", "video"),
        ("bareme par type de creation", "tarifs"),
        ("plafond par jour", "credits-et-limites"),
        (
            "augmenter mes limites pour un evenement",
            "credits-et-limites",
        ),
        ("les tests rates sont ils debites", "credits-et-limites"),
        ("alerte quand il reste peu de credits", "credits-et-limites"),
        ("solde insuffisant", "credits-et-limites"),
        ("acheter un pack", "guide-d-achat"),
        ("prix du plan eglise", "tarifs"),
        ("ecrire un bon prompt", "prompts-ia"),
        ("contenus interdits alcool tabac", "respect-et-ethique"),
        ("report des credits non utilises", "credits-et-limites"),
    ] {
        let found = first_result(&app, query).await;
        if found != expected {
            wrong.push(format!("« {query} » → {found}, expected {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn guides_and_assets_are_sent_gzipped_to_browsers_that_accept_it() {
    let app = spawn_app().await;
    let plain = app.get("/aide/credits-et-limites").await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_len = plain.bytes().await.unwrap().len();
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let zipped = raw
        .get(app.url("/aide/credits-et-limites"))
        .header("Accept-Encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    // The header differs for someone signed in (the session cookie says so).
    assert_eq!(zipped.headers()["vary"], "Accept-Encoding, Cookie");
    let zipped_len = zipped.bytes().await.unwrap().len();
    assert!(zipped_len * 2 < plain_len, "{zipped_len} vs {plain_len}");
    let refused = raw
        .get(app.url("/aide/faq"))
        .header("Accept-Encoding", "gzip;q=0")
        .send()
        .await
        .unwrap();
    assert!(refused.headers().get("content-encoding").is_none());
}

/// Top-1, top-3 and mean reciprocal rank of the search on a set of (expected guide, question).
fn score(library: &Library, file: &str) -> (usize, f64, f64, f64, Vec<String>) {
    let text =
        std::fs::read_to_string(project_dir().join("tests/data/search-questions").join(file))
            .unwrap();
    let mut per_guide: std::collections::BTreeMap<String, (usize, usize, usize, f64)> =
        Default::default();
    let (mut n, mut top1, mut top3, mut rr) = (0usize, 0usize, 0usize, 0f64);
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (expected, question) = line.split_once('\t').expect("slug<TAB>question");
        let hits = library.search.search(question, 10);
        let rank = hits.iter().position(|h| h.slug == expected);
        n += 1;
        let entry = per_guide.entry(expected.to_owned()).or_default();
        entry.0 += 1;
        if rank == Some(0) {
            top1 += 1;
            entry.1 += 1;
        }
        if rank.is_some_and(|r| r < 3) {
            top3 += 1;
            entry.2 += 1;
        }
        let reciprocal = rank.map_or(0.0, |r| 1.0 / (r as f64 + 1.0));
        rr += reciprocal;
        entry.3 += reciprocal;
    }
    let lines = per_guide
        .iter()
        .map(|(slug, (count, t1, t3, rr))| {
            format!(
                "  {slug:<22} {count:>3} questions  top-1 {:.2}  top-3 {:.2}  MRR {:.2}",
                *t1 as f64 / *count as f64,
                *t3 as f64 / *count as f64,
                rr / *count as f64
            )
        })
        .collect();
    let n_f = n as f64;
    (n, top1 as f64 / n_f, top3 as f64 / n_f, rr / n_f, lines)
}

/// The readers' questions written before any tuning (#15), in two halves: the tuning half may be
/// looked at while improving the search; the frozen half never is, and decides. Prints both.
/// #15's target, 0.95 top-1 on the frozen half, is the floor.
#[test]
fn the_search_is_scored_on_readers_questions_written_before_tuning() {
    let library = Library::load(&project_dir().join("content")).unwrap_or_else(|e| panic!("{e}"));
    // While tuning, `SEARCH_EVAL_HALF=tuning` scores the tuning half alone, so that the frozen
    // figures are not seen (nor is the floor checked); `cargo run --example search_tuning` also
    // prints the tuning half's misses.
    let tuning_only = std::env::var("SEARCH_EVAL_HALF").is_ok_and(|h| h == "tuning");
    let files: &[&str] = if tuning_only {
        &["tuning.tsv"]
    } else {
        &["tuning.tsv", "frozen.tsv"]
    };
    let mut frozen_top1 = 0.0;
    for &file in files {
        let (n, top1, top3, mrr, lines) = score(&library, file);
        println!("{file}: {n} questions, top-1 {top1:.3}, top-3 {top3:.3}, MRR {mrr:.3}");
        for line in lines {
            println!("{line}");
        }
        if file == "frozen.tsv" {
            frozen_top1 = top1;
        }
    }
    if tuning_only {
        return;
    }
    assert!(
        frozen_top1 >= FROZEN_TOP1_FLOOR,
        "frozen top-1 {frozen_top1:.3}"
    );
}
/// The learned half of the search names every guide: a guide added since the last training
/// would get no help from it (`cargo run --release --example train_search -- --mix 5`).
#[test]
fn the_search_model_knows_every_guide() {
    let library = Library::load(&project_dir().join("content")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(library.search.unknown_to_model(), Vec::<&str>::new());
}

/// The frozen half's top-1 before any tuning was 0.760 (tuning half 0.821), on 2026-12-04. After
/// tuning (intents, English, corrections, compounds, lexicon; frozen half run once, after the
/// last tuning change), on 2026-12-05: frozen 0.844 (top-3 0.966, MRR 0.905), tuning 0.961
/// (top-3 0.989, MRR 0.976). Then a second writer added 320 questions, split 160/160 before any
/// tuning on them; the search was tuned on the tuning half alone (339 questions: 0.870 → 0.932)
/// and the frozen half (339) scored once: 0.870. Then the learned half (`question_model`),
/// trained on 3,588 questions by seven more writers and on the tuning half, its settings chosen
/// on four of those writers' questions while it learnt from the other three (0.756 → 0.901);
/// the frozen half scored once after training, on 2026-12-05: top-1 0.973, top-3 0.991, MRR
/// 0.982 (tuning half, now learnt: 0.994). The goal, 0.95, is the floor.
const FROZEN_TOP1_FLOOR: f64 = 0.95;
