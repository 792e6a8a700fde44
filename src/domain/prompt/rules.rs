//! The rules file as staff write it (`content/prompt-rules.toml`), and its compiler into
//! folded patterns.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;
use crate::domain::fold::fold_into;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesFile {
    pub(super) advice: AdviceFile,
    #[serde(default)]
    pub(super) sets: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(super) global: GlobalFile,
    #[serde(default)]
    pub(super) church: ChurchFile,
    #[serde(default)]
    pub(super) rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdviceFile {
    pub(super) max_words: usize,
    pub(super) formats: Vec<String>,
    /// Words asking for a voice, a song or lyrics: music is instrumental.
    #[serde(default)]
    pub(super) voices: Vec<String>,
    pub(super) styles: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct GlobalFile {
    #[serde(default)]
    pub(super) exceptions: Vec<String>,
}

/// Church-safe contexts: phrases of scripture and prayer that name a sin in order to reject it
/// (« Tu ne tueras point »). Where one appears the rules are set aside and the model decides.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ChurchFile {
    #[serde(default)]
    pub(super) safe_contexts: Vec<String>,
    /// Church stories and prayer (the Passion, martyrs, psalms, a stained-glass window): the
    /// rules still apply, but a refusal needs the model's `story_*` thresholds.
    #[serde(default)]
    pub(super) contexts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleFile {
    pub(super) category: String,
    pub(super) name: String,
    pub(super) terms: Vec<String>,
    #[serde(default)]
    pub(super) with: Vec<String>,
    #[serde(default)]
    pub(super) window: usize,
    #[serde(default)]
    pub(super) disguised_alone: bool,
    /// Terms no church story tells (pornography, a joint, a hate symbol): a church story
    /// context (`[church].contexts`) does not soften the rule.
    #[serde(default)]
    pub(super) never_in_stories: bool,
    #[serde(default)]
    pub(super) exceptions: Vec<String>,
    #[serde(default)]
    pub(super) safe_contexts: Vec<String>,
}

/// Turns the terms of the rules file into folded patterns.
pub(super) struct Compiler<'a> {
    pub(super) sets: &'a BTreeMap<String, Vec<String>>,
}

impl Compiler<'_> {
    /// A term is either `@set` alone (every entry of the set, each a phrase) or a phrase whose
    /// words may hold alternatives (`sale|sales`), stems (`drogu*`) and sets of words (`@sacre`).
    pub(super) fn patterns(&self, place: &str, term: &str) -> Result<Vec<Vec<Slot>>, RulesError> {
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

    pub(super) fn set(
        &self,
        place: &str,
        term: &str,
        name: &str,
    ) -> Result<&Vec<String>, RulesError> {
        self.sets.get(name).ok_or_else(|| RulesError::UnknownSet {
            place: place.to_owned(),
            term: term.to_owned(),
            set: name.to_owned(),
        })
    }

    pub(super) fn slots(
        &self,
        place: &str,
        term: &str,
        sets_allowed: bool,
    ) -> Result<Vec<Slot>, RulesError> {
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
pub(super) fn split_term(term: &str) -> Vec<String> {
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
