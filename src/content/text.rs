//! French text helpers shared by rendering and search: folding, slugs, typography.

/// Lowercase without diacritics: « Crédits Épuisés » → « credits epuises ». The portal's one
/// folding, shared with the prompt checker (see `domain::fold`).
pub use crate::domain::fold::fold;

/// An anchor id from a heading: « Les crédits expirent-ils ? » → « les-credits-expirent-ils ».
pub fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for c in fold(text).chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// French typography on text the reader sees: a narrow no-break space before ; : ! ? » and
/// after «, a no-break space between an amount and €. Only spaces already there are replaced,
/// so URLs and times (10:30) are left alone.
pub fn typography(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next = chars.get(i + 1).copied();
            let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
            if matches!(next, Some(';' | ':' | '!' | '?' | '»')) || prev == Some('«') {
                out.push('\u{202f}');
                continue;
            }
            if next == Some('€') && prev.is_some_and(|p| p.is_ascii_digit()) {
                out.push('\u{a0}');
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Text as typed or pasted into a form, made safe to store and show: the line breaks of other
/// programs (vertical tab from slides, form feed from PDFs, NEL, Unicode line and paragraph
/// separators) become `\n`; other control characters are dropped; tabs and CR/LF are kept.
pub fn pasted(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' => Some(c),
            '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => Some('\n'),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_text_keeps_its_lines_and_loses_control_characters() {
        assert_eq!(
            pasted("Programme\u{b}Accueil\u{c}Fin\u{2028}Merci\u{1}\u{7f} !\r\n\tOui"),
            "Programme\nAccueil\nFin\nMerci !\r\n\tOui"
        );
    }

    #[test]
    fn folding_removes_accents_and_case() {
        assert_eq!(fold("Crédits ÉPUISÉS, cœur"), "credits epuises, coeur");
    }

    #[test]
    fn slugs_are_ascii_and_dashed() {
        assert_eq!(
            slugify("Les crédits expirent-ils ?"),
            "les-credits-expirent-ils"
        );
        assert_eq!(slugify("  4K & HD  "), "4k-hd");
    }

    #[test]
    fn typography_puts_no_break_spaces_where_french_wants_them() {
        assert_eq!(
            typography("Note : « oui » ? 29,00 €"),
            "Note\u{202f}: «\u{202f}oui\u{202f}»\u{202f}? 29,00\u{a0}€"
        );
        assert_eq!(typography("https://x.fr à 10:30"), "https://x.fr à 10:30");
    }
}
