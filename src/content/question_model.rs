//! The learned half of the help-centre search: which guide a reader's question is about, as a
//! multinomial logistic regression over the words the search read (after its corrections),
//! their stems, word pairs and the character n-grams of each word. Readers ask in words no
//! guide contains (« ma collègue », « la vidéo tourne dans le vide »); rules and synonyms
//! written from a few hundred questions did not carry over to new wordings (#15), a model
//! trained on many questions does better.
//!
//! Trained on the training questions (`tests/data/search-questions/training.tsv`, written for
//! it) and the tuning half, never on the frozen half: `cargo run --example train_search`.
//! Deterministic (fixed order, no randomness). The weights are data:
//! `content/search-model.tsv`, the guides in its `classes` line, then one feature per line
//! with a weight per guide. A guide the file does not name gets no help from the model (the
//! test `the_search_model_knows_every_guide` asks for a retrain).
//!
//! The search adds `mix × probability` to each guide's normalised score (see
//! `SearchIndex::search`).

use std::fmt::Write as _;

use crate::domain::logistic;
pub use crate::domain::logistic::{Example, Training};

/// A trained model: for each feature (by hash) a row of weights, one per class.
pub struct QuestionModel {
    pub classes: Vec<String>,
    /// How much the model's probability weighs against the text scores (normalised to 1).
    pub mix: f32,
    rows: rustc_hash::FxHashMap<u64, u32>,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl std::fmt::Debug for QuestionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuestionModel")
            .field("classes", &self.classes)
            .field("mix", &self.mix)
            .field("features", &self.rows.len())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuestionModelError {
    #[error("search model, line {line}: {reason}")]
    Line { line: usize, reason: &'static str },
}

/// FNV-1a, 64 bits, over the pieces of a feature's name: stable across builds.
fn hash(pieces: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pieces.iter().flat_map(|p| p.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Calls `each` with every feature of a question, as the pieces of its name: each word read
/// (`w:`), each stem (`t:`), each pair of neighbouring words (`b:`), the character 3- and
/// 4-grams of each word of four letters or more, its ends marked (`c:^abc`), and the guide of
/// the search's intent that holds (`i:depannage`): the model learns how far to trust each.
pub fn for_each_feature(
    words: &[&str],
    stems: &[&str],
    intent: Option<&str>,
    each: &mut dyn FnMut(&[&str]),
) {
    logistic::word_features(words, 6, 4, each);
    for stem in stems {
        each(&["t:", stem]);
    }
    if let Some(guide) = intent {
        each(&["i:", guide]);
    }
}

/// The features of a question as names (for training).
pub fn feature_names(words: &[&str], stems: &[&str], intent: Option<&str>) -> Vec<String> {
    let mut names = Vec::new();
    for_each_feature(words, stems, intent, &mut |pieces| {
        names.push(pieces.concat())
    });
    names
}

/// Text features weigh 1/√n among the n of a question, so that long questions do not shout.
fn scale(count: usize) -> f32 {
    1.0 / (count.max(1) as f32).sqrt()
}

impl QuestionModel {
    /// Reads `content/search-model.tsv`: `classes<TAB>slug…`, `mix<TAB>value`, `bias<TAB>w…`
    /// and `feature<TAB>w…` lines, one weight per class; `#` starts a comment.
    pub fn from_tsv(text: &str) -> Result<Self, QuestionModelError> {
        let mut model = Self {
            classes: Vec::new(),
            mix: 0.0,
            rows: rustc_hash::FxHashMap::default(),
            weights: Vec::new(),
            bias: Vec::new(),
        };
        for (number, line) in text.lines().enumerate() {
            let bad = |reason| QuestionModelError::Line {
                line: number + 1,
                reason,
            };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split('\t');
            let name = fields.next().ok_or(bad("empty line"))?;
            match name {
                "classes" => {
                    model.classes = fields.map(str::to_owned).collect();
                    continue;
                }
                "mix" => {
                    model.mix = fields
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or(bad("mix without a number"))?;
                    continue;
                }
                _ => {}
            }
            let n = model.classes.len();
            if n == 0 {
                return Err(bad("weights before the classes line"));
            }
            let row: Vec<f32> = fields
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()
                .ok_or(bad("a weight is not a number"))?;
            if row.len() != n {
                return Err(bad("not one weight per class"));
            }
            if name == "bias" {
                model.bias = row;
            } else {
                let at = (model.weights.len() / n) as u32;
                if model.rows.insert(hash(&[name]), at).is_some() {
                    return Err(bad("a feature twice"));
                }
                model.weights.extend(row);
            }
        }
        if model.bias.len() != model.classes.len() {
            return Err(QuestionModelError::Line {
                line: 0,
                reason: "no bias line",
            });
        }
        Ok(model)
    }

    /// The probability of each class for a question read as `words` with `stems`.
    pub fn probabilities(&self, words: &[&str], stems: &[&str], intent: Option<&str>) -> Vec<f32> {
        let n = self.classes.len();
        let mut text = vec![0.0f32; n];
        let mut count = 0usize;
        for_each_feature(words, stems, intent, &mut |pieces| {
            count += 1;
            if let Some(&row) = self.rows.get(&hash(pieces)) {
                let from = row as usize * n;
                if let Some(w) = self.weights.get(from..from + n) {
                    for (z, w) in text.iter_mut().zip(w) {
                        *z += w;
                    }
                }
            }
        });
        let s = scale(count);
        let mut z: Vec<f32> = self.bias.iter().zip(text).map(|(b, t)| b + t * s).collect();
        logistic::softmax(&mut z);
        z
    }
}

/// The training settings, chosen on questions by writers the model did not learn from
/// (`train_search --sweep --on training-2.tsv --with-tuning`): 0.756 top-1 for the search
/// without the model, 0.901 with these and a mix of 5.
pub const TRAINING: Training = Training {
    epochs: 80,
    rate: 1.0,
    l2: 3e-3,
};

/// Trained weights by feature name, before they are written out.
pub struct Trained {
    pub classes: Vec<String>,
    pub names: Vec<String>,
    pub weights: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
}

/// Trains the model (`logistic::train`), text features worth 1/√n among the n of a question.
pub fn train(classes: &[String], examples: &[Example], settings: Training) -> Trained {
    let (encoded, names) = logistic::encode(
        examples.iter().map(|e| (e.features.as_slice(), e.class)),
        |_, all| scale(all.len()),
    );
    let (weights, bias) = logistic::train(&encoded, names.len(), classes.len(), settings);
    Trained {
        classes: classes.to_vec(),
        names,
        weights,
        bias,
    }
}

impl Trained {
    /// The weights file: the classes, the mix, the bias, then one line per feature whose
    /// largest weight is not negligible, sorted by name so that a retrain reads as a diff.
    pub fn to_tsv(&self, mix: f32, header: &str) -> String {
        let mut out = String::new();
        for line in header.lines() {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "classes\t{}", self.classes.join("\t"));
        let _ = writeln!(out, "mix\t{mix}");
        let row = |w: &[f32]| {
            w.iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join("\t")
        };
        let _ = writeln!(out, "bias\t{}", row(&self.bias));
        let mut lines: Vec<(&String, &Vec<f32>)> = self
            .names
            .iter()
            .zip(&self.weights)
            .filter(|(name, w)| {
                !name.contains(['\t', '\n'])
                    && !matches!(name.as_str(), "bias" | "classes" | "mix")
                    && w.iter().any(|v| v.abs() >= 0.01)
            })
            .collect();
        lines.sort_by(|a, b| a.0.cmp(b.0));
        for (name, w) in lines {
            let _ = writeln!(out, "{name}\t{}", row(w));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_read_back_gives_the_trained_probabilities() {
        let classes = vec!["tarifs".to_owned(), "video".to_owned()];
        let example = |words: &[&str], class| Example {
            features: feature_names(words, &[], None),
            class,
        };
        let examples = vec![
            example(&["prix", "abonnement"], 0),
            example(&["combien", "coute"], 0),
            example(&["creer", "video"], 1),
            example(&["format", "video", "vertical"], 1),
        ];
        let trained = train(&classes, &examples, TRAINING);
        let model =
            QuestionModel::from_tsv(&trained.to_tsv(0.5, "test")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(model.classes, classes);
        assert!((model.mix - 0.5).abs() < 1e-6);
        let p = model.probabilities(&["prix"], &[], None);
        assert!(p[0] > p[1], "{p:?}");
        let p = model.probabilities(&["video", "courte"], &[], None);
        assert!(p[1] > p[0], "{p:?}");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn a_bad_weights_file_names_its_line() {
        let e = QuestionModel::from_tsv("classes\ta\tb\nbias\t0\t0\nw:x\t1\n")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("search model, line 3: not one weight per class")
        );
    }
}
