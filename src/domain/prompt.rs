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

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

/// A forbidden category, as named by the help centre (section 7 of « Crédits & limites »).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
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

/// A piece of advice on a prompt: a warning shown to the user, never a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advice {
    TooLong {
        words: usize,
        max: usize,
    },
    NoFormat,
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

// ---------------------------------------------------------------------------------------------
// The rules file, as written by staff.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    advice: AdviceFile,
    #[serde(default)]
    sets: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    global: GlobalFile,
    #[serde(default)]
    rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdviceFile {
    max_words: usize,
    formats: Vec<String>,
    styles: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GlobalFile {
    #[serde(default)]
    exceptions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    category: String,
    name: String,
    terms: Vec<String>,
    #[serde(default)]
    with: Vec<String>,
    #[serde(default)]
    window: usize,
    #[serde(default)]
    disguised_alone: bool,
    #[serde(default)]
    exceptions: Vec<String>,
    #[serde(default)]
    safe_contexts: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// The rules, folded once at load.

/// One way to spell a word in a term: the whole word (plus a plural in -s or -x) or a stem.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Alt {
    text: String,
    stem: bool,
}

impl Alt {
    fn matches(&self, form: &str) -> bool {
        if self.stem {
            return form.starts_with(&self.text);
        }
        form == self.text
            || (form.len() == self.text.len() + 1
                && form.starts_with(&self.text)
                && (form.ends_with('s') || form.ends_with('x')))
    }
}

/// One word position of a term, with its alternatives (`sale|sales`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Slot {
    alts: Vec<Alt>,
}

impl Slot {
    /// Whether the word matches, and if so whether only a disguised spelling of it did.
    fn matches(&self, token: &Token, spellings: usize) -> Option<Disguise> {
        let index = token
            .forms
            .iter()
            .take(spellings)
            .position(|form| self.alts.iter().any(|alt| alt.matches(form)))?;
        Some(if index == 0 && !token.joined {
            Disguise::None
        } else {
            Disguise::Evasion
        })
    }
}

/// How a term was written in the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Disguise {
    None,
    /// Leetspeak, stretched letters or a word cut up: nobody writes « j0int » for a pipe joint,
    /// so rules with `disguised_alone` let such a term fire without its `with` partner.
    Evasion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Term,
    With,
    Exception,
    SafeContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Rule { rule: usize, role: Role },
    GlobalException,
    Format,
    Style(usize),
}

/// A distinct phrase and everything that uses it: a set such as `@prevention` appears in many
/// rules but is matched once.
#[derive(Debug, Clone)]
struct Pattern {
    slots: Vec<Slot>,
    /// Who uses the phrase, with the term as written in the rules file (for `explain`).
    owners: Vec<(Owner, String)>,
}

/// Patterns indexed by their first word, so that `check` only tries the few patterns that can
/// start at each word of the prompt: whole words (and their plurals) by the word, stems by their
/// first three letters.
#[derive(Default)]
struct Matcher {
    patterns: Vec<Pattern>,
    words: HashMap<String, Vec<usize>>,
    stems: HashMap<String, Vec<usize>>,
    by_slots: HashMap<Vec<Slot>, usize>,
}

/// The first `MIN_STEM_CHARS` characters of a word, if it has that many.
fn stem_key(word: &str) -> Option<&str> {
    let end = word
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .nth(MIN_STEM_CHARS - 1)?;
    word.get(..end)
}

fn push_unique(list: &mut Vec<usize>, id: usize) {
    if list.last() != Some(&id) {
        list.push(id);
    }
}

impl Matcher {
    fn add(&mut self, slots: Vec<Slot>, owner: Owner, source: &str) {
        if let Some(&id) = self.by_slots.get(&slots)
            && let Some(pattern) = self.patterns.get_mut(id)
        {
            if !pattern.owners.iter().any(|(o, _)| *o == owner) {
                pattern.owners.push((owner, source.to_owned()));
            }
            return;
        }
        let id = self.patterns.len();
        self.by_slots.insert(slots.clone(), id);
        let pattern = Pattern {
            slots,
            owners: vec![(owner, source.to_owned())],
        };
        if let Some(first) = pattern.slots.first() {
            for alt in &first.alts {
                if alt.stem {
                    if let Some(key) = stem_key(&alt.text) {
                        push_unique(self.stems.entry(key.to_owned()).or_default(), id);
                    }
                } else {
                    for plural in ["", "s", "x"] {
                        let word = format!("{}{plural}", alt.text);
                        push_unique(self.words.entry(word).or_default(), id);
                    }
                }
            }
        }
        self.patterns.push(pattern);
    }

    /// Every occurrence of every pattern in a reading of the prompt. `as_written` keeps to the
    /// words as typed (for advice): no disguised spelling, no joined pieces.
    fn find(&self, tokens: &[&Token], as_written: bool, hits: &mut Vec<Hit>) {
        let mut candidates: Vec<usize> = Vec::new();
        let spellings = |token: &Token| -> usize { if as_written { 1 } else { token.forms.len() } };
        for (i, token) in tokens.iter().enumerate() {
            candidates.clear();
            for form in token.forms.iter().take(spellings(token)) {
                if let Some(ids) = self.words.get(form.as_str()) {
                    candidates.extend_from_slice(ids);
                }
                if let Some(ids) = stem_key(form).and_then(|key| self.stems.get(key)) {
                    candidates.extend_from_slice(ids);
                }
            }
            candidates.sort_unstable();
            candidates.dedup();
            for &id in &candidates {
                let Some(pattern) = self.patterns.get(id) else {
                    continue;
                };
                let Some(rest) = tokens.get(i..i + pattern.slots.len()) else {
                    continue;
                };
                let disguise = pattern.slots.iter().zip(rest).try_fold(
                    Disguise::None,
                    |worst, (slot, token)| {
                        slot.matches(token, spellings(token)).map(|d| worst.max(d))
                    },
                );
                if let (Some(disguise), Some(first), Some(last)) =
                    (disguise, rest.first(), rest.last())
                {
                    hits.push(Hit {
                        pattern: id,
                        start: first.start,
                        end: last.end,
                        disguise,
                    });
                }
            }
        }
    }
}

/// An occurrence of a pattern, as a range of words of the prompt (`start..end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Hit {
    pattern: usize,
    start: usize,
    end: usize,
    disguise: Disguise,
}

impl Hit {
    fn covers(&self, other: &Hit) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// How many words lie between two occurrences (0 when they touch or overlap).
    fn gap(&self, other: &Hit) -> usize {
        other
            .start
            .saturating_sub(self.end)
            .max(self.start.saturating_sub(other.end))
    }
}

#[derive(Debug)]
struct Rule {
    category: Category,
    name: String,
    window: usize,
    has_with: bool,
    /// A disguised term (« j0int ») fires without its `with` partner.
    disguised_alone: bool,
}

/// The forbidden-prompt rules and the advice settings, ready to check prompts.
pub struct PromptRules {
    forbidden: Matcher,
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
            });
        }

        for term in &file.advice.formats {
            for slots in compiler.patterns("advice.formats", term)? {
                advice.add(slots, Owner::Format, term);
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
            advice,
            rules,
            style_names,
            max_words: file.advice.max_words,
        })
    }

    /// Checks a prompt: its forbidden category, if any, and advice. Never panics.
    pub fn check(&self, prompt: &str) -> PromptCheck {
        let text = Text::read(prompt);
        if text.words == 0 {
            return PromptCheck {
                category: None,
                advice: Vec::new(),
            };
        }
        let category = self
            .fired_rules(&text)
            .first()
            .and_then(|&(rule, _)| self.rules.get(rule))
            .map(|rule| rule.category);
        PromptCheck {
            category,
            advice: self.advice_for(&text),
        }
    }

    /// Why a prompt is refused: every rule that fires, the deciding one first. Empty when the
    /// prompt is allowed. Meant for logs and for staff tuning the rules file.
    pub fn explain(&self, prompt: &str) -> Vec<Explanation> {
        self.fired_rules(&Text::read(prompt))
            .into_iter()
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
            .collect()
    }

    /// The rules that fire on a prompt, with the term that made each fire, in file order: the
    /// first one decides the category.
    fn fired_rules(&self, text: &Text) -> Vec<(usize, usize)> {
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
            safe: bool,
        }
        let mut per_rule: Vec<RuleHits> =
            (0..self.rules.len()).map(|_| RuleHits::default()).collect();
        let mut global = Vec::new();
        for hit in hits {
            let Some(pattern) = self.forbidden.patterns.get(hit.pattern) else {
                continue;
            };
            for (owner, _) in &pattern.owners {
                match *owner {
                    Owner::GlobalException => global.push(hit),
                    Owner::Rule { rule, role } => {
                        let Some(bucket) = per_rule.get_mut(rule) else {
                            continue;
                        };
                        match role {
                            Role::Term => bucket.terms.push(hit),
                            Role::With => bucket.with.push(hit),
                            Role::Exception => bucket.exceptions.push(hit),
                            Role::SafeContext => bucket.safe = true,
                        }
                    }
                    Owner::Format | Owner::Style(_) => {}
                }
            }
        }

        let mut fired = Vec::new();
        for (index, (rule, found)) in self.rules.iter().zip(&per_rule).enumerate() {
            if found.safe {
                continue;
            }
            let excused = |hit: &Hit| {
                global
                    .iter()
                    .chain(&found.exceptions)
                    .any(|e| e.covers(hit))
            };
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
                fired.push((index, hit.pattern));
            }
        }
        fired
    }

    fn advice_for(&self, text: &Text) -> Vec<Advice> {
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
        if !hits
            .iter()
            .any(|h| owners(h).iter().any(|(o, _)| *o == Owner::Format))
        {
            advice.push(Advice::NoFormat);
        }

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

/// Turns the terms of the rules file into folded patterns.
struct Compiler<'a> {
    sets: &'a BTreeMap<String, Vec<String>>,
}

impl Compiler<'_> {
    /// A term is either `@set` alone (every entry of the set, each a phrase) or a phrase whose
    /// words may hold alternatives (`sale|sales`), stems (`drogu*`) and sets of words (`@sacre`).
    fn patterns(&self, place: &str, term: &str) -> Result<Vec<Vec<Slot>>, RulesError> {
        let trimmed = term.trim();
        if trimmed.is_empty() {
            return Err(RulesError::EmptyTerm {
                place: place.to_owned(),
            });
        }
        if let Some(name) = trimmed.strip_prefix('@')
            && !name.contains(|c: char| c.is_whitespace() || c == '|')
        {
            let entries = self.set(place, term, name)?;
            let inner = format!("{place}, set @{name}");
            // Entries of a set may use other sets as word alternatives (`contre la @fleaux`),
            // one level deep: those inner sets must hold single words without sets.
            return entries
                .iter()
                .map(|entry| self.slots(&inner, entry, true))
                .collect();
        }
        Ok(vec![self.slots(place, term, true)?])
    }

    fn set(&self, place: &str, term: &str, name: &str) -> Result<&Vec<String>, RulesError> {
        self.sets.get(name).ok_or_else(|| RulesError::UnknownSet {
            place: place.to_owned(),
            term: term.to_owned(),
            set: name.to_owned(),
        })
    }

    fn slots(&self, place: &str, term: &str, sets_allowed: bool) -> Result<Vec<Slot>, RulesError> {
        let bad = |reason| RulesError::BadTerm {
            place: place.to_owned(),
            term: term.to_owned(),
            reason,
        };
        let mut slots = Vec::new();
        for raw in split_term(term) {
            let mut alts = Vec::new();
            for alt in raw.split('|') {
                if let Some(name) = alt.strip_prefix('@') {
                    if !sets_allowed {
                        return Err(bad(
                            "a set used as a word alternative cannot refer to another set",
                        ));
                    }
                    for entry in self.set(place, term, name)? {
                        let mut inner = self.slots(place, entry, false)?;
                        match (inner.pop(), inner.is_empty()) {
                            (Some(mut slot), true) => alts.append(&mut slot.alts),
                            _ => {
                                return Err(bad(
                                    "a set used inside a phrase must hold single words",
                                ));
                            }
                        }
                    }
                    continue;
                }
                let (text, stem) = match alt.strip_suffix('*') {
                    Some(text) => (text, true),
                    None => (alt, false),
                };
                if text.is_empty() {
                    return Err(bad("empty alternative around | or *"));
                }
                if text.contains(['*', '@', '|']) {
                    return Err(bad("* only ends a stem and @ only starts a set name"));
                }
                if stem && text.chars().count() < MIN_STEM_CHARS {
                    return Err(bad("a stem needs at least 3 letters"));
                }
                alts.push(Alt {
                    text: text.to_owned(),
                    stem,
                });
            }
            slots.push(Slot { alts });
        }
        if slots.is_empty() {
            return Err(RulesError::EmptyTerm {
                place: place.to_owned(),
            });
        }
        Ok(slots)
    }
}

/// Splits a term into folded words, keeping the rule syntax (`*`, `|`, `@`) inside words; set
/// names after `@` are kept as written.
fn split_term(term: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_set_name = false;
    for c in term.chars() {
        if in_set_name && (c.is_alphanumeric() || c == '_' || c == '-') {
            current.push(c);
            continue;
        }
        in_set_name = false;
        match c {
            '*' | '|' => current.push(c),
            '@' => {
                current.push(c);
                in_set_name = true;
            }
            _ => match classify(c) {
                Class::Ignored => {}
                Class::Word => fold_into(c, &mut current),
                Class::Space | Class::Apostrophe | Class::Punct => {
                    if !current.is_empty() {
                        words.push(std::mem::take(&mut current));
                    }
                }
            },
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

// ---------------------------------------------------------------------------------------------
// Reading a prompt.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Word,
    Space,
    Apostrophe,
    Punct,
    /// Invisible: zero-width characters, bidi controls, combining marks. Dropped without
    /// cutting the word, so « dro\u{200B}gue » and « drógue » read as `drogue`.
    Ignored,
}

fn classify(c: char) -> Class {
    if c.is_ascii_alphanumeric() {
        return Class::Word;
    }
    match c {
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{00AD}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}' => Class::Ignored,
        '\'' | '’' | '‘' | 'ʼ' | 'ʻ' | '`' | '´' => Class::Apostrophe,
        // Leetspeak symbols are letters in disguise (« $exe », « dr@gue »): kept in the word.
        '@' | '$' => Class::Word,
        c if c.is_whitespace() => Class::Space,
        c if c.is_alphanumeric() => Class::Word,
        _ => Class::Punct,
    }
}

/// Appends the folded form of a word character: lower case, no accent, plain Latin.
fn fold_into(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    for lower in c.to_lowercase() {
        if classify(lower) == Class::Ignored {
            continue;
        }
        match fold_letter(lower) {
            Folded::One(f) => out.push(f),
            Folded::Two(a, b) => {
                out.push(a);
                out.push(b);
            }
        }
    }
}

enum Folded {
    One(char),
    Two(char, char),
}

fn fold_letter(c: char) -> Folded {
    use Folded::{One, Two};
    let plain = match c {
        'a'..='z' | '0'..='9' => c,
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ª' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' | 'đ' | 'ð' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' | 'ħ' => 'h',
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'º' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => 's',
        'ţ' | 'ť' | 'ŧ' | 'ț' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        'œ' => return Two('o', 'e'),
        'æ' => return Two('a', 'e'),
        'ß' => return Two('s', 's'),
        'þ' => return Two('t', 'h'),
        // Look-alike letters used to dodge filters (Cyrillic « сеxе », Greek « ο »).
        'а' => 'a',
        'в' => 'b',
        'е' | 'ё' => 'e',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'т' => 't',
        'у' => 'y',
        'х' => 'x',
        'і' => 'i',
        'ѕ' => 's',
        'ј' => 'j',
        'α' => 'a',
        'ε' => 'e',
        'ι' => 'i',
        'κ' => 'k',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        // Fullwidth forms (to_lowercase has already run).
        '\u{FF10}'..='\u{FF19}' => shift(c, 0xFF10, '0'),
        '\u{FF41}'..='\u{FF5A}' => shift(c, 0xFF41, 'a'),
        // Circled letters.
        '\u{24B6}'..='\u{24CF}' => shift(c, 0x24B6, 'a'),
        '\u{24D0}'..='\u{24E9}' => shift(c, 0x24D0, 'a'),
        // Mathematical alphanumerics (bold, italic, script…): blocks of 26 capitals then 26
        // small letters, then blocks of 10 digits.
        '\u{1D400}'..='\u{1D6A3}' => {
            let offset = (u32::from(c) - 0x1D400) % 52;
            char::from_u32(u32::from('a') + offset % 26).unwrap_or(c)
        }
        '\u{1D7CE}'..='\u{1D7FF}' => shift_mod(c, 0x1D7CE, 10, '0'),
        _ => c,
    };
    One(plain)
}

fn shift(c: char, base: u32, to: char) -> char {
    char::from_u32(u32::from(to) + (u32::from(c) - base)).unwrap_or(c)
}

fn shift_mod(c: char, base: u32, modulo: u32, to: char) -> char {
    char::from_u32(u32::from(to) + (u32::from(c) - base) % modulo).unwrap_or(c)
}

/// Leetspeak digits and symbols read as letters. `1` stands for `i` or `l`.
fn unleet(c: char, one: char) -> char {
    match c {
        '0' => 'o',
        '1' => one,
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        '9' => 'g',
        _ => c,
    }
}

/// A word as the matcher sees it: its spellings and the range of prompt words it stands for.
#[derive(Debug, Clone)]
struct Token {
    /// The spellings, as written first.
    forms: Vec<String>,
    start: usize,
    end: usize,
    /// Pieces joined back together (« drog-ue »): every spelling is an evasion.
    joined: bool,
}

/// A word as written, with how it was separated from the previous one.
#[derive(Debug)]
struct RawWord {
    text: String,
    after: Class,
    has_letter: bool,
    has_leet: bool,
}

impl RawWord {
    fn len(&self) -> usize {
        self.text.chars().count()
    }
}

/// A prompt read into words (each with its spellings, the one as written first) and, when words
/// were cut up, the pieces joined back (`chains`).
struct Text {
    words: usize,
    tokens: Vec<Token>,
    chains: Vec<Token>,
}

impl Text {
    fn read(prompt: &str) -> Self {
        let raw = split_words(prompt);
        let chains = join_pieces(&raw);
        let tokens = raw
            .into_iter()
            .enumerate()
            .map(|(i, w)| Token {
                forms: spellings(w.text, w.has_letter && w.has_leet),
                start: i,
                end: i + 1,
                joined: false,
            })
            .collect();
        Self {
            words: count_words(prompt),
            tokens,
            chains,
        }
    }

    /// The words as read, then, if some were joined, the same with each chain in place of its
    /// pieces.
    fn readings(&self) -> Vec<Vec<&Token>> {
        let mut readings = vec![self.tokens.iter().collect::<Vec<_>>()];
        if !self.chains.is_empty() {
            let mut joined = Vec::with_capacity(self.tokens.len());
            let mut chains = self.chains.iter().peekable();
            let mut i = 0;
            while let Some(token) = self.tokens.get(i) {
                match chains.next_if(|c| c.start == i) {
                    Some(chain) => {
                        joined.push(chain);
                        i = chain.end.max(i + 1);
                    }
                    None => {
                        joined.push(token);
                        i += 1;
                    }
                }
            }
            readings.push(joined);
        }
        readings
    }
}

fn split_words(prompt: &str) -> Vec<RawWord> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut gap = Class::Space;
    let (mut has_letter, mut has_leet) = (false, false);
    for c in prompt.chars() {
        match classify(c) {
            Class::Ignored => {}
            Class::Word => {
                if c.is_alphabetic() {
                    has_letter = true;
                } else {
                    has_leet = true;
                }
                fold_into(c, &mut current);
            }
            class => {
                if !current.is_empty() {
                    words.push(RawWord {
                        text: std::mem::take(&mut current),
                        after: gap,
                        has_letter,
                        has_leet,
                    });
                    (has_letter, has_leet) = (false, false);
                    gap = class;
                } else if rank(class) > rank(gap) {
                    gap = class;
                }
            }
        }
    }
    if !current.is_empty() {
        words.push(RawWord {
            text: current,
            after: gap,
            has_letter,
            has_leet,
        });
    }
    words
}

/// Between two words, a space outweighs an apostrophe, which outweighs other punctuation.
fn rank(class: Class) -> u8 {
    match class {
        Class::Space => 3,
        Class::Apostrophe => 2,
        Class::Punct => 1,
        Class::Word | Class::Ignored => 0,
    }
}

/// Words as a person counts them: whitespace-separated chunks holding a letter or a digit.
fn count_words(prompt: &str) -> usize {
    prompt
        .split(char::is_whitespace)
        .filter(|chunk| chunk.chars().any(char::is_alphanumeric))
        .count()
}

/// The spellings a word may stand for: as written, de-leeted, and with stretched letters
/// (« seeexy ») shrunk to one or two.
fn spellings(text: String, leet: bool) -> Vec<String> {
    if !leet && !has_stretch(&text) {
        return vec![text];
    }
    let mut forms = vec![text.clone()];
    if leet {
        forms.push(text.chars().map(|c| unleet(c, 'i')).collect());
        if text.contains('1') {
            forms.push(text.chars().map(|c| unleet(c, 'l')).collect());
        }
    }
    let mut shrunk = Vec::new();
    for form in &forms {
        if has_stretch(form) {
            shrunk.push(shrink(form, 1));
            shrunk.push(shrink(form, 2));
        }
    }
    forms.append(&mut shrunk);
    dedup_keeping_first(&mut forms);
    forms
}

/// Removes repeated spellings, keeping the order (the first is the word as written). A word has
/// a handful of spellings, so a quadratic scan beats hashing.
fn dedup_keeping_first(forms: &mut Vec<String>) {
    let mut kept: Vec<String> = Vec::with_capacity(forms.len());
    for form in forms.drain(..) {
        if !kept.contains(&form) {
            kept.push(form);
        }
    }
    *forms = kept;
}

/// How many pieces a chain may shed at each end to reveal a word.
const MAX_TRIM: usize = 2;

/// The spellings of a chain of pieces joined together. A run of single letters often runs into
/// real short words (« s e x y d'une », « à d r o g u e »), so the chain is also spelled without
/// up to two pieces at each end. Trimming only the ends keeps `check` linear in the prompt.
fn chain_spellings(pieces: &[RawWord]) -> Vec<String> {
    let any_letter = pieces.iter().any(|w| w.has_letter);
    let leet = any_letter && pieces.iter().any(|w| w.has_leet);
    let join = |run: &[RawWord]| run.iter().map(|w| w.text.as_str()).collect::<String>();
    let n = pieces.len();
    let mut forms = Vec::new();
    for start in 0..=MAX_TRIM.min(n) {
        for end in (n.saturating_sub(MAX_TRIM)..=n).rev() {
            if let Some(run) = pieces.get(start..end)
                && run.len() >= 2
            {
                forms.append(&mut spellings(join(run), leet));
            }
        }
    }
    dedup_keeping_first(&mut forms);
    forms
}

fn has_stretch(text: &str) -> bool {
    let mut run = 0;
    let mut previous = None;
    for c in text.chars() {
        run = if Some(c) == previous { run + 1 } else { 1 };
        if run >= 3 {
            return true;
        }
        previous = Some(c);
    }
    false
}

fn shrink(text: &str, keep: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = 0;
    let mut previous = None;
    for c in text.chars() {
        run = if Some(c) == previous { run + 1 } else { 1 };
        previous = Some(c);
        if run <= keep {
            out.push(c);
        }
    }
    out
}

/// Words cut by punctuation (« drog-ue », « d.r.o.g.u.e ») or spelled out letter by letter
/// (« d r o g u e ») joined back, in order. An apostrophe never joins: « l'ivresse » must not
/// become `livresse`.
fn join_pieces(raw: &[RawWord]) -> Vec<Token> {
    // Runs of at least three single characters join whatever separates them.
    let mut in_letter_run = vec![false; raw.len()];
    let mut i = 0;
    while i < raw.len() {
        let mut j = i;
        while raw.get(j).is_some_and(|w| w.len() == 1) {
            j += 1;
        }
        if j - i >= 3 {
            in_letter_run[i..j].iter_mut().for_each(|b| *b = true);
        }
        i = j.max(i + 1);
    }
    // Spaces join single letters (« d r o g u e ») but not pieces already joined by
    // punctuation: « b-i-n-g-e d-r-i-n-k » is two words, « s.e.x.y d'une » stops before `d`.
    let punct_after = |k: usize| raw.get(k).is_some_and(|w| w.after == Class::Punct);
    let punct_linked = |k: usize| punct_after(k) || punct_after(k + 1);
    let linked = |k: usize| {
        k > 0
            && (raw[k].after == Class::Punct
                || (in_letter_run[k - 1]
                    && in_letter_run[k]
                    && !punct_linked(k - 1)
                    && !punct_linked(k)))
    };

    let mut chains = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let mut j = i + 1;
        while j < raw.len() && linked(j) {
            j += 1;
        }
        if j - i >= 2 {
            chains.push(Token {
                forms: chain_spellings(&raw[i..j]),
                start: i,
                end: j,
                joined: true,
            });
        }
        i = j;
    }
    chains
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = include_str!("../../content/prompt-rules.toml");
    const CORPUS: &str = include_str!("../../tests/data/prompts.tsv");

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
            let rules =
                PromptRules::from_toml(&text(first, second)).unwrap_or_else(|e| panic!("{e}"));
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
}
