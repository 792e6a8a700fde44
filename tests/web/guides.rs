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
