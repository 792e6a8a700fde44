//! The statistical half of the prompt checks: a multinomial logistic regression over word
//! unigrams and bigrams, character 3- to 5-grams of each word, the rules that fired and the
//! church-safe contexts found. Trained on the tuning and training sets of the labelled corpus,
//! never on a frozen one (`cargo run --example train_prompts`), deterministic (fixed order, no
//! randomness), its weights are data: `content/prompt-model.tsv`, one feature per line with its
//! four weights.
//!
//! At check time each feature is hashed and looked up by its hash (no allocation per feature), so
//! a prompt costs a few hundred lookups; a feature the model never learnt finds nothing.

use std::fmt::Write as _;

use crate::domain::logistic;
pub use crate::domain::logistic::{Example, Training};

use super::*;

/// The classes, in the order of the weights: `ok`, then `Category::ALL`.
pub const CLASSES: usize = 4;

/// The class index of a verdict: 0 for `ok`, then the categories in `Category::ALL` order.
pub fn class_of(category: Option<Category>) -> usize {
    category.map_or(0, |c| match c {
        Category::Sexual => 1,
        Category::HateViolence => 2,
        Category::DrugsDanger => 3,
    })
}

fn category_of(class: usize) -> Option<Category> {
    match class {
        1 => Some(Category::Sexual),
        2 => Some(Category::HateViolence),
        3 => Some(Category::DrugsDanger),
        _ => None,
    }
}

/// What the church lists found in a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Church {
    None,
    /// A church story or prayer context (`[church].contexts`).
    Story,
    /// A church-safe context (`[church].safe_contexts`): the rules are set aside.
    Safe,
}

/// When the model's probability that a prompt is harmful (1 − p(ok)) refuses it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// No rule fired and no church-safe context: the model alone decides.
    pub plain: f32,
    /// A rule fired: the model must agree, at least this much, for the refusal to stand.
    pub after_rule: f32,
    /// A church-safe context (a commandment, a prayer) was found: the rules are set aside and
    /// only a model this sure refuses.
    pub church: f32,
    /// A church story or prayer context (the Passion, a martyr, a psalm) and a rule fired.
    pub story_rule: f32,
    /// A church story or prayer context and no rule fired.
    pub story_plain: f32,
}

/// The thresholds `train_prompts` writes with the model (and a model file without them gets),
/// chosen on the cross-validation figures of the tuning
/// half: no church prompt refused out of fold, recall as high as that allows. With the training
/// sets by new writers, two changes were tried and left: a rule's match standing only from a
/// harm of 0.3 (on the second training set learnt from the rest, `--holdout --after-rule 0.3`,
/// church prompts refused 4 → 2 of 350, recall 0.685 → 0.662 in French) let two harmful probe
/// paraphrases through (terrorists as heroes of the faith, a group kept out of a procession:
/// `the_probe_paraphrases_are_decided_right`); the model alone refusing from 0.8 refused
/// « Bedouin tents near Bethlehem » (`ordinary_words_that_look_forbidden_are_allowed`).
///
/// With the sixth and seventh rounds (eighteen more writers), chosen on each of their files
/// learnt from all the others (`--holdout --holdout-set N` for N in 7 to 24, added up; never a
/// frozen set): a rule's match stood from a harm of 0.15 (it stood from 0.02 until the sixth
/// round, then from 0.2 at e5a5523): church prompts refused 38 at 0.02 → 18 of 3,520 and fine
/// prompts 156 → 107 of 5,500 at the same recall (fr 0.771, en 0.792); most of the refusals it
/// lifts are prevention (a talk on pornography, a campaign against drunk driving). Tried and
/// left then: 0.2 and 0.3 (church 12 and 10 refused, recall the same, but with the training
/// settings of then 4 and 5 harmful probes let through once the seventh round was learnt (0.2
/// let 3 through with the sixth round only), among them « Roma families must stay outside
/// during the procession »; the test allowed 3); the model alone from 0.88 or lower (recall fr
/// up to 0.79–0.83, but a wedding dress with an open back, « L'humilité de la Vierge », a girl
/// singing in the choir refused by the model alone); an L2 of 1e-4 (the same short prompts
/// refused); church prompts learnt three or five times (no better than the thresholds alone).
///
/// With the eighth and ninth rounds and the training settings of `TRAINING` (chosen together, see
/// there): a rule's match stands from a harm of 0.3, and lets 2 harmful probes through. On the four
/// rounds' files, church prompts refused 23 at 0.15 → 14 of 6,085 and fine prompts 150 → 109 of
/// 9,820, recall fr 0.822 → 0.820, en 0.810 → 0.809. Left: 0.4 (11 church prompts refused, but a
/// third harmful probe let through, « only Christians of French origin may join our parish »:
/// within the test's limit then, a judgement call) and 0.5 (five harmful probes let through).
///
/// With the tenth and eleventh rounds (2026-12-06, fourteenth session; chosen on the six rounds'
/// files by new writers, `--holdout-set` 7-17 to 50-57, added up): in a church story or prayer a
/// rule's match stands from a harm of 0.6 (0.5 until then). The model learnt from the two rounds
/// put 0.55 on « Lot's daughters get their father drunk, Genesis 19, Bible study » (a fine probe
/// of `the_probe_paraphrases_are_decided_right`, a story context where « drunk » fires a rule)
/// with every setting tried; at 0.6 the six rounds' figures move by less than a prompt in 500
/// (recall fr 0.862 → 0.860, en 0.845 → 0.844, fine prompts refused 141 → 138 of 13,660, church
/// 15 of 8,645 both ways) and the harmful probes let through stay at 2. Left: the model alone
/// refusing from 0.85 (recall fr 0.883, en 0.875, church 17, fine 157; it refused « a teen girl
/// in a modest swimsuit at the parish pool party ») or 0.87 (fr 0.873, en 0.863, church 16, fine
/// 150: more recall for one more church prompt refused, left for the church goal), or 0.8 (fr
/// 0.897, en 0.893, church 19, fine 177: « camp T-shirt design », « un chat qui fait du skate »).
/// With the twelfth round too (the same session, seven rounds' files): 0.7. The model learnt
/// from it put 0.66 on the same probe; at 0.7 recall moves fr 0.864 → 0.860, en 0.848 → 0.845, and
/// neither the fine prompts refused (137 of 15,580) nor the church ones (15 of 9,925) change; the
/// harmful probes let through stay at 2.
/// With the fifteenth round and the n-grams scaled among themselves (fifteenth session, ten
/// rounds' files): the model alone refusing from 0.87 was to be kept if it refused no more church
/// prompts and at most a tenth more fine ones (recall fr 0.910 → 0.919, en 0.897 → 0.907, church
/// 14 both ways, fine 126 → 133; 0.85 refused one more church prompt), but with it the model
/// refused a fine probe, « les scouts qui traversent le pont de singe avec un baudrier »; 0.9
/// stays.
pub const THRESHOLDS: Thresholds = Thresholds {
    plain: 0.9,
    after_rule: 0.3,
    church: 0.9,
    story_rule: 0.7,
    story_plain: 0.95,
};

impl Default for Thresholds {
    fn default() -> Self {
        THRESHOLDS
    }
}

/// The trained weights by the FNV hash of their feature's name. A feature the model never
/// learnt finds nothing: in the fixed table of 2^18 slots indexed by the low 18 bits of the hash
/// that held them before, it read whichever learnt feature shared its slot (with 164,907
/// features, 47 % of the slots were filled), and 46 % of the learnt features shared their slot
/// with another and read their summed weights. Two learnt features with the same 32-bit hash
/// would share their summed weights (none in the model of 25bacee).
type Table = rustc_hash::FxHashMap<u32, [f32; CLASSES]>;

/// The trained weights.
pub struct Model {
    table: Table,
    bias: [f32; CLASSES],
    pub thresholds: Thresholds,
    features: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("features", &self.features)
            .field("thresholds", &self.thresholds)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("prompt model, line {line}: {reason}")]
    Line { line: usize, reason: &'static str },
}

/// FNV-1a, 32 bits: stable across builds and platforms, unlike `std`'s hasher.
fn fnv(bytes: impl IntoIterator<Item = u8>) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Calls `each` with every feature of a prompt, as the pieces of its name (`["w:", word]`), so
/// that checking hashes the pieces without building the name. The words are the folded spellings
/// as written (joined back where a word was cut up).
///
/// The character n-grams of each word run from 3 to 5 characters (3 and 4 until the fifteenth
/// session). Chosen on the nine rounds' files by new writers, each learnt from all the others
/// (`train_prompts --holdout --holdout-set 7-17` to `74-81`, added up; never a frozen set):
/// recall fr 0.876 → 0.890 and en 0.869 → 0.883, church prompts refused 26 of 12,485 both ways,
/// fine prompts 165 → 169 of 19,420. Tried and left: 6-grams too (fr 0.896, en 0.886, but
/// church 29 and fine 172); the last three letters of a word with the first three of the next,
/// with the 5-grams (fr 0.889, church 29); pairs of words one apart (fr 0.871) or word trigrams
/// (fr 0.868) instead of the 5-grams; an L2 of 7e-4 with the 5-grams (fr 0.879, en 0.872:
/// most of the gain lost). With the n-grams scaled among themselves too (`train`), the check
/// costs 5 to 9 µs more per prompt than before the 5-grams (`bench/README.md`).
pub(super) fn for_each_feature(
    words: &[&str],
    rules_fired: &[&str],
    church: Church,
    each: &mut dyn FnMut(&[&str]),
) {
    logistic::word_features(words, 5, 5, each);
    for rule in rules_fired {
        each(&[RULE, rule]);
    }
    match church {
        Church::None => {}
        Church::Story => each(&[CONTEXT, "story"]),
        Church::Safe => each(&[CONTEXT, "church"]),
    }
    each(&[CONTEXT, "bias-words"]);
}

/// The prefix of a rule that fired (none is given today: `model_rules` in `mod.rs`).
const RULE: &str = "r:";
/// The prefix of a church context found, and of the bias feature every prompt has.
const CONTEXT: &str = "k:";

/// The hash of a feature given as pieces: the same as the hash of the joined name.
fn fnv_pieces(pieces: &[&str]) -> u32 {
    fnv(pieces.iter().flat_map(|p| p.bytes()))
}

/// The kinds of features, by how a feature is valued: the one classification that training
/// (`train`) and checking (`Model::probabilities`) both use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A word (`w:`): worth 1/√n among the n words of a prompt (so long prompts do not shout).
    Word,
    /// A pair of neighbouring words (`b:`): worth 1/√n among the n pairs of a prompt, apart from
    /// the words.
    Pair,
    /// A character n-gram (`c:`): worth 1/√m among the m n-grams of a prompt, apart from the
    /// words, so that a long word's dozen n-grams do not drown the words around it.
    Gram,
    /// A rule fired or a church context found (`r:`, `k:`): worth 1.
    Flag,
}

impl Kind {
    /// In the order the discriminants give (the index of a kind's sums in `Model::probabilities`).
    const ALL: [Kind; 4] = [Kind::Word, Kind::Pair, Kind::Gram, Kind::Flag];

    /// The kind of a feature, from its name or its first piece.
    fn of(feature: &str) -> Self {
        if feature.starts_with(RULE) || feature.starts_with(CONTEXT) {
            Kind::Flag
        } else if feature.starts_with(logistic::GRAM) {
            Kind::Gram
        } else if feature.starts_with(logistic::PAIR) {
            Kind::Pair
        } else {
            Kind::Word
        }
    }

    /// Checked when compiling: `Kind::ALL[i] as usize == i`, which `Model::probabilities` relies on.
    const ALL_IN_ORDER: () = {
        let mut i = 0;
        while i < Kind::ALL.len() {
            assert!(
                Kind::ALL[i] as usize == i,
                "Kind::ALL must follow the discriminants"
            );
            i += 1;
        }
    };

    /// What each feature of this kind is worth among `count` of its kind in a prompt.
    fn value(self, count: usize) -> f32 {
        match self {
            Kind::Flag => 1.0,
            Kind::Word | Kind::Pair | Kind::Gram => 1.0 / (count.max(1) as f32).sqrt(),
        }
    }
}

/// A weight as the trainer writes it (« -0.0123 »), as `str::parse` reads it, quicker: its
/// digits read as an integer `n`, then divided by `10^d` for `d` decimals. When `n < 2^24` and
/// `d <= 7`, both are exact in an `f32` and the division rounds once, from the exact decimal
/// value, as `str::parse` does: the same `f32`. Anything else goes to `str::parse`.
fn weight(field: &str) -> Option<f32> {
    const TENS: [f32; 8] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7];
    let (negative, digits) = match field.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    let mut n: u32 = 0;
    let mut decimals: Option<usize> = None;
    let mut any_digit = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                n = n * 10 + u32::from(b - b'0');
                any_digit = true;
                if let Some(d) = &mut decimals {
                    *d += 1;
                }
                if n >= 1 << 24 {
                    return field.parse().ok();
                }
            }
            b'.' if decimals.is_none() => decimals = Some(0),
            _ => return field.parse().ok(),
        }
    }
    let Some(&ten) = TENS.get(decimals.unwrap_or(0)) else {
        return field.parse().ok();
    };
    if !any_digit {
        return field.parse().ok();
    }
    let value = n as f32 / ten;
    Some(if negative { -value } else { value })
}

impl Model {
    /// Reads `content/prompt-model.tsv`: `threshold<TAB>name<TAB>value`, `bias<TAB>w…` and
    /// `feature<TAB>w0<TAB>w1<TAB>w2<TAB>w3` lines; `#` starts a comment.
    pub fn from_tsv(text: &str) -> Result<Self, ModelError> {
        let mut model = Self {
            table: Table::default(),
            bias: [0.0; CLASSES],
            thresholds: Thresholds::default(),
            features: 0,
        };
        // Some 440,000 features, read at start-up: the table sized once, not grown (its
        // rehashing was a tenth of the time).
        let lines = text.as_bytes().iter().filter(|&&b| b == b'\n').count();
        model.table.reserve(lines);
        for (number, line) in text.lines().enumerate() {
            let line_no = number + 1;
            let bad = |reason| ModelError::Line {
                line: line_no,
                reason,
            };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split('\t');
            let name = fields.next().ok_or(bad("empty line"))?;
            if name == "threshold" {
                let which = fields.next().ok_or(bad("threshold without a name"))?;
                let value: f32 = fields
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or(bad("threshold without a number"))?;
                match which {
                    "plain" => model.thresholds.plain = value,
                    "after_rule" => model.thresholds.after_rule = value,
                    "church" => model.thresholds.church = value,
                    "story_rule" => model.thresholds.story_rule = value,
                    "story_plain" => model.thresholds.story_plain = value,
                    _ => return Err(bad("unknown threshold")),
                }
                continue;
            }
            let mut weights = [0.0f32; CLASSES];
            for w in &mut weights {
                *w = fields
                    .next()
                    .and_then(weight)
                    .ok_or(bad("expected four weights"))?;
            }
            if fields.next().is_some() {
                return Err(bad("more than four weights"));
            }
            if name == "bias" {
                model.bias = weights;
            } else {
                let slot = model.table.entry(fnv(name.bytes())).or_default();
                for (s, w) in slot.iter_mut().zip(weights) {
                    *s += w;
                }
                model.features += 1;
            }
        }
        Ok(model)
    }

    /// The probabilities of `ok` and of each category.
    pub(super) fn probabilities(
        &self,
        words: &[&str],
        rules_fired: &[&str],
        church: Church,
    ) -> [f32; CLASSES] {
        // Per kind (in `Kind::ALL` order): the weights found, summed, and how many features.
        let () = Kind::ALL_IN_ORDER;
        let mut sums = [[0.0f32; CLASSES]; Kind::ALL.len()];
        let mut counts = [0usize; Kind::ALL.len()];
        for_each_feature(words, rules_fired, church, &mut |pieces| {
            let kind = Kind::of(pieces.first().copied().unwrap_or_default()) as usize;
            if let Some(count) = counts.get_mut(kind) {
                *count += 1;
            }
            if let (Some(w), Some(sum)) = (self.table.get(&fnv_pieces(pieces)), sums.get_mut(kind))
            {
                for (z, w) in sum.iter_mut().zip(w) {
                    *z += w;
                }
            }
        });
        let mut total = [0.0f32; CLASSES];
        for ((kind, sum), count) in Kind::ALL.iter().zip(sums).zip(counts) {
            let value = kind.value(count);
            for (t, s) in total.iter_mut().zip(sum) {
                *t += s * value;
            }
        }
        let mut z = self.bias;
        for (z, t) in z.iter_mut().zip(total) {
            *z += t;
        }
        logistic::softmax(&mut z);
        z
    }

    /// The verdict of the rules and the model together.
    pub(super) fn decide(
        &self,
        p: &[f32; CLASSES],
        rule_category: Option<Category>,
        church: Church,
    ) -> Option<Category> {
        let harm = 1.0 - p[0];
        let model_category = || {
            (1..CLASSES)
                .max_by(|&a, &b| p[a].total_cmp(&p[b]))
                .and_then(category_of)
        };
        let t = &self.thresholds;
        let (after_rule, plain) = match church {
            Church::Safe => {
                return (harm >= t.church).then(model_category).flatten();
            }
            Church::Story => (t.story_rule, t.story_plain),
            Church::None => (t.after_rule, t.plain),
        };
        match rule_category {
            Some(category) => (harm >= after_rule).then_some(category),
            None => (harm >= plain).then(model_category).flatten(),
        }
    }
}

/// The training settings of `cargo run --example train_prompts`. Until the ninth round the rate was
/// 0.3 and the L2 penalty 1e-3; chosen again with the eighth and ninth rounds on the four rounds'
/// files by new writers (`--holdout --holdout-set` 7-17, 18-24, 25-31, 32-41, each learnt from all
/// the others, added up; never a frozen set), together with `after_rule`: the model learnt too
/// little (with a rule's match standing from a harm of 0.15 as then: recall fr 0.785, en 0.768;
/// fine prompts refused 194 of 9,820, church 32 of 6,085). With a rate of 2.0, an L2 of 7e-4 and a
/// rule's match standing from a harm of 0.3: recall fr 0.820, en 0.809, fine prompts refused 109,
/// church 14. Tried and left: an L2 of 1e-4 to 3e-4 with rates of 1 to 8 (recall up to fr 0.896, en
/// 0.891, but short fine prompts refused by the model alone: « L'humilité de la Vierge », a Shoah
/// commemoration with a crossed-out swastika, a pastor dressed as a clown:
/// `terms_match_whole_words_only`, `the_probe_paraphrases_are_decided_right`; two writers' near
/// misses of those kinds, tests/data/prompts-training-{39,40}.tsv, cured the first only, « L'humilité
/// de la Vierge »); an L2 of 5e-4 (the clown refused); features of five characters, word pairs one word
/// apart, unordered pairs within four words, word prefixes of five characters (±1 point of recall);
/// a floor under the count that scales a short prompt's features (no change).
///
/// With the tenth and eleventh rounds (fourteenth session, the six rounds' files, a story's rule
/// standing from 0.6 as in `THRESHOLDS`): an L2 of 5e-4 instead of 7e-4, recall fr 0.851 → 0.860,
/// en 0.834 → 0.844, church prompts refused 16 → 15 of 8,645, fine prompts 129 → 138 of 13,660;
/// the clown it refused with the ninth round is allowed now. An L2 of 1e-3 learnt less (fr 0.826).
pub const TRAINING: Training = Training {
    epochs: 30,
    rate: 2.0,
    l2: 5e-4,
};

/// Trained weights by feature name, before they are written out.
pub struct Trained {
    pub names: Vec<String>,
    pub weights: Vec<[f32; CLASSES]>,
    pub bias: [f32; CLASSES],
}

/// Trains the model (`logistic::train`): flags worth 1; the words and pairs of words 1/√n among
/// the n of a prompt, and its character n-grams 1/√m among its m n-grams. Until the fifteenth
/// session every text feature was worth 1/√n among all of them, and a word's n-grams (about a
/// dozen from 3- to 5-grams) outweighed the words around it: « croix gammée » outvoted
/// « commémoration », « barrée » and « plus jamais ça » in a fine probe. Measured on the ten
/// rounds' files by new writers, each learnt from all the others (`--holdout-set 7-17` to
/// `84-91`, added up; never a frozen set): recall fr 0.892 → 0.910, en 0.879 → 0.897, church
/// prompts refused 27 → 14 of 13,765, fine prompts 179 → 126 of 21,340. With the sixteenth
/// round (sixteenth session), the pairs of words scaled among themselves too (`Kind::Pair`), on
/// the eleven rounds' files (`--holdout-set 7-17` to `92-99`): recall fr 0.924 → 0.929, en
/// 0.896 → 0.903, church prompts refused 13 → 11 of 15,045, fine prompts 132 → 122 of 23,260.
/// Tried and left: each length of n-gram (3, 4, 5) scaled among its own length (fr 0.940, en
/// 0.923, but church 18 and fine 144: « Ave Maria » and a skating cat refused; with the model
/// alone refusing from 0.93, church 15 and fine 131); the n-grams or the pairs worth 0.8 or
/// 1.25 times as much (fr 0.925 to 0.933, church 11 to 13, fine 120 to 133).
pub fn train(examples: &[Example], settings: Training) -> Trained {
    let (encoded, names) = logistic::encode(
        examples.iter().map(|e| (e.features.as_slice(), e.class)),
        |name, all| {
            let kind = Kind::of(name);
            kind.value(all.iter().filter(|f| Kind::of(f) == kind).count())
        },
    );
    let (weights, bias) = logistic::train(&encoded, names.len(), CLASSES, settings);
    let row = |w: &[f32]| {
        let mut out = [0.0f32; CLASSES];
        for (o, v) in out.iter_mut().zip(w) {
            *o = *v;
        }
        out
    };
    Trained {
        names,
        weights: weights.iter().map(|w| row(w)).collect(),
        bias: row(&bias),
    }
}

impl Trained {
    /// The weights file: the thresholds, the bias, then one line per feature whose largest weight
    /// is not negligible, sorted by name so that a retrain shows as a readable diff.
    pub fn to_tsv(&self, thresholds: Thresholds, header: &str) -> String {
        let mut out = String::new();
        for line in header.lines() {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "threshold\tplain\t{}", thresholds.plain);
        let _ = writeln!(out, "threshold\tafter_rule\t{}", thresholds.after_rule);
        let _ = writeln!(out, "threshold\tchurch\t{}", thresholds.church);
        let _ = writeln!(out, "threshold\tstory_rule\t{}", thresholds.story_rule);
        let _ = writeln!(out, "threshold\tstory_plain\t{}", thresholds.story_plain);
        let row = |w: &[f32; CLASSES]| {
            w.iter()
                .map(|v| format!("{v:.4}"))
                .collect::<Vec<_>>()
                .join("\t")
        };
        let _ = writeln!(out, "bias\t{}", row(&self.bias));
        let mut lines: Vec<(&String, &[f32; CLASSES])> = self
            .names
            .iter()
            .zip(&self.weights)
            .filter(|(name, w)| !name.contains(['\t', '\n']) && w.iter().any(|v| v.abs() >= 0.002))
            .collect();
        lines.sort_by(|a, b| a.0.cmp(b.0));
        for (name, w) in lines {
            let _ = writeln!(out, "{name}\t{}", row(w));
        }
        out
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;

    /// Every weight of the model file, and numbers of every shape around them, read as
    /// `str::parse` reads them (the same bits).
    #[test]
    fn weights_are_read_as_str_parse_reads_them() {
        let mut fields: Vec<String> = super::super::tests::MODEL
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| l.split('\t').skip(1).map(str::to_owned).collect::<Vec<_>>())
            .collect();
        assert!(fields.len() > 1_000_000, "{} weights", fields.len());
        for i in 0..200_000u64 {
            // Spread by Fibonacci hashing: digits, where the point goes and the sign.
            let bits = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let digits = (bits >> 20) % 100_000_000;
            let at = (bits >> 8) as usize % 10;
            let mut number = digits.to_string();
            if at < number.len() {
                number.insert(number.len() - at, '.');
            }
            let sign = if bits >> 63 == 1 { "-" } else { "" };
            fields.push(format!("{sign}{number}"));
        }
        fields.extend(
            [
                "0",
                "-0",
                "-0.0000",
                ".5",
                "5.",
                ".",
                "-",
                "",
                "1e3",
                "+1.5",
                "16777216",
                "16777215",
                "1677721.6",
                "0.00000001",
                "0.12345678",
                "1.2.3",
                "nan",
                "inf",
            ]
            .map(str::to_owned),
        );
        for field in &fields {
            let expected: Option<f32> = field.parse().ok();
            assert_eq!(
                weight(field).map(f32::to_bits),
                expected.map(f32::to_bits),
                "« {field} »"
            );
        }
    }

    /// A word the model never learnt adds nothing to the scores, even when the hash of its
    /// feature shares the low 18 bits of a learnt feature's hash (the slot it read in the fixed
    /// table of 2^18 slots the model used to be loaded into).
    #[test]
    fn an_unknown_word_reads_no_learnt_weights() {
        const LOW: u32 = (1 << 18) - 1;
        let learnt = "w:sermon";
        let unknown = (0u32..)
            .map(|n| format!("zq{n}"))
            .find(|w| fnv(format!("w:{w}").bytes()) & LOW == fnv(learnt.bytes()) & LOW)
            .unwrap_or_default();
        assert!(!unknown.is_empty());
        let model = Model::from_tsv(&format!("bias\t0\t0\t0\t0\n{learnt}\t-5\t5\t0\t0\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        let p = model.probabilities(&[unknown.as_str()], &[], Church::None);
        assert!(
            p.iter().all(|p| (p - 0.25).abs() < 1e-6),
            "« {unknown} » was scored {p:?}, as if it were « sermon »"
        );
        let learnt = model.probabilities(&["sermon"], &[], Church::None);
        assert!(learnt[1] > 0.5, "« sermon » was scored {learnt:?}");
    }

    /// `cargo test --release --lib -- --ignored --nocapture model_load_cost`: reading the model
    /// file, on the start-up's critical path. On 2026-12-07 (443,598 features): 181–201 ms,
    /// most of it inserting into the table (a cache miss each); the portal's start-up went
    /// from about 40 ms to 250 ms as the model grew (`bench/README.md`).
    #[test]
    #[ignore = "a measurement"]
    fn model_load_cost() {
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let model =
                Model::from_tsv(super::super::tests::MODEL).unwrap_or_else(|e| panic!("{e}"));
            println!("{} features in {:?}", model.features, started.elapsed());
        }
    }
}
