//! Reading a prompt: characters classified, words folded (`domain::fold`), and the second
//! readings and spellings that see through evasions.

use crate::domain::fold::{fold_into, is_invisible};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Word,
    Space,
    Apostrophe,
    Punct,
    /// Invisible: zero-width characters, bidi controls, combining marks. Dropped without
    /// cutting the word, so « dro\u{200B}gue » and « drógue » read as `drogue`.
    Ignored,
}

pub(super) fn classify(c: char) -> Class {
    if c.is_ascii_alphanumeric() {
        return Class::Word;
    }
    if is_invisible(c) {
        return Class::Ignored;
    }
    match c {
        '\'' | '’' | '‘' | 'ʼ' | 'ʻ' | '`' | '´' => Class::Apostrophe,
        // Leetspeak symbols are letters in disguise (« $exe », « dr@gue »): kept in the word.
        '@' | '$' => Class::Word,
        c if c.is_whitespace() => Class::Space,
        c if c.is_alphanumeric() => Class::Word,
        _ => Class::Punct,
    }
}

/// Leetspeak digits and symbols read as letters. `1` stands for `i` or `l`.
pub(super) fn unleet(c: char, one: char) -> char {
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
pub(super) struct Token {
    /// The spellings, as written first.
    pub(super) forms: Vec<String>,
    pub(super) start: usize,
    pub(super) end: usize,
    /// Pieces joined back together (« drog-ue »): every spelling is an evasion.
    pub(super) joined: bool,
}

/// A word as written, with how it was separated from the previous one.
#[derive(Debug)]
pub(super) struct RawWord {
    pub(super) text: String,
    pub(super) after: Class,
    pub(super) has_letter: bool,
    pub(super) has_leet: bool,
}

impl RawWord {
    pub(super) fn len(&self) -> usize {
        self.text.chars().count()
    }
}

/// A prompt read into words (each with its spellings, the one as written first) and, when words
/// were cut up, the pieces joined back (`chains`).
pub(super) struct Text {
    pub(super) words: usize,
    pub(super) tokens: Vec<Token>,
    pub(super) chains: Vec<Token>,
}

impl Text {
    pub(super) fn read(prompt: &str) -> Self {
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
    pub(super) fn readings(&self) -> Vec<Vec<&Token>> {
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

pub(super) fn split_words(prompt: &str) -> Vec<RawWord> {
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
pub(super) fn rank(class: Class) -> u8 {
    match class {
        Class::Space => 3,
        Class::Apostrophe => 2,
        Class::Punct => 1,
        Class::Word | Class::Ignored => 0,
    }
}

/// Words as a person counts them: whitespace-separated chunks holding a letter or a digit.
pub(super) fn count_words(prompt: &str) -> usize {
    prompt
        .split(char::is_whitespace)
        .filter(|chunk| chunk.chars().any(char::is_alphanumeric))
        .count()
}

/// The spellings a word may stand for: as written, de-leeted, and with stretched letters
/// (« seeexy ») shrunk to one or two.
pub(super) fn spellings(text: String, leet: bool) -> Vec<String> {
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
pub(super) fn dedup_keeping_first(forms: &mut Vec<String>) {
    let mut kept: Vec<String> = Vec::with_capacity(forms.len());
    for form in forms.drain(..) {
        if !kept.contains(&form) {
            kept.push(form);
        }
    }
    *forms = kept;
}

/// How many pieces a chain may shed at each end to reveal a word.
pub(super) const MAX_TRIM: usize = 2;

/// The spellings of a chain of pieces joined together. A run of single letters often runs into
/// real short words (« s e x y d'une », « à d r o g u e »), so the chain is also spelled without
/// up to two pieces at each end. Trimming only the ends keeps `check` linear in the prompt.
pub(super) fn chain_spellings(pieces: &[RawWord]) -> Vec<String> {
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

pub(super) fn has_stretch(text: &str) -> bool {
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

pub(super) fn shrink(text: &str, keep: usize) -> String {
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
pub(super) fn join_pieces(raw: &[RawWord]) -> Vec<Token> {
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
