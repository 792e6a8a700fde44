//! Folding text for comparison: lower case, no accents or ligatures (« Œuvre » → `oeuvre`),
//! invisible characters dropped, a few look-alike letters (Cyrillic, Greek, fullwidth,
//! mathematical bold) mapped to plain Latin. The one folding of the portal: guides and their
//! search (`content::text::fold`), password checks, and the prompt checker, which folds word by
//! word with `fold_into`.

/// Lowercase without diacritics: « Crédits Épuisés » → « credits epuises ». Other characters
/// (spaces, punctuation) are kept, but for the typographic apostrophe, which becomes `'`.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '’' {
            out.push('\'');
        } else {
            fold_into(c, &mut out);
        }
    }
    out
}

/// Characters that change nothing a reader sees: combining marks (a decomposed « é » is `e` and
/// U+0301), zero-width characters, bidi controls, variation selectors, the soft hyphen.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
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
            | '\u{FEFF}'
    )
}

/// Appends the folded form of a word character: lower case, no accent, plain Latin.
pub fn fold_into(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    for lower in c.to_lowercase() {
        if is_invisible(lower) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_removes_accents_case_and_ligatures() {
        assert_eq!(fold("Crédits ÉPUISÉS, cœur"), "credits epuises, coeur");
        assert_eq!(fold("Straße Ægée Noël"), "strasse aegee noel");
    }

    #[test]
    fn folding_keeps_spaces_and_punctuation_and_unifies_apostrophes() {
        assert_eq!(fold("L’Église d'Ars : 4K ?"), "l'eglise d'ars : 4k ?");
    }

    #[test]
    fn invisible_characters_and_look_alikes_fold_away() {
        assert_eq!(fold("dro\u{301}gue dro\u{200B}gue"), "drogue drogue");
        assert_eq!(fold("ｄｒｏｇｕｅ 𝐝𝐫𝐨𝐠𝐮𝐞"), "drogue drogue");
        assert_eq!(fold("сеxе"), "cexe");
    }

    #[test]
    fn one_character_folds_into_a_buffer() {
        let mut out = String::new();
        for c in "ÉŒ".chars() {
            fold_into(c, &mut out);
        }
        assert_eq!(out, "eoe");
    }
}
