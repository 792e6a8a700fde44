//! Forbidden-prompt checker and prompt advice.
//!
//! Before a generation, and in the cost simulator, a prompt is checked against the three forbidden
//! categories of the help centre (sexual; hate and violence; drugs and danger) and gets advice
//! (too long, no format, several styles). Everything the checker knows is data, in
//! `content/prompt-rules.toml`, which the caller reads and passes in: this module does no I/O.
//!
//! How a prompt is read:
//! - Folding: lower case, accents and ligatures removed (« Œuvre » → `oeuvre`), invisible
//!   characters dropped (zero-width, bidi controls, combining marks), a few look-alike letters
//!   (Cyrillic, fullwidth, mathematical bold) mapped to plain Latin.
//! - Words: runs of letters and digits; everything else is a boundary, so a term never matches
//!   inside another word (« sexe » is not in « Essex », `drogu*` is not in « antidrogue »).
//! - Evasions: words cut by punctuation (« drog-ue », « d.r.o.g.u.e ») and runs of single letters
//!   (« d r o g u e ») are joined into a second reading of the prompt; leetspeak (« dr0gue »,
//!   « s3x ») and stretched letters (« seeexy ») give extra spellings of a word.
//! - Rules are groups of terms; a group fires when one of its terms appears (or, for a group with
//!   `with`, a term and a `with` term appear close together) unless an exception phrase covers
//!   that occurrence or one of the group's safe contexts appears anywhere in the prompt. When
//!   several groups fire, the first in the file names the category.
//! - With the statistical model loaded (`with_model`, `content/prompt-model.tsv`, see `model`),
//!   the model confirms a rule's refusal, refuses what no rule names, and decides alone where a
//!   church-safe context (`[church].safe_contexts`: a commandment, a prayer) appears; in a church
//!   story context (`[church].contexts`: the Passion, a martyr, a psalm) it must be surer, unless
//!   a rule that fired is `never_in_stories` (pornography, a joint, a hate symbol).
//!
//! Files: this one holds the public API (`PromptRules::from_toml`, `check`, `check_for`,
//! `explain`, `with_model`); `model` holds the classifier and its training; `rules`
//! reads and compiles the rules file, `matcher` finds the compiled terms in a prompt,
//! `reading` splits a prompt into folded words and their evasive spellings (the folding itself
//! is `domain::fold`, shared with the guides' search), `tests` holds the unit and corpus tests.

use std::collections::HashMap;

use super::pricing::CreationType;

mod matcher;
pub mod model;
mod reading;
mod rules;
#[cfg(test)]
mod tests;

use matcher::*;
use reading::*;
use rules::*;

pub use model::{Model, ModelError, Thresholds};

/// The words of a prompt as the length advice counts them (« l’huile » is one word), for the
/// guides' examples that state their length.
pub fn word_count(prompt: &str) -> usize {
    Text::read(prompt).words
}

/// A forbidden category, as named by the help centre (section 7 of « Crédits & limites »).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Sexual,
    HateViolence,
    DrugsDanger,
}

impl Category {
    /// Every category, in the order of the help centre.
    pub const ALL: [Category; 3] = [
        Category::Sexual,
        Category::HateViolence,
        Category::DrugsDanger,
    ];

    /// The stable identifier used in the rules file and the JSON API.
    pub fn id(self) -> &'static str {
        match self {
            Category::Sexual => "sexual",
            Category::HateViolence => "hate_violence",
            Category::DrugsDanger => "drugs_danger",
        }
    }

    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.id() == id.trim())
    }
}

/// What the form already says about the creation, so that advice never asks the prompt for what
/// a field holds: the format of a video or an image is a field, music has no format, a mini-book's
/// pages and illustrations are fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    pub creation_type: CreationType,
    /// Whether the form's `format` field was given (video, image); when it was not, the default
    /// format applies.
    pub format_given: bool,
}

/// A piece of advice on a prompt: a warning shown to the user, never a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advice {
    TooLong {
        words: usize,
        max: usize,
    },
    /// The creation type is unknown (a prompt checked on its own) and the prompt names no format.
    NoFormat,
    /// A video or an image whose `format` field was left empty: the default format applies, and
    /// the field, not the prompt, is where to choose another.
    DefaultFormat {
        creation_type: CreationType,
    },
    /// A music prompt asking for a voice, a song or lyrics: the music is instrumental.
    Instrumental,
    /// The names of the styles found, in the order they appear in the prompt.
    SeveralStyles {
        styles: Vec<String>,
    },
}

/// A rule that fired on a prompt: its category, its `name` in the rules file and the term, as
/// written there, that was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub category: Category,
    pub rule: String,
    pub term: String,
}

/// The verdict on a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptCheck {
    /// The forbidden category the prompt falls in, if any.
    pub category: Option<Category>,
    pub advice: Vec<Advice>,
}

impl PromptCheck {
    pub fn allowed(&self) -> bool {
        self.category.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("the prompt rules are not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error(
        "rule {rule:?}: unknown category {id:?} (expected sexual, hate_violence or drugs_danger)"
    )]
    UnknownCategory { rule: String, id: String },
    #[error("rule {rule:?} has no terms")]
    NoTerms { rule: String },
    #[error("{place}: empty term")]
    EmptyTerm { place: String },
    #[error("{place}: term {term:?} is invalid: {reason}")]
    BadTerm {
        place: String,
        term: String,
        reason: &'static str,
    },
    #[error("{place}: term {term:?} uses the unknown set @{set}")]
    UnknownSet {
        place: String,
        term: String,
        set: String,
    },
    #[error("advice.max_words must be at least 1")]
    ZeroMaxWords,
}

/// The shortest stem allowed: shorter ones (`nu*`, `tu*`) would match far too many words.
const MIN_STEM_CHARS: usize = 3;
/// The forbidden-prompt rules and the advice settings, ready to check prompts.
pub struct PromptRules {
    forbidden: Matcher,
    /// The statistical model, when loaded (`with_model`): it decides together with the rules.
    model: Option<Model>,
    advice: Matcher,
    rules: Vec<Rule>,
    style_names: Vec<String>,
    max_words: usize,
}

impl std::fmt::Debug for PromptRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptRules")
            .field("rules", &self.rules.len())
            .field("patterns", &self.forbidden.patterns.len())
            .field("advice_patterns", &self.advice.patterns.len())
            .field("styles", &self.style_names)
            .field("max_words", &self.max_words)
            .field("model", &self.model)
            .finish()
    }
}

impl PromptRules {
    /// Parses and folds the rules file (`content/prompt-rules.toml`).
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let file: RulesFile = toml::from_str(text)?;
        if file.advice.max_words == 0 {
            return Err(RulesError::ZeroMaxWords);
        }
        let compiler = Compiler { sets: &file.sets };
        let mut forbidden = Matcher::default();
        let mut advice = Matcher::default();

        for term in &file.global.exceptions {
            for slots in compiler.patterns("global.exceptions", term)? {
                forbidden.add(slots, Owner::GlobalException, term);
            }
        }
        for term in &file.church.safe_contexts {
            for slots in compiler.patterns("church.safe_contexts", term)? {
                forbidden.add(slots, Owner::ChurchSafe, term);
            }
        }
        for term in &file.church.contexts {
            for slots in compiler.patterns("church.contexts", term)? {
                forbidden.add(slots, Owner::ChurchContext, term);
            }
        }

        let mut rules = Vec::with_capacity(file.rules.len());
        for (index, rule) in file.rules.iter().enumerate() {
            let category =
                Category::parse(&rule.category).ok_or_else(|| RulesError::UnknownCategory {
                    rule: rule.name.clone(),
                    id: rule.category.clone(),
                })?;
            if rule.terms.is_empty() {
                return Err(RulesError::NoTerms {
                    rule: rule.name.clone(),
                });
            }
            let lists = [
                (Role::Term, &rule.terms, "terms"),
                (Role::With, &rule.with, "with"),
                (Role::Exception, &rule.exceptions, "exceptions"),
                (Role::SafeContext, &rule.safe_contexts, "safe_contexts"),
            ];
            for (role, terms, field) in lists {
                let place = format!("rule {:?}, {field}", rule.name);
                for term in terms {
                    for slots in compiler.patterns(&place, term)? {
                        forbidden.add(slots, Owner::Rule { rule: index, role }, term);
                    }
                }
            }
            rules.push(Rule {
                category,
                name: rule.name.clone(),
                window: rule.window,
                has_with: !rule.with.is_empty(),
                disguised_alone: rule.disguised_alone,
                never_in_stories: rule.never_in_stories,
            });
        }

        for term in &file.advice.formats {
            for slots in compiler.patterns("advice.formats", term)? {
                advice.add(slots, Owner::Format, term);
            }
        }
        for term in &file.advice.voices {
            for slots in compiler.patterns("advice.voices", term)? {
                advice.add(slots, Owner::Voice, term);
            }
        }
        let mut style_names = Vec::with_capacity(file.advice.styles.len());
        for (name, terms) in &file.advice.styles {
            let place = format!("advice.styles.{name}");
            for term in terms {
                for slots in compiler.patterns(&place, term)? {
                    advice.add(slots, Owner::Style(style_names.len()), term);
                }
            }
            style_names.push(name.clone());
        }

        Ok(Self {
            forbidden,
            model: None,
            advice,
            rules,
            style_names,
            max_words: file.advice.max_words,
        })
    }

    /// The rules together with the statistical model (`content/prompt-model.tsv`): the model
    /// confirms a rule's refusal, refuses what no rule names, and alone decides where a
    /// church-safe context (a commandment, a prayer) sets the rules aside.
    pub fn with_model(mut self, model: Model) -> Self {
        self.model = Some(model);
        self
    }

    /// The model's features of a prompt, by name, for training (`examples/train_prompts.rs`).
    pub fn features(&self, prompt: &str) -> Vec<String> {
        let text = Text::read(prompt);
        let found = self.fired_rules(&text);
        let words = reading_words(&text);
        let names = model_rules(&found);
        let mut out = Vec::new();
        model::for_each_feature(&words, &names, found.church(), &mut |pieces| {
            out.push(pieces.concat())
        });
        out
    }

    /// The model's probabilities of `ok` and of each category (`Category::ALL` order), or
    /// `None` without a model. For tests and tuning.
    pub fn probabilities(&self, prompt: &str) -> Option<[f32; model::CLASSES]> {
        let model = self.model.as_ref()?;
        let text = Text::read(prompt);
        let found = self.fired_rules(&text);
        let words = reading_words(&text);
        Some(model.probabilities(&words, &model_rules(&found), found.church()))
    }

    /// The work a check does on a prompt, counted rather than timed (a timed test is flaky on a
    /// loaded machine; the time is measured in release, see bench/README.md).
    #[cfg(test)]
    fn work(&self, prompt: &str) -> Work {
        let text = Text::read(prompt);
        let readings = text.readings();
        let found = self.fired_rules(&text);
        let words = reading_words(&text);
        let mut features = 0;
        model::for_each_feature(&words, &model_rules(&found), found.church(), &mut |_| {
            features += 1
        });
        Work {
            readings: readings.len(),
            spellings: readings.iter().flatten().map(|t| t.forms.len()).sum(),
            patterns_tried: readings.iter().map(|r| self.forbidden.tried(r)).sum(),
            features,
        }
    }

    /// The verdict of the rules (`fired`) and, when loaded, the model.
    fn verdict(&self, text: &Text, found: &Fired) -> Option<Category> {
        let rule_category = found
            .rules
            .first()
            .and_then(|&(rule, _)| self.rules.get(rule))
            .map(|rule| rule.category);
        match &self.model {
            None if found.church_safe => None,
            Some(_) if found.disguised && !found.church_safe && rule_category.is_some() => {
                rule_category
            }
            None => rule_category,
            Some(model) => {
                let words = reading_words(text);
                let p = model.probabilities(&words, &model_rules(found), found.church());
                model.decide(&p, rule_category, found.church())
            }
        }
    }

    /// Checks a prompt on its own, the creation type unknown: its forbidden category, if any,
    /// and advice. Never panics.
    pub fn check(&self, prompt: &str) -> PromptCheck {
        self.check_with(prompt, None)
    }

    /// Checks a prompt written for a creation whose form `fields` are known: the advice then
    /// depends on the type and on what the fields already say. Never panics.
    pub fn check_for(&self, prompt: &str, fields: Fields) -> PromptCheck {
        self.check_with(prompt, Some(fields))
    }

    fn check_with(&self, prompt: &str, fields: Option<Fields>) -> PromptCheck {
        let text = Text::read(prompt);
        if text.words == 0 {
            return PromptCheck {
                category: None,
                advice: Vec::new(),
            };
        }
        let found = self.fired_rules(&text);
        let category = self.verdict(&text, &found);
        PromptCheck {
            category,
            advice: self.advice_for(&text, fields),
        }
    }

    /// Why a prompt is refused: every rule that fires, the deciding one first. Empty when the
    /// prompt is allowed. Meant for logs and for staff tuning the rules file.
    pub fn explain(&self, prompt: &str) -> Vec<Explanation> {
        let text = Text::read(prompt);
        let found = self.fired_rules(&text);
        let verdict = self.verdict(&text, &found);
        let mut explanations: Vec<Explanation> = found
            .rules
            .iter()
            .copied()
            .filter_map(|(index, pattern)| {
                let rule = self.rules.get(index)?;
                let term = self
                    .forbidden
                    .patterns
                    .get(pattern)?
                    .owners
                    .iter()
                    .find(|(owner, _)| {
                        *owner
                            == Owner::Rule {
                                rule: index,
                                role: Role::Term,
                            }
                    })
                    .map(|(_, source)| source.clone())?;
                Some(Explanation {
                    category: rule.category,
                    rule: rule.name.clone(),
                    term,
                })
            })
            .collect();
        match verdict {
            None => explanations.clear(),
            Some(category) if explanations.first().map(|e| e.category) != Some(category) => {
                let p = self.probabilities(prompt).unwrap_or_default();
                explanations.insert(
                    0,
                    Explanation {
                        category,
                        rule: "statistical model".to_owned(),
                        term: format!("p(ok) = {:.3}", p[0]),
                    },
                );
            }
            Some(_) => {}
        }
        explanations
    }

    /// The rules that fire on a prompt, with the term that made each fire, in file order: the
    /// first one decides the category.
    fn fired_rules(&self, text: &Text) -> Fired {
        let mut hits = Vec::new();
        for reading in text.readings() {
            self.forbidden.find(&reading, false, &mut hits);
        }
        hits.sort_unstable();
        hits.dedup();

        #[derive(Default)]
        struct RuleHits {
            terms: Vec<Hit>,
            with: Vec<Hit>,
            exceptions: Vec<Hit>,
            safe: Vec<Hit>,
        }
        let mut per_rule: Vec<RuleHits> =
            (0..self.rules.len()).map(|_| RuleHits::default()).collect();
        let mut global = Vec::new();
        let mut church_safe = false;
        let mut church_context = false;
        for hit in hits {
            let Some(pattern) = self.forbidden.patterns.get(hit.pattern) else {
                continue;
            };
            for (owner, _) in &pattern.owners {
                match *owner {
                    Owner::GlobalException => global.push(hit),
                    Owner::ChurchSafe => church_safe = true,
                    Owner::ChurchContext => church_context = true,
                    Owner::Rule { rule, role } => {
                        let Some(bucket) = per_rule.get_mut(rule) else {
                            continue;
                        };
                        match role {
                            Role::Term => bucket.terms.push(hit),
                            Role::With => bucket.with.push(hit),
                            Role::Exception => bucket.exceptions.push(hit),
                            Role::SafeContext => bucket.safe.push(hit),
                        }
                    }
                    Owner::Format | Owner::Voice | Owner::Style(_) => {}
                }
            }
        }

        let mut fired = Vec::new();
        let mut disguised = false;
        let mut never_in_stories = false;
        for (index, (rule, found)) in self.rules.iter().zip(&per_rule).enumerate() {
            let excused = |hit: &Hit| {
                global
                    .iter()
                    .chain(&found.exceptions)
                    .any(|e| e.covers(hit))
            };
            // An exception covers a safe context as it covers a term: « sans harnais » is no
            // safety harness.
            if found.safe.iter().any(|h| !excused(h)) {
                continue;
            }
            let terms: Vec<&Hit> = found.terms.iter().filter(|h| !excused(h)).collect();
            let culprit = if rule.has_with {
                let with: Vec<&Hit> = found.with.iter().filter(|h| !excused(h)).collect();
                terms.iter().find(|t| {
                    (rule.disguised_alone && t.disguise == Disguise::Evasion)
                        || with.iter().any(|w| {
                            w.start != t.start && (rule.window == 0 || t.gap(w) <= rule.window)
                        })
                })
            } else {
                terms.first()
            };
            if let Some(hit) = culprit {
                disguised |= hit.disguise == Disguise::Evasion;
                never_in_stories |= rule.never_in_stories;
                fired.push((index, hit.pattern));
            }
        }
        Fired {
            rules: fired,
            church_safe,
            // Pornography or a joint is no church story, whatever the prompt says around it.
            church_context: church_context && !never_in_stories,
            disguised,
        }
    }

    fn advice_for(&self, text: &Text, fields: Option<Fields>) -> Vec<Advice> {
        let mut advice = Vec::new();
        if text.words > self.max_words {
            advice.push(Advice::TooLong {
                words: text.words,
                max: self.max_words,
            });
        }
        let mut hits = Vec::new();
        let as_written: Vec<&Token> = text.tokens.iter().collect();
        self.advice.find(&as_written, true, &mut hits);
        let owners = |hit: &Hit| {
            self.advice
                .patterns
                .get(hit.pattern)
                .map(|p| p.owners.as_slice())
                .unwrap_or_default()
        };
        let found = |owner: Owner| {
            hits.iter()
                .any(|h| owners(h).iter().any(|(o, _)| *o == owner))
        };
        let about_fields = match fields {
            // Nothing known about the form: the prompt is the only place for a format.
            None => (!found(Owner::Format)).then_some(Advice::NoFormat),
            // The format is a field of the form: never ask the prompt for it; say which one
            // applies when the field was left empty.
            Some(Fields {
                creation_type: creation_type @ (CreationType::Video | CreationType::Image),
                format_given,
            }) => (!format_given).then_some(Advice::DefaultFormat { creation_type }),
            // Music has no format, and no voice.
            Some(Fields {
                creation_type: CreationType::Music,
                ..
            }) => found(Owner::Voice).then_some(Advice::Instrumental),
            // A mini-book's pages and illustrations are fields; it has no format to choose.
            Some(Fields {
                creation_type: CreationType::MiniBook,
                ..
            }) => None,
        };
        advice.extend(about_fields);

        // « photo réaliste » is one style, not « photo » plus « réaliste »: the longest match
        // wins where style terms overlap.
        let mut styles: Vec<(Hit, usize)> = hits
            .iter()
            .flat_map(|h| {
                owners(h).iter().filter_map(|(o, _)| match o {
                    Owner::Style(style) => Some((*h, *style)),
                    _ => None,
                })
            })
            .collect();
        styles.sort_by_key(|(h, _)| (std::cmp::Reverse(h.end - h.start), h.start));
        let mut kept: Vec<(Hit, usize)> = Vec::new();
        for (hit, style) in styles {
            if !kept
                .iter()
                .any(|(k, _)| k.start < hit.end && hit.start < k.end)
            {
                kept.push((hit, style));
            }
        }
        kept.sort_by_key(|(h, _)| h.start);
        let mut names: Vec<String> = Vec::new();
        for (_, style) in kept {
            if let Some(name) = self.style_names.get(style)
                && !names.contains(name)
            {
                names.push(name.clone());
            }
        }
        if names.len() >= 2 {
            advice.push(Advice::SeveralStyles { styles: names });
        }
        advice
    }
}

/// The work of one check (`PromptRules::work`).
#[cfg(test)]
#[derive(Debug)]
struct Work {
    /// Readings of the prompt (as written; with cut-up words joined).
    readings: usize,
    /// Spellings looked up, over every word of every reading.
    spellings: usize,
    /// Patterns of the rules tried where the index points.
    patterns_tried: usize,
    /// Features the model hashes and reads (one table read each).
    features: usize,
}

/// What the rules found in a prompt.
struct Fired {
    /// The rules that fire, with the term that made each fire, in file order: the first one
    /// decides the category.
    rules: Vec<(usize, usize)>,
    /// A church-safe context (`[church].safe_contexts`) appears in the prompt.
    church_safe: bool,
    /// A church story or prayer context (`[church].contexts`) appears in the prompt.
    church_context: bool,
    /// A rule fired on a disguised term (« d r o g u e », « s3xy »): nobody disguises church
    /// words, so the model cannot overrule it.
    disguised: bool,
}

impl Fired {
    fn church(&self) -> model::Church {
        if self.church_safe {
            model::Church::Safe
        } else if self.church_context {
            model::Church::Story
        } else {
            model::Church::None
        }
    }
}

/// The prompt's words for the model: the folded spelling as written, with cut-up words joined
/// back (the last reading).
fn reading_words(text: &Text) -> Vec<&str> {
    text.readings()
        .pop()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| t.forms.first().map(String::as_str))
        .collect()
}

/// The rules the model is told about: none. Trained with the rules that fired as features, the
/// model learnt « harmful when a rule fires » (the rules refuse every harmful prompt of the
/// tuning half) and gave the words no weight: on the frozen half it caught nothing the rules
/// missed. Trained on the words alone, it is a second, independent reader.
fn model_rules(_found: &Fired) -> Vec<&'static str> {
    Vec::new()
}
