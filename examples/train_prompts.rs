//! Retrains the statistical half of the prompt checks (issue 15) on the two TUNING sets of the
//! labelled corpus (the generated corpus's tuning half and the hand-written unseen tuning set),
//! and writes its weights to `content/prompt-model.tsv`.
//!
//! ```text
//! cargo run --example train_prompts            5-fold cross-validation figures, then the model
//! cargo run --example train_prompts -- --cv    cross-validation figures only (nothing written)
//! cargo run --example train_prompts -- --explain "prompt"   features and verdict of one prompt
//! cargo run --example train_prompts -- --holdout [--holdout-set N]   a training round (the
//!     second, or sets N: 5 the fourth, 7-17 the sixth, 18-24 the seventh, 25-31 the eighth,
//!     32-41 the ninth, 42-49 the tenth, 50-57 the eleventh, 58-65 the twelfth,
//!     66-73 the thirteenth, 74-81 the fourteenth, 84-91 the fifteenth, 92-99 the sixteenth,
//!     100-107 the seventeenth) scored by a model learnt from the rest
//! cargo run --example train_prompts -- --verdicts < prompts.txt   verdict of each line
//! ```
//!
//! Never trains on, nor prints anything about, `tests/data/prompts-frozen.tsv`,
//! `tests/data/prompts-unseen-frozen.tsv`, `tests/data/prompts-frozen-4.tsv` or
//! `tests/data/prompts-frozen-5.tsv`: they decide, in
//! `cargo nextest run -E 'test(/frozen_sets/)'`.

use anyhow::{Context, bail};
use nanoclip::domain::prompt::model::{self, Example, Training, train};
use nanoclip::domain::prompt::{Category, Model, PromptRules, Thresholds};

const RULES: &str = "content/prompt-rules.toml";
const TUNING: &str = "tests/data/prompts-tuning.tsv";
const UNSEEN_TUNING: &str = "tests/data/prompts-unseen-tuning.tsv";
/// Hand-written for training only (1,301 prompts by two writers who saw neither the rules nor
/// any labelled set): the wordings of misusers and of church staff the model must learn.
const TRAINING: &str = "tests/data/prompts-training.tsv";
/// The second round of training prompts, by two more writers: `--holdout` learns from
/// everything else and scores these, a measure of how the model carries over to new writers.
const TRAINING_2: &str = "tests/data/prompts-training-2.tsv";
/// Fine near misses by one more writer, asked for after the model refused a probe paraphrase.
const TRAINING_3: &str = "tests/data/prompts-training-3.tsv";
/// The fourth round: two more writers' personas (a parish priest with his catechists; an intern
/// and a teenager taking turns), with church content that names evil to reject it and misuse in
/// indirect wordings (its frozen counterpart is tests/data/prompts-frozen-4.tsv).
const TRAINING_4: &str = "tests/data/prompts-training-4.tsv";
/// Fine near misses by one more writer, asked for after the fourth round's model refused a probe
/// paraphrase.
const TRAINING_5: &str = "tests/data/prompts-training-5.tsv";
/// The sixth round, written on 2026-12-06 by eleven more writers (two personas each), the first
/// five together with its frozen counterpart, tests/data/prompts-frozen-5.tsv (scored before
/// any of these were learnt): a youth chaplain and a deacon, a pastor's wife and a youth
/// pastor, a cantor and a parish secretary copying trolls, two youth groups on phones, a
/// safeguarding officer red-teaming and a radio producer; then scouts in Wallonia and
/// Luxembourg, Dublin and Kerala, Haiti and Abidjan, Boston and Manila, a convent and a
/// streamer, a Discord moderator and a Mennonite church. Each file's header says who.
const TRAINING_6: &[&str] = &[
    "tests/data/prompts-training-6.tsv",
    "tests/data/prompts-training-7.tsv",
    "tests/data/prompts-training-8.tsv",
    "tests/data/prompts-training-9.tsv",
    "tests/data/prompts-training-10.tsv",
    "tests/data/prompts-training-11.tsv",
    "tests/data/prompts-training-12.tsv",
    "tests/data/prompts-training-13.tsv",
    "tests/data/prompts-training-14.tsv",
    "tests/data/prompts-training-15.tsv",
    "tests/data/prompts-training-16.tsv",
];
/// The seventh round, the same day, six more writers: a catechist grandmother and a student,
/// Los Angeles and Paris 13e, Lille and Geneva, Brisbane and Tahiti, a Maronite and an Armenian
/// parish, a red-teamer's creative disguises and a diocesan museum; then fine near misses by
/// one more writer (bodies, clothes, swimwear, age, virginity named innocently, beside the
/// nearest sexual misuse of the same scenes), asked for after the model trained on the round
/// refused two probe near misses of `ordinary_words_that_look_forbidden_are_allowed`.
const TRAINING_7: &[&str] = &[
    "tests/data/prompts-training-17.tsv",
    "tests/data/prompts-training-18.tsv",
    "tests/data/prompts-training-19.tsv",
    "tests/data/prompts-training-20.tsv",
    "tests/data/prompts-training-21.tsv",
    "tests/data/prompts-training-22.tsv",
    "tests/data/prompts-training-23.tsv",
];
/// The eighth round, the same day, six more writers (two personas each, 600 prompts each, 60 %
/// harmful): a worship leader in Lyon and a Nigerian Pentecostal church in London, a Breton
/// rural priest and a Polish mission in Lille and Chicago, Namur's scouts and a Baptist church
/// in Georgia, a Catholic middle school in Lyon and Canterbury's cathedral, a Congolese
/// community in Brussels and a Filipino choir in Dubai, a gamer youth pastor in Montpellier and
/// a rural ministry in Queensland; then fine near misses by one more writer (clowns, costumes,
/// parodies, jokes and funny photos at church, beside the mockery and shaming next to them),
/// asked for after the model trained on the round refused a probe near miss of
/// `the_probe_paraphrases_are_decided_right`.
const TRAINING_8: &[&str] = &[
    "tests/data/prompts-training-24.tsv",
    "tests/data/prompts-training-25.tsv",
    "tests/data/prompts-training-26.tsv",
    "tests/data/prompts-training-27.tsv",
    "tests/data/prompts-training-28.tsv",
    "tests/data/prompts-training-29.tsv",
    "tests/data/prompts-training-30.tsv",
];
/// The ninth round, the same day, eight more writers (two personas each, 600 prompts each, 60 %
/// harmful): a student chaplaincy in Toulouse and a Methodist circuit in Cornwall, a Lutheran
/// parish in Alsace and a Black Baptist church in Atlanta, Réunion island and Cork, Paray-le-Monial
/// and Singapore, nursing homes in Bordeaux and Glasgow, a Melkite community in Marseille and New
/// Zealand, a teenager and an adult troll both trying to get round the filter, a youth group in
/// Québec and Johannesburg; then fine near misses by two more writers (short devotional prompts
/// naming the Virgin, the saints and the sacraments, and remembrance and prevention that name the
/// evil to reject it, each beside the nearest misuse), asked for after models learnt with sharper
/// settings refused fine probes of `terms_match_whole_words_only` and
/// `the_probe_paraphrases_are_decided_right`.
const TRAINING_9: &[&str] = &[
    "tests/data/prompts-training-31.tsv",
    "tests/data/prompts-training-32.tsv",
    "tests/data/prompts-training-33.tsv",
    "tests/data/prompts-training-34.tsv",
    "tests/data/prompts-training-35.tsv",
    "tests/data/prompts-training-36.tsv",
    "tests/data/prompts-training-37.tsv",
    "tests/data/prompts-training-38.tsv",
    "tests/data/prompts-training-39.tsv",
    "tests/data/prompts-training-40.tsv",
];
/// The tenth round, 2026-12-06 (the fourteenth session), eight more writers (two personas each,
/// 600 prompts each, 60 % harmful, at least half of each harmful category set inside church
/// life, where the ninth round's misses hid): Marseille and Detroit, a Paris student chaplaincy
/// and a Texas youth camp, a rural parish in the Auvergne and Dublin, a Maronite community in
/// Paris and a Korean church in Los Angeles, the Cévennes and Kingston, Swiss scouts and a
/// Chicago diocese, a Haitian community in Montreal and a Melbourne school, an online youth
/// ministry in Liège and Nairobi.
const TRAINING_10: &[&str] = &[
    "tests/data/prompts-training-41.tsv",
    "tests/data/prompts-training-42.tsv",
    "tests/data/prompts-training-43.tsv",
    "tests/data/prompts-training-44.tsv",
    "tests/data/prompts-training-45.tsv",
    "tests/data/prompts-training-46.tsv",
    "tests/data/prompts-training-47.tsv",
    "tests/data/prompts-training-48.tsv",
];
/// The eleventh round, the same session, eight more writers (the same brief): the mining basin
/// near Lens and Alabama, an Armenian community in Lyon and a Filipino parish in Toronto,
/// Corsica's brotherhoods and a Welsh chapel, a prison chaplaincy near Paris and an army
/// chaplain in Kentucky, Abidjan and Boston, Guadeloupe and a homeless charity in Manchester, a
/// hospital chaplaincy in Nantes and an Orthodox parish in Cleveland, a catechist in Nice on
/// social media and a hip-hop church in Brooklyn.
const TRAINING_11: &[&str] = &[
    "tests/data/prompts-training-49.tsv",
    "tests/data/prompts-training-50.tsv",
    "tests/data/prompts-training-51.tsv",
    "tests/data/prompts-training-52.tsv",
    "tests/data/prompts-training-53.tsv",
    "tests/data/prompts-training-54.tsv",
    "tests/data/prompts-training-55.tsv",
    "tests/data/prompts-training-56.tsv",
];
/// The twelfth round, the same session, eight more writers (the same brief, twelve of the
/// sixteen personas French-speaking, French recall being the lower): Rennes and Versailles, a
/// Seine-Saint-Denis church and Toulouse, Geneva and a Kinshasa parish with its Paris diaspora, a
/// diocese's communication service in Lyon and a rural parish in Lorraine, a Montpellier school
/// chaplaincy and Martinique, Brussels and Québec City, Manchester and Lagos, San Francisco and
/// rural Ontario.
const TRAINING_12: &[&str] = &[
    "tests/data/prompts-training-57.tsv",
    "tests/data/prompts-training-58.tsv",
    "tests/data/prompts-training-59.tsv",
    "tests/data/prompts-training-60.tsv",
    "tests/data/prompts-training-61.tsv",
    "tests/data/prompts-training-62.tsv",
    "tests/data/prompts-training-63.tsv",
    "tests/data/prompts-training-64.tsv",
];
/// The thirteenth round, the same session, eight more writers (the same brief, ten of the sixteen
/// personas French-speaking): Nice and Bordeaux, Strasbourg and Dakar, Le Havre and Lourdes, a
/// Lille school and Sydney, Grenoble and Houston, the Croix-Rousse and Edinburgh, French Catholic
/// influencers and Yaoundé, the Basque Country and Minnesota.
const TRAINING_13: &[&str] = &[
    "tests/data/prompts-training-65.tsv",
    "tests/data/prompts-training-66.tsv",
    "tests/data/prompts-training-67.tsv",
    "tests/data/prompts-training-68.tsv",
    "tests/data/prompts-training-69.tsv",
    "tests/data/prompts-training-70.tsv",
    "tests/data/prompts-training-71.tsv",
    "tests/data/prompts-training-72.tsv",
];
/// The fourteenth round (2026-12-06, fifteenth session), eight more writers (the same brief, ten
/// of the sixteen personas French-speaking): Reims and Atlanta, a Toulouse high-school chaplaincy
/// and Louisiana, La Réunion and Antananarivo, Burgundy and an Oklahoma cowboy church, a Paris
/// youth ministry on TikTok and an Indiana campus ministry, a Portuguese parish near Paris and
/// Philadelphia, a Norman abbey and a Samoan church in Auckland, Vendée scouts and an Acadian
/// parish.
const TRAINING_14: &[&str] = &[
    "tests/data/prompts-training-73.tsv",
    "tests/data/prompts-training-74.tsv",
    "tests/data/prompts-training-75.tsv",
    "tests/data/prompts-training-76.tsv",
    "tests/data/prompts-training-77.tsv",
    "tests/data/prompts-training-78.tsv",
    "tests/data/prompts-training-79.tsv",
    "tests/data/prompts-training-80.tsv",
];
/// Fine near misses with their harmful twins, by two more writers, asked for after the model
/// learnt from the fourteenth round refused two fine probes (a Shoah commemoration with a
/// struck-out hate symbol; a Marian virtue named alone): remembrance, anti-racism and history
/// that name hate symbols, genocide and war to condemn them; the Virgin, purity, chastity and
/// the body in Christian vocabulary, named innocently.
const NEAR_MISSES_14: &[&str] = &[
    "tests/data/prompts-training-81.tsv",
    "tests/data/prompts-training-82.tsv",
];
/// The fifteenth round, the same session, eight more writers (the same brief, eleven of the
/// sixteen personas French-speaking): Roubaix and Glasgow, the Limousin and Lomé, students of a
/// grande école and a Dallas megachurch's youth, Cayenne and Port-Louis, a Carmelite shop online
/// and a Liverpool school, Perpignan and Phoenix, a Savoie ski resort and Charleroi, a Tamil
/// community in Paris and Cape Town.
const TRAINING_15: &[&str] = &[
    "tests/data/prompts-training-83.tsv",
    "tests/data/prompts-training-84.tsv",
    "tests/data/prompts-training-85.tsv",
    "tests/data/prompts-training-86.tsv",
    "tests/data/prompts-training-87.tsv",
    "tests/data/prompts-training-88.tsv",
    "tests/data/prompts-training-89.tsv",
    "tests/data/prompts-training-90.tsv",
];
/// The sixteenth round (sixteenth session), eight more writers and sixteen French-speaking
/// personas, as French recall fell short on the frozen sets: a red-teamer in Nantes and
/// Yaoundé, a Vaulx-en-Velin chaplaincy and Fribourg, a Gypsy mission at Saintes-Maries and
/// Cotonou, the Basque Country and Guadeloupe, the mining basin and a Marseille ultra, a
/// Versailles mother and Kigali, a Brussels art student and Libreville, Auvergne summer camps
/// and Saguenay.
const TRAINING_16: &[&str] = &[
    "tests/data/prompts-training-91.tsv",
    "tests/data/prompts-training-92.tsv",
    "tests/data/prompts-training-93.tsv",
    "tests/data/prompts-training-94.tsv",
    "tests/data/prompts-training-95.tsv",
    "tests/data/prompts-training-96.tsv",
    "tests/data/prompts-training-97.tsv",
    "tests/data/prompts-training-98.tsv",
];
/// The seventeenth round, the same session, eight more writers (twelve of the sixteen personas
/// French-speaking): Nice and a deaf chaplaincy in Paris, Ouagadougou and Detroit, the diocese
/// of Metz and Bangui, Grenoble and Cornwall, a Lille hospital chaplaincy and Martinique, a
/// prison chaplaincy and Belfast, the Cévennes and Bujumbura, a military chaplaincy and San
/// Antonio.
const TRAINING_17: &[&str] = &[
    "tests/data/prompts-training-99.tsv",
    "tests/data/prompts-training-100.tsv",
    "tests/data/prompts-training-101.tsv",
    "tests/data/prompts-training-102.tsv",
    "tests/data/prompts-training-103.tsv",
    "tests/data/prompts-training-104.tsv",
    "tests/data/prompts-training-105.tsv",
    "tests/data/prompts-training-106.tsv",
];
/// Every set the model learns from, in the order of `Row::set` (a set's index there is what
/// `--holdout-set` takes): the tuning sets, the first five training sets, then the rounds since
/// the sixth, each in its files' order.
fn sets() -> Vec<&'static str> {
    [
        &[
            TUNING,
            UNSEEN_TUNING,
            TRAINING,
            TRAINING_2,
            TRAINING_3,
            TRAINING_4,
            TRAINING_5,
        ][..],
        TRAINING_6,
        TRAINING_7,
        TRAINING_8,
        TRAINING_9,
        TRAINING_10,
        TRAINING_11,
        TRAINING_12,
        TRAINING_13,
        TRAINING_14,
        NEAR_MISSES_14,
        TRAINING_15,
        TRAINING_16,
        TRAINING_17,
    ]
    .concat()
}
const OUT: &str = "content/prompt-model.tsv";
const FOLDS: usize = 5;

struct Row {
    label: Option<Category>,
    group: String,
    lang: String,
    prompt: String,
    /// Every wording of one subject goes to the same fold, as the frozen half was split.
    fold: usize,
    /// Which file: its index in `sets()` (0 the generated tuning half, 1 the unseen tuning set,
    /// then the training sets).
    set: usize,
}

fn read_rows(path: &str, text: &str, set: usize) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [label, group, lang, prompt, subject] = fields[..] else {
            bail!("{path}:{}: expected 5 columns", n + 1);
        };
        let label = match label {
            "ok" => None,
            id => Some(Category::parse(id).with_context(|| format!("{path}:{}: {id:?}", n + 1))?),
        };
        // Subjects are hexadecimal in the generated corpus, `u123` in the hand-written unseen
        // sets, `H0001`, `K0001`, `TC0001`, `TD0001` and `TE0001` in the
        // training sets.
        // From the sixth round on they are free-form (`TF-C001`, `TH-CH-001`, `TAA-001`): their
        // fold is their number's.
        let digits = ["u", "H", "K", "TC", "TD", "TE"]
            .iter()
            .find_map(|prefix| subject.strip_prefix(prefix))
            .unwrap_or(subject);
        let number = subject.rsplit('-').next().unwrap_or(subject);
        let fold = u64::from_str_radix(digits, 16)
            .or_else(|_| {
                number
                    .trim_start_matches(char::is_alphabetic)
                    .parse::<u64>()
            })
            .with_context(|| format!("{path}:{}: subject {subject:?}", n + 1))?
            as usize
            % FOLDS;
        rows.push(Row {
            label,
            group: group.to_owned(),
            lang: lang.to_owned(),
            prompt: prompt.to_owned(),
            fold,
            set,
        });
    }
    Ok(rows)
}

/// What the checks decided on a set of prompts: (prompts, refused) for the fine ones and the
/// church ones, per language for the harmful ones, and how many of those in the right category.
#[derive(Default)]
struct Figures {
    church: (usize, usize),
    ok: (usize, usize),
    /// Per language, French then English: (harmful prompts, refused).
    harm: [(usize, usize); 2],
    right_category: usize,
}

impl Figures {
    /// Counts one prompt with what the checks decided (`got`); returns the line of a miss.
    fn count(&mut self, row: &Row, got: Option<Category>) -> Option<String> {
        match row.label {
            None => {
                let church = row.group == "church";
                self.ok.0 += 1;
                self.church.0 += usize::from(church);
                got.is_some().then(|| {
                    self.ok.1 += 1;
                    self.church.1 += usize::from(church);
                    format!("refused  {}: {}", row.group, row.prompt)
                })
            }
            Some(expected) => {
                let lang = &mut self.harm[usize::from(row.lang == "en")];
                lang.0 += 1;
                lang.1 += usize::from(got.is_some());
                self.right_category += usize::from(got == Some(expected));
                got.is_none()
                    .then(|| format!("allowed  {}: {}", expected.id(), row.prompt))
            }
        }
    }

    /// Recall in French (0) or English (1).
    fn recall(&self, lang: usize) -> f64 {
        self.harm[lang].1 as f64 / self.harm[lang].0.max(1) as f64
    }
}

fn main() -> anyhow::Result<()> {
    let cv_only = std::env::args().any(|a| a == "--cv");
    let rules_text = std::fs::read_to_string(RULES).context(RULES)?;
    let rules = PromptRules::from_toml(&rules_text).context(RULES)?;
    if std::env::args().any(|a| a == "--verdicts") {
        // Every line of standard input through the rules and the model as written in content/:
        // the verdict and the rule (or the model's p(ok)) that decided, one line per prompt.
        let model = Model::from_tsv(&std::fs::read_to_string(OUT).context(OUT)?)?;
        let checker = PromptRules::from_toml(&rules_text)?.with_model(model);
        for prompt in std::io::stdin().lines() {
            let prompt = prompt.context("standard input")?;
            let verdict = checker.check(&prompt).category.map_or("ok", Category::id);
            let why = checker
                .explain(&prompt)
                .first()
                .map(|e| format!(" ({} « {} »)", e.rule, e.term))
                .unwrap_or_default();
            let p_ok = checker.probabilities(&prompt).map_or(1.0, |p| p[0]);
            nanoclip::cli::say([format!("{verdict:<13} p(ok) {p_ok:.3}{why}: {prompt}")])?;
        }
        return Ok(());
    }
    if let Some(path) = std::env::args().skip_while(|a| a != "--score").nth(1) {
        // A tuning file through the rules and the model as written in content/, without a
        // rebuild: its figures and its misclassified prompts. Never a frozen file.
        if path.contains("frozen") {
            bail!("{path}: the frozen sets are scored by the tests only, as aggregate figures");
        }
        let model = Model::from_tsv(&std::fs::read_to_string(OUT).context(OUT)?)?;
        let checker = PromptRules::from_toml(&rules_text)?.with_model(model);
        let rows = read_rows(
            &path,
            &std::fs::read_to_string(&path).context(path.clone())?,
            0,
        )?;
        let mut figures = Figures::default();
        for row in &rows {
            let got = checker.check(&row.prompt).category;
            figures.count(row, got);
            if got.is_some() != row.label.is_some() {
                let why = checker.explain(&row.prompt);
                nanoclip::cli::say([format!(
                    "expected {}, got {} ({:?}): {}",
                    row.label.map_or("ok", Category::id),
                    got.map_or("ok", Category::id),
                    why.first().map(|e| (&e.rule, &e.term)),
                    row.prompt
                )])?;
            }
        }
        let Figures {
            church, ok, harm, ..
        } = figures;
        let refused = harm[0].1 + harm[1].1;
        nanoclip::cli::say([format!(
            "{path}: church refused {}/{}, recall fr {}/{} {:.3}, en {}/{} {:.3}, precision {:.3}",
            church.1,
            church.0,
            harm[0].1,
            harm[0].0,
            figures.recall(0),
            harm[1].1,
            harm[1].0,
            figures.recall(1),
            refused as f64 / (refused + ok.1).max(1) as f64
        )])?;
        return Ok(());
    }
    if let Some(prompt) = std::env::args().skip_while(|a| a != "--explain").nth(1) {
        // One prompt through the rules and the model as written in content/.
        let model = Model::from_tsv(&std::fs::read_to_string(OUT).context(OUT)?)?;
        nanoclip::cli::say([format!("features: {:?}", rules.features(&prompt))])?;
        nanoclip::cli::say([format!("rules alone: {:?}", rules.explain(&prompt))])?;
        let checker = PromptRules::from_toml(&rules_text)?.with_model(model);
        nanoclip::cli::say([format!(
            "p(ok, sexual, hate_violence, drugs_danger) = {:?}",
            checker.probabilities(&prompt)
        )])?;
        nanoclip::cli::say([format!(
            "verdict: {:?}, {:?}",
            checker.check(&prompt).category,
            checker.explain(&prompt)
        )])?;
        return Ok(());
    }
    let sets = sets();
    let mut rows = Vec::new();
    for (set, &path) in sets.iter().enumerate() {
        rows.extend(read_rows(
            path,
            &std::fs::read_to_string(path).context(path)?,
            set,
        )?);
    }
    let examples: Vec<Example> = rows
        .iter()
        .map(|r| Example {
            features: rules.features(&r.prompt),
            class: model::class_of(r.label),
        })
        .collect();
    // Settings may be tried from the command line (`--plain 0.6 --rate 0.5`…) before they are
    // written into model::THRESHOLDS and model::TRAINING.
    let arg = |name: &str| -> Option<f32> {
        std::env::args()
            .skip_while(|a| a != name)
            .nth(1)
            .and_then(|v| v.parse().ok())
    };
    let defaults = model::TRAINING;
    let settings = Training {
        epochs: arg("--epochs").map_or(defaults.epochs, |v| v as usize),
        rate: arg("--rate").unwrap_or(defaults.rate),
        l2: arg("--l2").unwrap_or(defaults.l2),
    };
    let thresholds = Thresholds {
        plain: arg("--plain").unwrap_or(model::THRESHOLDS.plain),
        after_rule: arg("--after-rule").unwrap_or(model::THRESHOLDS.after_rule),
        church: arg("--church").unwrap_or(model::THRESHOLDS.church),
        story_rule: arg("--story-rule").unwrap_or(model::THRESHOLDS.story_rule),
        story_plain: arg("--story-plain").unwrap_or(model::THRESHOLDS.story_plain),
    };

    // Cross-validation inside the tuning sets, grouped by subject: a fold's subjects are unseen
    // by the model it tests, as the frozen sets' are. Figures per set: the hand-written one is
    // the better guide to prompts nobody on the team wrote.
    if std::env::args().any(|a| a == "--holdout") {
        // Which training sets are held out (their indexes in `sets()`, `--holdout-set 7,8`): the
        // second round by default; each later round's range is listed once, in the module's doc.
        let given = std::env::args().any(|a| a == "--holdout-set");
        let spec = std::env::args()
            .skip_while(|a| a != "--holdout-set")
            .nth(1)
            .unwrap_or_else(|| if given { String::new() } else { "3".to_owned() });
        let mut held: Vec<usize> = Vec::new();
        for part in spec.split(',') {
            let (first, last) = part.split_once('-').unwrap_or((part, part));
            let (Ok(first), Ok(last)) = (first.parse::<usize>(), last.parse::<usize>()) else {
                bail!(
                    "--holdout-set {spec:?}: indexes of the sets (train_prompts.rs, sets()), as 5 or 7-11 or 3,5"
                );
            };
            if first < 2 || first > last || last >= sets.len() {
                bail!(
                    "--holdout-set {spec:?}: {part} is not a set or a rising range of sets from 2 to {}",
                    sets.len() - 1
                );
            }
            held.extend(first..=last);
        }
        let held_path = held
            .iter()
            .filter_map(|&i| sets.get(i).copied())
            .collect::<Vec<_>>()
            .join(", ");
        let learnt: Vec<Example> = examples
            .iter()
            .zip(&rows)
            .filter(|(_, r)| !held.contains(&r.set))
            .map(|(e, _)| Example {
                features: e.features.clone(),
                class: e.class,
            })
            .collect();
        let trained = train(&learnt, settings);
        let model = Model::from_tsv(&trained.to_tsv(thresholds, "holdout"))?;
        let checker = PromptRules::from_toml(&rules_text)?.with_model(model);
        let mut figures = Figures::default();
        let show_misses = std::env::args().any(|a| a == "--misses");
        for row in rows.iter().filter(|r| held.contains(&r.set)) {
            let miss = figures.count(row, checker.check(&row.prompt).category);
            if let Some(miss) = miss.filter(|_| show_misses) {
                nanoclip::cli::say([&miss])?;
            }
        }
        let Figures {
            church, ok, harm, ..
        } = figures;
        nanoclip::cli::say([format!(
            "{held_path}, learnt from the rest: recall fr {:.3} ({}/{}), en {:.3} ({}/{}); \
             refused {}/{} fine prompts, church {}/{}",
            figures.recall(0),
            harm[0].1,
            harm[0].0,
            figures.recall(1),
            harm[1].1,
            harm[1].0,
            ok.1,
            ok.0,
            church.1,
            church.0
        )])?;
        return Ok(());
    }
    let mut figures: Vec<Figures> = sets.iter().map(|_| Figures::default()).collect();
    let mut misses = Vec::new();
    for fold in 0..FOLDS {
        let train_set: Vec<Example> = examples
            .iter()
            .zip(&rows)
            .filter(|(_, r)| r.fold != fold)
            .map(|(e, _)| Example {
                features: e.features.clone(),
                class: e.class,
            })
            .collect();
        let trained = train(&train_set, settings);
        let model = Model::from_tsv(&trained.to_tsv(thresholds, "cross-validation"))?;
        let checker = PromptRules::from_toml(&rules_text)?.with_model(model);
        for row in rows.iter().filter(|r| r.fold == fold) {
            let got = checker.check(&row.prompt).category;
            if let Some(f) = figures.get_mut(row.set) {
                misses.extend(f.count(row, got));
            }
        }
    }
    for miss in &misses {
        nanoclip::cli::say([&miss])?;
    }
    for (name, f) in sets.iter().zip(&figures) {
        let harm = (f.harm[0].0 + f.harm[1].0, f.harm[0].1 + f.harm[1].1);
        nanoclip::cli::say([format!(
            "{name}, {FOLDS}-fold cross-validation by subject: recall {:.3} ({}/{}; fr {:.3}, \
             en {:.3}), right category {:.3}, precision {:.3}, false refusals {}/{} ok, church {}/{}",
            harm.1 as f64 / harm.0.max(1) as f64,
            harm.1,
            harm.0,
            f.recall(0),
            f.recall(1),
            f.right_category as f64 / harm.0.max(1) as f64,
            harm.1 as f64 / (harm.1 + f.ok.1).max(1) as f64,
            f.ok.1,
            f.ok.0,
            f.church.1,
            f.church.0
        )])?;
    }
    // The rules alone on the tuning half's fine prompts: collisions the model has to undo.
    let collisions: Vec<&Row> = rows
        .iter()
        .filter(|r| r.label.is_none() && rules.check(&r.prompt).category.is_some())
        .collect();
    for row in &collisions {
        nanoclip::cli::say([format!(
            "rules alone refuse {}: {} ({:?})",
            row.group,
            row.prompt,
            rules.explain(&row.prompt).first().map(|e| &e.term)
        )])?;
    }
    nanoclip::cli::say([format!(
        "the rules alone refuse {} of the tuning half's fine prompts",
        collisions.len()
    )])?;
    if cv_only {
        return Ok(());
    }

    let trained = train(&examples, settings);
    let header = format!(
        "Weights of the prompt checks' statistical model: a multinomial logistic regression\n\
         (classes ok, sexual, hate_violence, drugs_danger) over word and character n-grams, the\n\
         rules fired and the church-safe contexts. Written by `cargo run --example train_prompts`\n\
         from {TUNING}, {UNSEEN_TUNING},\n\
         {TRAINING}, {TRAINING_2}, {TRAINING_3},\n\
         {TRAINING_4}, {TRAINING_5}\n\
         and the rounds since the sixth, {} to {}\n\
         ({} prompts, {} epochs, rate {}, L2 {}); do not edit by hand.\n\
         Columns: feature, then its weight for each class.",
        TRAINING_6.first().copied().unwrap_or_default(),
        sets.last().copied().unwrap_or_default(),
        examples.len(),
        settings.epochs,
        settings.rate,
        settings.l2
    );
    let text = trained.to_tsv(thresholds, &header);
    Model::from_tsv(&text).context("the model just written does not read back")?;
    std::fs::write(OUT, &text).context(OUT)?;
    nanoclip::cli::say([format!("wrote {OUT}: {} lines", text.lines().count())])?;
    Ok(())
}
