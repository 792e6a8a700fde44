//! What the guides say, checked against the product (issue 15, « Guides and advice that are
//! right, and stay right »): one word for the owner role, examples as long as they say, no promise
//! nobody keeps.

use std::path::PathBuf;

use nanoclip::domain::prompt::word_count;
use regex::Regex;

use crate::common::{project_dir, spawn_app};

/// Each guide's file name and its body (after the front matter), with the body's first line number.
pub(crate) fn guide_bodies() -> Vec<(String, usize, String)> {
    let dir: PathBuf = project_dir().join("content");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let source = std::fs::read_to_string(&path).unwrap();
            let rest = source.strip_prefix("+++\n").unwrap();
            let end = rest.find("\n+++\n").unwrap();
            let first_line = rest[..end].lines().count() + 3;
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, first_line, rest[end + "\n+++\n".len()..].to_owned())
        })
        .collect()
}

/// The portal calls the role « propriétaire » (account page, sign-up, refusals, e-mails); a guide
/// saying « responsable » for it sends readers looking for a word the portal never shows.
#[test]
fn no_guide_calls_the_owner_role_responsable() {
    let word = Regex::new(r"(?i)\bresponsab(le|les|ilité)\b").unwrap();
    let mut found = Vec::new();
    for (file, first, body) in guide_bodies() {
        for (i, line) in body.lines().enumerate() {
            if let Some(m) = word.find(line) {
                found.push(format!(
                    "content/{file}:{}: « {} »: say « propriétaire » for the owner role",
                    first + i,
                    m.as_str()
                ));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// « 1 » to « 40 » in French words, as an example may state its length.
fn french_number(word: &str) -> Option<usize> {
    const UNITS: [&str; 17] = [
        "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
        "douze", "treize", "quatorze", "quinze", "seize", "dix-sept",
    ];
    let w = word.to_lowercase();
    if let Ok(n) = w.parse() {
        return Some(n);
    }
    if let Some(i) = UNITS.iter().position(|u| *u == w) {
        return Some(i + 1);
    }
    let tens = [("vingt", 20), ("trente", 30)];
    for (name, value) in tens {
        if w == name {
            return Some(value);
        }
        if let Some(rest) = w.strip_prefix(name) {
            let rest = rest
                .trim_start_matches(['-', ' '])
                .trim_start_matches("et-");
            let rest = rest.trim_start_matches("et ");
            return UNITS
                .iter()
                .position(|u| *u == rest)
                .filter(|&i| i < 9)
                .map(|i| value + i + 1);
        }
    }
    match w.as_str() {
        "dix-huit" => Some(18),
        "dix-neuf" => Some(19),
        _ => None,
    }
}

#[test]
fn french_numbers_are_read() {
    assert_eq!(french_number("Dix-huit"), Some(18));
    assert_eq!(french_number("vingt"), Some(20));
    assert_eq!(french_number("vingt-deux"), Some(22));
    assert_eq!(french_number("vingt-et-un"), Some(21));
    assert_eq!(french_number("trente"), Some(30));
    assert_eq!(french_number("12"), Some(12));
    assert_eq!(french_number("beaucoup"), None);
}

/// An example followed by its length (« … ». Dix-huit mots, …; « Pâques ». Un seul mot) has that
/// many words, counted as the simulator's length advice counts them.
#[test]
fn examples_that_state_their_length_have_that_many_words() {
    let stated = Regex::new(r"«\s*([^»]+?)\s*»\.?\s+([A-Za-zÀ-ÿ0-9-]+)(?: seul)? mots?\b").unwrap();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (file, first, body) in guide_bodies() {
        for (i, line) in body.lines().enumerate() {
            for c in stated.captures_iter(line) {
                let Some(said) = french_number(&c[2]) else {
                    continue;
                };
                checked += 1;
                let counted = word_count(&c[1]);
                if counted != said {
                    wrong.push(format!(
                        "content/{file}:{}: « {} » says {said} words, has {counted}",
                        first + i,
                        &c[1]
                    ));
                }
            }
        }
    }
    assert!(
        checked >= 2,
        "the examples stating their length were not found"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A reply delay is a promise that nothing in the product keeps (no setting, no measure): no page
/// states one.
#[tokio::test]
async fn no_page_promises_a_reply_delay() {
    let app = spawn_app().await;
    let delay =
        Regex::new(r"(?i)jours? ouvrés|\bsous (24|48|72) ?h|en moins de \w+ (jours|heures)")
            .unwrap();
    for path in ["/", "/contact", "/aide/faq", "/aide/depannage"] {
        let body = app.get(path).await.text().await.unwrap();
        assert!(!delay.is_match(&body), "{path} promises a reply delay");
    }
    for (file, _, body) in guide_bodies() {
        assert!(
            !delay.is_match(&body),
            "content/{file} promises a reply delay"
        );
    }
}

// ---------------------------------------------------------------- figures and the catalog

use nanoclip::content::Library;
use nanoclip::content::guide::parse_figure;
use nanoclip::domain::catalog::vat_included;
use nanoclip::domain::pricing::{Creation, CreationType, Illustrations, ImageFormat, Quantity};
use nanoclip::domain::pricing::{Request, Resolution, VideoFormat, quote};
use nanoclip::services::catalog::{Catalog, CatalogCache};
use nanoclip::web::aide::figure_text;

/// What the catalog says of a plan or a pack, as a guide may state it.
struct Entity {
    name: String,
    /// Prices in cents: TTC, HT and VAT.
    cents: Vec<i64>,
    /// Its own counts (allotment, rollover, caps; a pack's credits): a hand-written one is stale
    /// as soon as staff change it.
    fields: Vec<i64>,
    /// Credits a guide may state next to it without naming a field: the cost of a render on
    /// this plan (a pack: on any plan).
    costs: Vec<i64>,
    /// The plan's generations per day and concurrent renders (« N générations », « N rendus »).
    generations: Vec<i64>,
    renders: Vec<i64>,
}

fn unit_costs(catalog: &Catalog, plans: &[&str]) -> Vec<i64> {
    let schedule = catalog
        .schedule_at(time::OffsetDateTime::now_utc())
        .unwrap();
    let mut creations = Vec::new();
    for seconds in 5..=15 {
        for resolution in [Resolution::Hd, Resolution::FourK] {
            creations.push(Creation::Video {
                seconds,
                format: VideoFormat::Landscape,
                resolution,
            });
        }
    }
    for resolution in [Resolution::Hd, Resolution::FourK] {
        creations.push(Creation::Image {
            format: ImageFormat::Landscape,
            resolution,
        });
    }
    creations.extend((30..=90).map(|seconds| Creation::Music { seconds }));
    for pages in 4..=20 {
        for illustrations in [Illustrations::Simple, Illustrations::Rich] {
            creations.push(Creation::MiniBook {
                pages,
                illustrations,
            });
        }
    }
    let mut costs = Vec::new();
    for plan in catalog
        .plans
        .iter()
        .filter(|p| plans.contains(&p.id.as_str()))
    {
        for creation in &creations {
            let request = Request {
                creation: *creation,
                quantity: Quantity::new(1).unwrap(),
            };
            if let Ok(q) = quote(schedule, plan, &catalog.plans, &request) {
                costs.push(q.unit);
            }
        }
    }
    let _ = CreationType::ALL;
    costs.sort_unstable();
    costs.dedup();
    costs
}

fn entities(catalog: &Catalog) -> Vec<Entity> {
    let all_plans = catalog.plan_ids();
    let mut list: Vec<Entity> = catalog
        .plans
        .iter()
        .map(|p| Entity {
            name: p.name.clone(),
            cents: vec![
                p.price_cents.0,
                p.price_cents.0 - vat_included(p.price_cents).0,
                vat_included(p.price_cents).0,
            ],
            fields: vec![
                p.credits_per_period,
                p.rollover_cap,
                p.daily_generations,
                p.monthly_credits,
                p.concurrent_renders,
            ],
            costs: unit_costs(catalog, &[p.id.as_str()]),
            generations: vec![p.daily_generations],
            renders: vec![p.concurrent_renders],
        })
        .collect();
    list.extend(catalog.packs.iter().map(|p| Entity {
        name: p.name.clone(),
        cents: vec![
            p.price_cents.0,
            p.price_cents.0 - p.vat_cents().0,
            p.vat_cents().0,
        ],
        fields: vec![p.credits.0],
        costs: unit_costs(catalog, &all_plans),
        generations: vec![],
        renders: vec![],
    }));
    list
}

/// A number a guide states: its value (cents for euros) and its unit.
#[derive(Debug, PartialEq)]
enum Stated {
    Cents(i64),
    Credits(i64),
    Generations(i64),
    Renders(i64),
}

/// The figures of a piece of text: « 29,00 € », « 12 € », « 30 crédits », « 15 générations »,
/// « 4 rendus ». A number right after a digit or a comma (« 0,8 crédit ») is not one.
fn stated(text: &str) -> Vec<Stated> {
    let figure = Regex::new(
        r"(^|[^\d,])(\d{1,3}(?:[\u{202f}\u{a0} ]\d{3})*)(?:,(\d{2}))?[\u{a0}\u{202f} ]?(€|crédits?\b|générations?\b|rendus?\b)",
    )
    .unwrap();
    figure
        .captures_iter(text)
        .map(|c| {
            let n: i64 = c[2]
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap();
            match &c[4] {
                "€" => {
                    Stated::Cents(n * 100 + c.get(3).map_or(0, |m| m.as_str().parse().unwrap()))
                }
                u if u.starts_with("crédit") => Stated::Credits(n),
                u if u.starts_with("génération") => Stated::Generations(n),
                _ => Stated::Renders(n),
            }
        })
        .collect()
}

/// Where a guide's text states a figure next to one plan or pack that its catalog entry
/// contradicts. A statement (a sentence, a table row) naming one plan or pack is checked whole;
/// one naming several is cut into clauses (« , », « ; », « et », « ou »), each checked when it
/// names one. A « Pack N crédits » that is no pack of the catalog is a contradiction too.
fn contradictions(text: &str, entities: &[Entity]) -> (usize, Vec<String>) {
    let pack_name = Regex::new(r"Pack \d+ crédits").unwrap();
    let mut checked = 0;
    let mut found = Vec::new();
    for line in text.lines() {
        for m in pack_name.find_iter(line) {
            if !entities.iter().any(|e| e.name == m.as_str()) {
                found.push(format!(
                    "« {} » is no pack of the catalog: {line}",
                    m.as_str()
                ));
            }
        }
        let statements: Vec<&str> = if line.trim_start().starts_with('|') {
            vec![line]
        } else {
            line.split_inclusive(['.', '!', '?']).collect()
        };
        for statement in statements {
            let named = |t: &str| -> Vec<usize> {
                (0..entities.len())
                    .filter(|&i| t.contains(entities[i].name.as_str()))
                    .collect()
            };
            let pieces: Vec<&str> = if named(statement).len() > 1 {
                statement
                    .split(", ")
                    .flat_map(|c| c.split(';'))
                    .flat_map(|c| c.split(" et "))
                    .flat_map(|c| c.split(" ou "))
                    .collect()
            } else {
                vec![statement]
            };
            for piece in pieces {
                let [i] = named(piece)[..] else { continue };
                let entity = &entities[i];
                // The entity's own name holds no figure (« Pack 10 crédits »).
                let rest = piece.replace(entity.name.as_str(), "");
                for figure in stated(&rest) {
                    checked += 1;
                    let ok = match figure {
                        Stated::Cents(c) => entity.cents.contains(&c),
                        Stated::Credits(n) => {
                            entity.fields.contains(&n) || entity.costs.contains(&n)
                        }
                        Stated::Generations(n) => entity.generations.contains(&n),
                        Stated::Renders(n) => entity.renders.contains(&n),
                    };
                    if !ok {
                        found.push(format!(
                            "{figure:?} next to « {} » contradicts the catalog: {}",
                            entity.name,
                            piece.trim()
                        ));
                    }
                }
            }
        }
    }
    (checked, found)
}

/// A guide's source with each inline shortcode replaced: by its figure on `catalog`, or by
/// `marker` when `catalog` is `None`.
fn resolved(body: &str, catalog: Option<&Catalog>, marker: &str) -> String {
    let shortcode = Regex::new(r"\{\{<(.*?)>\}\}").unwrap();
    shortcode
        .replace_all(body, |c: &regex::Captures| {
            let inside = c[1].trim();
            if matches!(inside, "bareme" | "plans" | "packs") {
                return String::new();
            }
            match catalog {
                None => marker.to_owned(),
                Some(catalog) => {
                    let figure = parse_figure(inside).unwrap_or_else(|e| panic!("{e}"));
                    figure_text(&figure, catalog, time::OffsetDateTime::now_utc())
                        .unwrap_or_else(|| panic!("{inside}"))
                }
            }
        })
        .into_owned()
}

async fn seeded_catalog(app: &crate::common::TestApp) -> std::sync::Arc<Catalog> {
    CatalogCache::default().get(&app.pool).await.unwrap()
}

#[tokio::test]
async fn every_figure_of_the_guides_resolves_on_the_catalog() {
    let app = spawn_app().await;
    let catalog = seeded_catalog(&app).await;
    let library = Library::load(&project_dir().join("content")).unwrap_or_else(|e| panic!("{e}"));
    let mut count = 0;
    for guide in &library.guides {
        for figure in &guide.figures {
            count += 1;
            assert!(
                figure_text(figure, &catalog, time::OffsetDateTime::now_utc()).is_some(),
                "{}: {figure:?} is not in the catalog",
                guide.slug
            );
        }
    }
    // A few of them, as the seeded catalog words them.
    for (shortcode, text) in [
        ("{{< prix eglise >}}", "29,00\u{a0}€"),
        ("{{< tva eglise >}}", "4,83\u{a0}€"),
        ("{{< credits musique-unite >}}", "3"),
        (
            "{{< cout type=video duree=10 resolution=4k plan=reseau >}}",
            "5",
        ),
        ("{{< par-page illustrations=simples >}}", "0,5"),
        ("{{< par-page illustrations=riches plan=reseau >}}", "0,8"),
        ("{{< par-page illustrations=riches plan=eglise >}}", "1"),
    ] {
        assert_eq!(resolved(shortcode, Some(&catalog), ""), text, "{shortcode}");
    }
    // Rendered, with « crédit » agreeing with its figure.
    let video = app.get("/aide/video").await.text().await.unwrap();
    assert!(
        video.contains("un essai de 5 secondes coûte 2 crédits."),
        "{video}"
    );
    let music = app.get("/aide/musique").await.text().await.unwrap();
    assert!(music.contains("(1 crédit), puis lancez la version de 90 secondes (3 crédits)"));
    let books = app.get("/aide/mini-livres").await.text().await.unwrap();
    assert!(books.contains("0,8 crédit par page sur le Plan Réseau"));
    println!("{count} figures in the guides, all from the catalog");
    assert!(count >= 60, "{count} figures");
}

/// Issue 15: « a test fails when a guide states a number that the catalog contradicts ». Every
/// guide, its shortcodes filled from the seeded catalog, is read for figures next to a plan or
/// a pack; and no price is written by hand (a shortcode gives it).
#[tokio::test]
async fn no_guide_states_a_figure_the_catalog_contradicts() {
    let app = spawn_app().await;
    let catalog = seeded_catalog(&app).await;
    let entities = entities(&catalog);
    let mut checked = 0;
    let mut problems = Vec::new();
    for (file, first, body) in guide_bodies() {
        let (n, found) = contradictions(&resolved(&body, Some(&catalog), ""), &entities);
        checked += n;
        problems.extend(found.into_iter().map(|p| format!("content/{file}: {p}")));
        // Prices come from the catalog only: a hand-written « N € » goes stale.
        let by_hand = resolved(&body, None, "⟦figure⟧");
        for (i, line) in by_hand.lines().enumerate() {
            for figure in stated(line) {
                if let Stated::Cents(_) = figure {
                    problems.push(format!(
                        "content/{file}:{}: {figure:?} written by hand; use {{{{< prix … >}}}}",
                        first + i
                    ));
                }
            }
        }
    }
    println!("{checked} figures next to a plan or a pack checked against the catalog");
    assert!(checked >= 55, "only {checked} figures were checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself: stale figures written by hand are caught; the same sentences with the
/// catalog's figures pass.
#[tokio::test]
async fn the_figure_checker_catches_stale_figures() {
    let app = spawn_app().await;
    let catalog = seeded_catalog(&app).await;
    let entities = entities(&catalog);
    let stale = [
        "- **Plan Église — 35 € / mois :** 30 crédits par période.",
        "Jusqu’à 31 crédits (Plan Église) ou 50 crédits (Plan Réseau) passent sur la période suivante.",
        "Les packs : Pack 10 crédits à 15 €, Pack 30 crédits à 33 €.",
        "Le Pack 20 crédits n’existe pas.",
        "(16 générations sur le Plan Église, 60 sur le Plan Réseau)",
        "| Plan Réseau, 99 € | 82,00 € | 16,50 € |",
    ];
    for text in stale {
        let (_, found) = contradictions(text, &entities);
        assert_eq!(found.len(), 1, "{text}: {found:?}");
    }
    let right = [
        "- **Plan Église — 29,00\u{a0}€ / mois :** 30 crédits par période.",
        "Jusqu’à 10 crédits (Plan Église) ou 50 crédits (Plan Réseau) passent sur la période suivante.",
        "Les packs : Pack 10 crédits à 12 €, Pack 30 crédits à 33 €.",
        "(15 générations sur le Plan Église, 60 sur le Plan Réseau)",
        "| Plan Réseau, 99 € | 82,50 € | 16,50 € |",
    ];
    for text in right {
        let (checked, found) = contradictions(text, &entities);
        assert!(checked > 0 && found.is_empty(), "{text}: {found:?}");
    }
    // After staff change a price, a hand-written price contradicts it; a shortcode follows it.
    sqlx::query("UPDATE plans SET price_cents = 3500 WHERE id = 'eglise'")
        .execute(&app.pool)
        .await
        .unwrap();
    let changed = CatalogCache::default().get(&app.pool).await.unwrap();
    let entities = self::entities(&changed);
    let (_, found) = contradictions("Plan Église — 29 € / mois.", &entities);
    assert_eq!(found.len(), 1, "{found:?}");
    let with_shortcode = resolved(
        "Plan Église — {{< prix eglise >}} / mois.",
        Some(&changed),
        "",
    );
    assert_eq!(with_shortcode, "Plan Église — 35,00\u{a0}€ / mois.");
    assert!(contradictions(&with_shortcode, &entities).1.is_empty());
}
