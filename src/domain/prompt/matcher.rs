//! The rules, folded once at load, and the matcher that finds their terms in a prompt's
//! tokens.

use super::*;

/// One way to spell a word in a term: the whole word (plus a plural in -s or -x) or a stem.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Alt {
    pub(super) text: String,
    pub(super) stem: bool,
}

impl Alt {
    pub(super) fn matches(&self, form: &str) -> bool {
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
pub(super) struct Slot {
    pub(super) alts: Vec<Alt>,
}

impl Slot {
    /// Whether the word matches, and if so whether only a disguised spelling of it did.
    pub(super) fn matches(&self, token: &Token, spellings: usize) -> Option<Disguise> {
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
pub(super) enum Disguise {
    None,
    /// Leetspeak, stretched letters or a word cut up: nobody writes « j0int » for a pipe joint,
    /// so rules with `disguised_alone` let such a term fire without its `with` partner.
    Evasion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Term,
    With,
    Exception,
    SafeContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    Rule {
        rule: usize,
        role: Role,
    },
    GlobalException,
    /// A church-safe context: a commandment or a prayer that names a sin to reject it.
    ChurchSafe,
    /// A church story or prayer context (the Passion, a martyr, a psalm): the model must be
    /// surer before a refusal stands.
    ChurchContext,
    Format,
    Voice,
    Style(usize),
}

/// A distinct phrase and everything that uses it: a set such as `@prevention` appears in many
/// rules but is matched once.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    pub(super) slots: Vec<Slot>,
    /// Who uses the phrase, with the term as written in the rules file (for `explain`).
    pub(super) owners: Vec<(Owner, String)>,
}

/// Patterns indexed by their first word, so that `check` only tries the few patterns that can
/// start at each word of the prompt: whole words (and their plurals) by the word, stems by their
/// first three letters.
#[derive(Default)]
pub(super) struct Matcher {
    pub(super) patterns: Vec<Pattern>,
    pub(super) words: HashMap<String, Vec<usize>>,
    pub(super) stems: HashMap<String, Vec<usize>>,
    pub(super) by_slots: HashMap<Vec<Slot>, usize>,
}

/// The first `MIN_STEM_CHARS` characters of a word, if it has that many.
pub(super) fn stem_key(word: &str) -> Option<&str> {
    let end = word
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .nth(MIN_STEM_CHARS - 1)?;
    word.get(..end)
}

pub(super) fn push_unique(list: &mut Vec<usize>, id: usize) {
    if list.last() != Some(&id) {
        list.push(id);
    }
}

impl Matcher {
    pub(super) fn add(&mut self, slots: Vec<Slot>, owner: Owner, source: &str) {
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

    /// How many patterns `find` tries on a reading (the candidates its index gives for each
    /// word), for the test that bounds the work of a check.
    #[cfg(test)]
    pub(super) fn tried(&self, tokens: &[&Token]) -> usize {
        let mut candidates: Vec<usize> = Vec::new();
        let mut tried = 0;
        for token in tokens {
            self.candidates(token, token.forms.len(), &mut candidates);
            tried += candidates.len();
        }
        tried
    }

    /// The patterns that may start at a word, as the index gives them for its first `spellings`
    /// spellings, sorted and without duplicates.
    fn candidates(&self, token: &Token, spellings: usize, candidates: &mut Vec<usize>) {
        candidates.clear();
        for form in token.forms.iter().take(spellings) {
            if let Some(ids) = self.words.get(form.as_str()) {
                candidates.extend_from_slice(ids);
            }
            if let Some(ids) = stem_key(form).and_then(|key| self.stems.get(key)) {
                candidates.extend_from_slice(ids);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
    }

    /// Every occurrence of every pattern in a reading of the prompt. `as_written` keeps to the
    /// words as typed (for advice): no disguised spelling, no joined pieces.
    pub(super) fn find(&self, tokens: &[&Token], as_written: bool, hits: &mut Vec<Hit>) {
        let mut candidates: Vec<usize> = Vec::new();
        let spellings = |token: &Token| -> usize { if as_written { 1 } else { token.forms.len() } };
        for (i, token) in tokens.iter().enumerate() {
            self.candidates(token, spellings(token), &mut candidates);
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
pub(super) struct Hit {
    pub(super) pattern: usize,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) disguise: Disguise,
}

impl Hit {
    pub(super) fn covers(&self, other: &Hit) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// How many words lie between two occurrences (0 when they touch or overlap).
    pub(super) fn gap(&self, other: &Hit) -> usize {
        other
            .start
            .saturating_sub(self.end)
            .max(self.start.saturating_sub(other.end))
    }
}

#[derive(Debug)]
pub(super) struct Rule {
    pub(super) category: Category,
    pub(super) name: String,
    pub(super) window: usize,
    pub(super) has_with: bool,
    /// A disguised term (« j0int ») fires without its `with` partner.
    pub(super) disguised_alone: bool,
    /// A church story context does not soften this rule (`never_in_stories`).
    pub(super) never_in_stories: bool,
}
