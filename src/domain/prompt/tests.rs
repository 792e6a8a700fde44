//! Unit tests of the checker and the labelled corpus (`tests/data/prompts.tsv`).

use super::*;
use crate::domain::pricing::CreationType;

const RULES: &str = include_str!("../../../content/prompt-rules.toml");
const CORPUS: &str = include_str!("../../../tests/data/prompts.tsv");

fn rules() -> PromptRules {
    PromptRules::from_toml(RULES).unwrap_or_else(|e| panic!("content/prompt-rules.toml: {e}"))
}

fn category(rules: &PromptRules, prompt: &str) -> Option<Category> {
    rules.check(prompt).category
}

/// Which rule and term refused a prompt, for failure messages.
fn why(rules: &PromptRules, prompt: &str) -> String {
    rules
        .explain(prompt)
        .iter()
        .map(|e| format!("{} « {} »", e.rule, e.term))
        .collect::<Vec<_>>()
        .join(", ")
}

fn assert_allowed(rules: &PromptRules, prompt: &str) {
    assert!(
        rules.check(prompt).allowed(),
        "{prompt:?} was refused by {}",
        why(rules, prompt)
    );
}

fn assert_refused(rules: &PromptRules, prompt: &str, expected: Category) {
    assert_eq!(
        category(rules, prompt),
        Some(expected),
        "{prompt:?} (rules fired: {})",
        why(rules, prompt)
    );
}

fn folded(text: &str) -> Vec<String> {
    split_words(text).into_iter().map(|w| w.text).collect()
}

/// A small rules file for tests of the matcher itself, independent of the real data.
const MINI: &str = r#"
    [advice]
    max_words = 5
    formats = ["16:9", "affiche*"]
    voices = ["voix", "chant grégorien"]
    [advice.styles]
    aquarelle = ["aquarelle*"]
    photo = ["photo"]
    "réaliste" = ["réaliste*", "photo réaliste"]
    [sets]
    sacre = ["jésus", "vierge"]
    [global]
    exceptions = ["vin de messe"]
    [[rules]]
    category = "drugs_danger"
    name = "drogues"
    terms = ["drogu*", "sexe", "vin"]
    exceptions = ["droguerie*"]
    safe_contexts = ["contre la drogue"]
    [[rules]]
    category = "hate_violence"
    name = "moquerie"
    terms = ["parodi*"]
    with = ["@sacre"]
    window = 3
"#;

fn mini() -> PromptRules {
    PromptRules::from_toml(MINI).expect("mini rules load")
}

#[test]
fn category_ids_round_trip() {
    for category in Category::ALL {
        assert_eq!(Category::parse(category.id()), Some(category));
    }
    assert_eq!(Category::parse("violence"), None);
}

#[test]
fn folding_removes_case_accents_and_ligatures() {
    assert_eq!(
        folded("ÉGLISE Noël Œuvre cœur"),
        ["eglise", "noel", "oeuvre", "coeur"]
    );
    assert_eq!(folded("Straße Ægée"), ["strasse", "aegee"]);
    // Combining marks and invisible characters do not cut a word.
    assert_eq!(folded("dro\u{301}gue dro\u{200B}gue"), ["drogue", "drogue"]);
    assert_eq!(folded("ｄｒｏｇｕｅ 𝐝𝐫𝐨𝐠𝐮𝐞"), ["drogue", "drogue"]);
    // Cyrillic look-alikes.
    assert_eq!(folded("сеxе"), ["cexe"]);
    assert_eq!(folded("l’église d'Ars"), ["l", "eglise", "d", "ars"]);
}

#[test]
fn terms_match_whole_words_only() {
    let rules = mini();
    for prompt in [
        "vue sur l'Essex",
        "Sussex et Middlesex",
        "une campagne antidrogue",
        "vingt vinaigres",
        "un sextant",
    ] {
        assert!(rules.check(prompt).allowed(), "{prompt}");
    }
    for prompt in ["le sexe", "vingt vins", "drogue"] {
        assert!(!rules.check(prompt).allowed(), "{prompt}");
    }
    // The same with the real rules, on words that start like a forbidden one.
    let rules = self::rules();
    for prompt in [
        "Vue sur la campagne de l'Essex",
        "La droguerie du village",
        "La moquette neuve de la sacristie",
        "Une statue de saint Roch",
        "Le train à vapeur des enfants",
        "Pique-nique paroissial",
        "Ci-joint l'affiche de la kermesse",
        "L'humilité de la Vierge",
        "Le cocktail de fruits de la kermesse",
        "Un violon et une viole de gambe",
        "Les vins bordelais de la tombola",
        "Sortie à la mer, bouées et pelles",
    ] {
        assert_allowed(&rules, prompt);
    }
}

/// Words that fold or stem into a forbidden term, found by running French and English
/// dictionaries through the rules.
#[test]
fn ordinary_words_that_look_forbidden_are_allowed() {
    let rules = rules();
    for prompt in [
        "Nous avons hâte de vous voir à la fête paroissiale",
        "A girl with long hair singing in the choir",
        "Un paysage stupéfiant de la Galilée au lever du soleil",
        "Saint François stigmatisé sur le mont Alverne",
        "Tuesday evening prayer meeting, Tues 7pm",
        "Bedouin tents near Bethlehem",
        "Snuff the candles after the service",
        "A chink of light through the stained glass",
        "Flashing lights at the youth concert",
        "Pirate booty treasure hunt for the kids",
        "Gratin au fromage râpé pour le repas des aînés",
        "Les enfants chantent à tue-tête",
        "Une formule lapidaire du pape",
        "Effeuiller la marguerite au camp scout",
        "Rafler tous les prix au concours de crèches",
        "Une robe de mariée au dos nu",
        "Vendredi saint, croix nue et autel dépouillé",
        "Stripping of the altar on Maundy Thursday",
        "The Sodomites in the story of Lot, engraving",
        "Car dealership sponsors the parish fair",
        "A child with the sniffles at Sunday school",
        "La Visitation : Marie au ventre bombé rencontre Élisabeth",
        "Le bedonnant frère cuisinier du monastère",
        "Humeur massacrante du sacristain, dessin humoristique",
    ] {
        assert_allowed(&rules, prompt);
    }
}

#[test]
fn stems_catch_inflections_and_words_their_plural() {
    let rules = mini();
    for prompt in [
        "drogues",
        "droguée",
        "ils se droguent",
        "DROGUÉS",
        "sexes",
        "vins",
    ] {
        assert!(rules.check(prompt).category.is_some(), "{prompt}");
    }
}

#[test]
fn light_evasions_are_seen_through() {
    let rules = mini();
    for prompt in [
        "d r o g u e",
        "d.r.o.g.u.e",
        "drog-ue",
        "dr0gue",
        "d-r-0-g-u-e-s",
        "drooogue",
        "dro\u{200B}gue",
        "drog😀ue",
        "s e x e",
        "s.e.x.e",
    ] {
        assert_eq!(
            rules.check(prompt).category,
            Some(Category::DrugsDanger),
            "{prompt}"
        );
    }
    // An apostrophe never glues words: « l'ivresse » is not `livresse`.
    assert_eq!(folded("l'a"), ["l", "a"]);
}

#[test]
fn exceptions_and_safe_contexts_neutralise_a_term() {
    let rules = mini();
    assert!(rules.check("le vin de messe").allowed());
    assert!(rules.check("le vin et le vin de messe").category.is_some());
    assert!(rules.check("une soirée contre la drogue").allowed());
}

#[test]
fn a_with_rule_needs_both_terms_close_together() {
    let rules = mini();
    assert_eq!(
        rules.check("une parodie de Jésus").category,
        Some(Category::HateViolence)
    );
    assert!(rules.check("une parodie de film").allowed());
    assert!(
        rules
            .check("une parodie de film, un, deux, trois, quatre, Jésus")
            .allowed()
    );
}

#[test]
fn the_first_rule_in_the_file_names_the_category() {
    let text = |first: &str, second: &str| {
        format!(
            "[advice]\nmax_words = 30\nformats = []\n[advice.styles]\n\
             [[rules]]\ncategory = \"{first}\"\nname = \"a\"\nterms = [\"ivre\"]\n\
             [[rules]]\ncategory = \"{second}\"\nname = \"b\"\nterms = [\"ivre\"]\n"
        )
    };
    for (first, second) in [
        ("hate_violence", "drugs_danger"),
        ("drugs_danger", "sexual"),
    ] {
        let rules = PromptRules::from_toml(&text(first, second)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rules.check("ivre").category, Category::parse(first));
        let fired: Vec<String> = rules.explain("ivre").into_iter().map(|e| e.rule).collect();
        assert_eq!(fired, ["a", "b"]);
    }
}

#[test]
fn a_disguised_term_fires_without_its_partner_only_where_allowed() {
    let text = |alone: bool| {
        format!(
            "[advice]\nmax_words = 30\nformats = []\n[advice.styles]\n\
             [[rules]]\ncategory = \"drugs_danger\"\nname = \"joints\"\n\
             terms = [\"joint\"]\nwith = [\"fume\"]\nwindow = 2\ndisguised_alone = {alone}\n"
        )
    };
    let strict = PromptRules::from_toml(&text(false)).unwrap_or_else(|e| panic!("{e}"));
    let alone = PromptRules::from_toml(&text(true)).unwrap_or_else(|e| panic!("{e}"));
    for rules in [&strict, &alone] {
        assert!(rules.check("le joint du lavabo").allowed());
        assert!(!rules.check("il fume un joint").allowed());
    }
    for prompt in ["un j0int", "un j.o.i.n.t", "un jooooint"] {
        assert!(strict.check(prompt).allowed(), "{prompt}");
        assert!(!alone.check(prompt).allowed(), "{prompt}");
    }
}

#[test]
fn rules_errors_are_reported() {
    let cases = [
        ("not toml [", "TOML"),
        (
            "[advice]\nmax_words = 3\nformats = []\n[advice.styles]\n[[rules]]\ncategory = \"gore\"\nname = \"x\"\nterms = [\"a\"]",
            "unknown category",
        ),
        (
            "[advice]\nmax_words = 3\nformats = [\" \"]\n[advice.styles]",
            "empty term",
        ),
        (
            "[advice]\nmax_words = 3\nformats = [\"nu*\"]\n[advice.styles]",
            "at least 3 letters",
        ),
        (
            "[advice]\nmax_words = 3\nformats = [\"@nope\"]\n[advice.styles]",
            "unknown set",
        ),
        (
            "[advice]\nmax_words = 0\nformats = []\n[advice.styles]",
            "max_words",
        ),
        (
            "[advice]\nmax_words = 3\nformats = []\n[advice.styles]\n[[rules]]\ncategory = \"sexual\"\nname = \"x\"\nterms = []",
            "no terms",
        ),
    ];
    for (text, expected) in cases {
        let message = PromptRules::from_toml(text)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string());
        assert!(message.contains(expected), "{expected}: got {message:?}");
    }
}

#[test]
fn advice_warns_about_length_format_and_mixed_styles() {
    let rules = mini();
    assert_eq!(
        rules.check("un deux trois quatre cinq six").advice,
        [Advice::TooLong { words: 6, max: 5 }, Advice::NoFormat]
    );
    assert_eq!(rules.check("Noël, affiche A4").advice, []);
    assert_eq!(rules.check("Noël en 16:9").advice, []);
    assert_eq!(
        rules.check("photo aquarelle 16:9").advice,
        [Advice::SeveralStyles {
            styles: vec!["photo".into(), "aquarelle".into()]
        }]
    );
    // Overlapping style terms count once, the longest winning.
    assert_eq!(rules.check("photo réaliste 16:9").advice, []);
}

fn fields(creation_type: CreationType, format_given: bool) -> Fields {
    Fields {
        creation_type,
        format_given,
    }
}

#[test]
fn a_video_or_an_image_is_never_asked_for_a_format_in_the_prompt() {
    let rules = mini();
    for t in [CreationType::Video, CreationType::Image] {
        // The form's field holds the format: nothing to say, whatever the prompt names.
        assert_eq!(
            rules.check_for("Noël en famille", fields(t, true)).advice,
            []
        );
        assert_eq!(rules.check_for("Noël en 16:9", fields(t, true)).advice, []);
        // The field left empty: the default applies, and the advice says so (not « write it »).
        assert_eq!(
            rules.check_for("Noël en famille", fields(t, false)).advice,
            [Advice::DefaultFormat { creation_type: t }]
        );
        // Length and styles still count.
        assert_eq!(
            rules
                .check_for("un deux trois quatre cinq six", fields(t, true))
                .advice,
            [Advice::TooLong { words: 6, max: 5 }]
        );
        assert_eq!(
            rules.check_for("photo aquarelle", fields(t, true)).advice,
            [Advice::SeveralStyles {
                styles: vec!["photo".into(), "aquarelle".into()]
            }]
        );
    }
}

#[test]
fn music_gets_no_format_advice_and_is_told_it_has_no_voice() {
    let rules = mini();
    let music = fields(CreationType::Music, false);
    assert_eq!(rules.check_for("orgue doux pour Noël", music).advice, []);
    // A format field sent along with music is ignored, as the simulator ignores it.
    assert_eq!(
        rules
            .check_for("orgue doux pour Noël", fields(CreationType::Music, true))
            .advice,
        []
    );
    assert_eq!(
        rules.check_for("voix douce et orgue", music).advice,
        [Advice::Instrumental]
    );
    assert_eq!(
        rules.check_for("chant grégorien pour Pâques", music).advice,
        [Advice::Instrumental]
    );
    // Voices only matter for music: an image of a choir is no problem.
    assert_eq!(
        rules
            .check_for("une voix", fields(CreationType::Image, true))
            .advice,
        []
    );
}

#[test]
fn a_mini_book_gets_no_format_advice() {
    let rules = mini();
    let book = fields(CreationType::MiniBook, false);
    assert_eq!(rules.check_for("la création du monde", book).advice, []);
    assert_eq!(
        rules
            .check_for("un deux trois quatre cinq six", book)
            .advice,
        [Advice::TooLong { words: 6, max: 5 }]
    );
}

#[test]
fn the_real_rules_give_type_aware_advice() {
    let rules = rules();
    let music = rules.check_for(
        "Méditation douce à l’orgue avec une chorale",
        fields(CreationType::Music, true),
    );
    assert_eq!(music.advice, [Advice::Instrumental]);
    assert!(
        rules
            .check_for(
                "Méditation douce à l’orgue",
                fields(CreationType::Music, false)
            )
            .advice
            .is_empty()
    );
    assert!(
        rules
            .check_for(
                "La Nativité, crèche lumineuse",
                fields(CreationType::Video, true)
            )
            .advice
            .is_empty()
    );
}

#[test]
fn an_empty_prompt_gets_no_category_and_no_advice() {
    let rules = rules();
    for prompt in ["", "   ", "\n\t", " ?! — "] {
        assert_eq!(
            rules.check(prompt),
            PromptCheck {
                category: None,
                advice: vec![]
            }
        );
    }
}

#[test]
fn odd_unicode_never_panics() {
    let rules = rules();
    let long = "Noël ".repeat(2_000);
    let letters = "d ".repeat(5_000);
    let inputs = [
        long.as_str(),
        letters.as_str(),
        "\0\0drogue\0",
        "\u{202E}eugord\u{202C} 16:9",
        "🙏✝️⛪🕊️ 👨‍👩‍👧 🇫🇷",
        "e\u{301}\u{301}\u{301}\u{301}glise",
        "\u{301}\u{301}",
        "İstanbul ǅ ﬁ ẞ",
        "مرحبا بكم في الكنيسة",
        "教会的圣诞节",
        "𝐝𝐫𝐨𝐠𝐮𝐞 Ⓓⓡⓞⓖⓤⓔ",
        "a\u{FEFF}\u{200D}b",
        "1 1 1 1 1 1 @ @ $ $",
        "'''''''",
    ];
    for input in inputs {
        let _ = rules.check(input);
    }
    assert_eq!(
        rules.check(&long).advice.first(),
        Some(&Advice::TooLong {
            words: 2_000,
            max: 30
        })
    );
}

/// Thousands of prompts drawn from awkward characters: none may panic.
#[test]
fn random_odd_prompts_never_panic() {
    let rules = rules();
    let alphabet: Vec<char> =
        "ab dr0gue-.'’ \u{0}\u{301}\u{200B}\u{202E}\u{FEFF}\u{FE0F}🙏👨‍👩‍👧é œßİ𝐝ⓓｄсх1@$*|:9\n\t"
            .chars()
            .collect();
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..3_000 {
        let mut prompt = String::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let length = (seed % 60) as usize;
        for _ in 0..length {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if let Some(&c) = alphabet.get((seed % alphabet.len() as u64) as usize) {
                prompt.push(c);
            }
        }
        let check = rules.check(&prompt);
        let _ = rules.explain(&prompt);
        if prompt.trim().is_empty() {
            assert!(check.allowed() && check.advice.is_empty(), "{prompt:?}");
        }
    }
}

#[test]
fn church_vocabulary_is_never_refused() {
    let rules = rules();
    for prompt in [
        "Le sang du Christ versé pour nous, vitrail, format carré",
        "Le vin de messe et le pain sur l'autel, photo, 16:9",
        "La crucifixion au Golgotha, style icône byzantine",
        "La Cène : Jésus partage le pain et le vin avec les douze apôtres",
        "Chemin de croix en 14 stations pour le Vendredi saint",
        "Le martyre de saint Étienne, lapidé hors de Jérusalem, vitrail",
        "Saint Jean-Baptiste décapité sur ordre d'Hérode, gravure",
        "Saint Sébastien percé de flèches, peinture à l'huile",
        "David et Goliath : le jeune berger abat le géant avec sa fronde",
        "David kills Goliath with a single stone, cartoon for kids",
        "Conférence pour les jeunes contre la drogue, affiche A4",
        "Prière pour les personnes qui luttent contre l'addiction à l'alcool et à la drogue",
        "Campagne de prévention sur l'alcool pour la fête de la paroisse, affiche",
        "Adam et Ève dans le jardin d'Éden racontés aux enfants, dessin animé",
        "Adam et Ève, nus et innocents, cachés derrière des feuilles de figuier, pour le caté",
        "Les noces de Cana : Jésus change l'eau en vin",
        "Le massacre des Innocents ordonné par Hérode, enluminure",
        "Youth night: say no to drugs, testimony of a former addict, vertical video",
        "La fumée blanche au-dessus de la chapelle Sixtine",
        "Marie, humble servante, l'humilité de la Vierge, aquarelle",
        "Les soldats se moquent de Jésus couronné d'épines, station du chemin de croix",
        "Kermesse paroissiale avec buvette, crêpes et pique-nique, affiche",
        "Les cœurs meurtris consolés par le Christ, vidéo 9:16",
        "Jeanne d'Arc, héroïne de la foi, vitrail",
        "Pièce jointe : le programme du catéchisme, ci-joint l'affiche",
        "Sainte Thérèse d'Avila en extase, style baroque",
        "Au sein de notre paroisse, les jeunes préparent Pâques",
        "Le marié en smoking et la mariée devant l'église, photo",
        "Cortège funèbre : la mise en bière avant les obsèques",
        "La fumée de l'encens monte vers l'autel, vidéo verticale",
        "Pentecôte : les langues de feu descendent sur les apôtres",
        "Le jeûne du Carême, quarante jours dans le désert",
        "Culte de louange des jeunes avec la chorale, format story",
    ] {
        assert_allowed(&rules, prompt);
    }
}

#[test]
fn mockery_of_the_sacred_is_refused() {
    let rules = rules();
    for prompt in [
        "Une parodie de la crucifixion avec des clowns",
        "Caricature de la Vierge Marie comme une blague",
        "Un prêtre ivre et ridiculisé devant ses paroissiens",
        "A drunk priest stumbling around the altar, funny",
        "Jesus as a clown mocking his disciples",
    ] {
        assert_refused(&rules, prompt, Category::HateViolence);
    }
}

#[test]
fn each_category_catches_plain_and_evaded_terms() {
    let rules = rules();
    for (prompt, expected) in [
        ("Une femme nue sur la plage", Category::Sexual),
        ("photo s.e.x.y d'une paroissienne", Category::Sexual),
        (
            "Affiche raciste contre les immigrés",
            Category::HateViolence,
        ),
        (
            "scène gore avec du sang qui gicle partout",
            Category::HateViolence,
        ),
        (
            "des jeunes qui fument un joint derrière l'église",
            Category::DrugsDanger,
        ),
        ("ado qui sniffe de la c0caïne", Category::DrugsDanger),
        ("d r o g u e à la sortie du caté", Category::DrugsDanger),
        (
            "des scouts complètement ivres au camp",
            Category::DrugsDanger,
        ),
    ] {
        assert_refused(&rules, prompt, expected);
    }
}

#[test]
fn a_thirty_word_prompt_is_checked_quickly() {
    let rules = rules();
    let prompt = "Affiche A4 pour la veillée de Noël des jeunes de la paroisse Saint-Joseph, \
                  une crèche lumineuse sous un ciel étoilé, bergers et anges, style aquarelle \
                  douce, couleurs chaudes, texte Joyeux Noël";
    let runs = 2_000;
    let started = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(rules.check(std::hint::black_box(prompt)));
    }
    let each = started.elapsed() / runs;
    println!("check on a 30-word prompt: {each:?}");
    // Generous bound: debug builds on a busy CI machine are many times slower than release.
    assert!(each < std::time::Duration::from_millis(2), "{each:?}");
}

#[test]
fn the_labelled_corpus_meets_the_targets() {
    let rules = rules();
    let mut total = 0;
    // counts[expected][got]: index 0 is `ok`, then Category::ALL.
    let mut counts = [[0usize; 4]; 4];
    let mut failures = Vec::new();
    let slot = |c: Option<Category>| {
        c.map_or(0, |c| {
            1 + Category::ALL.iter().position(|x| *x == c).unwrap_or(0)
        })
    };
    for (number, line) in CORPUS.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (label, prompt) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("line {}: no tab", number + 1));
        let expected = match label {
            "ok" => None,
            id => Some(
                Category::parse(id)
                    .unwrap_or_else(|| panic!("line {}: unknown label {id:?}", number + 1)),
            ),
        };
        let got = category(&rules, prompt);
        total += 1;
        counts[slot(expected)][slot(got)] += 1;
        if got != expected {
            failures.push(format!(
                "line {}: expected {}, got {} ({}) : {prompt}",
                number + 1,
                expected.map_or("ok", Category::id),
                got.map_or("ok", Category::id),
                why(&rules, prompt)
            ));
        }
    }

    println!("\n{total} prompts");
    println!(
        "{:<14} {:>5} {:>9} {:>7}",
        "category", "n", "precision", "recall"
    );
    let mut recalls = Vec::new();
    for (k, category) in Category::ALL.iter().enumerate() {
        let k = k + 1;
        let n: usize = counts[k].iter().sum();
        let predicted: usize = counts.iter().map(|row| row[k]).sum();
        let correct = counts[k][k];
        let precision = correct as f64 / predicted.max(1) as f64;
        let recall = correct as f64 / n.max(1) as f64;
        println!(
            "{:<14} {n:>5} {precision:>9.3} {recall:>7.3}",
            category.id()
        );
        recalls.push((category.id(), recall));
    }
    let ok_total: usize = counts[0].iter().sum();
    let false_refusals = ok_total - counts[0][0];
    println!(
        "{:<14} {ok_total:>5} false refusals: {false_refusals}",
        "ok"
    );
    for failure in &failures {
        println!("{failure}");
    }

    assert!(
        total >= 200,
        "the corpus needs at least 200 prompts, has {total}"
    );
    assert_eq!(false_refusals, 0, "fine prompts were refused");
    for (id, recall) in recalls {
        assert!(recall >= 0.95, "recall for {id} is {recall:.3}");
    }
}
