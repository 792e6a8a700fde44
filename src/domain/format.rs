//! French formats: « 24 novembre 2026 », « 1 234,50 € », « 1 234 ». Pure functions.

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// No-break spaces French typography needs: before € and between thousands (narrow).
pub const NBSP: char = '\u{a0}';
pub const NNBSP: char = '\u{202f}';

pub fn date_fr(date: time::Date) -> String {
    let day = date.day();
    let month = MONTHS[usize::from(u8::from(date.month())) - 1];
    if day == 1 {
        format!("1er{NBSP}{month} {}", date.year())
    } else {
        format!("{day}{NBSP}{month} {}", date.year())
    }
}

pub fn thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + 8);
    if value < 0 {
        out.push('−');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(NNBSP);
        }
        out.push(c);
    }
    out
}

pub fn euros(cents: i64) -> String {
    let sign = if cents < 0 { "−" } else { "" };
    let abs = cents.unsigned_abs();
    let units = i64::try_from(abs / 100).unwrap_or(i64::MAX);
    format!("{sign}{},{:02}{NBSP}€", thousands(units), abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn dates_are_written_the_french_way() {
        assert_eq!(date_fr(date!(2026 - 11 - 24)), "24\u{a0}novembre 2026");
        assert_eq!(date_fr(date!(2026 - 08 - 01)), "1er\u{a0}août 2026");
    }

    #[test]
    fn amounts_have_a_comma_and_a_no_break_space_before_the_euro_sign() {
        assert_eq!(euros(2900), "29,00\u{a0}€");
        assert_eq!(euros(5), "0,05\u{a0}€");
        assert_eq!(euros(12_345_678), "123\u{202f}456,78\u{a0}€");
        assert_eq!(euros(-1200), "−12,00\u{a0}€");
    }

    #[test]
    fn thousands_are_grouped_with_a_narrow_no_break_space() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1\u{202f}000");
        assert_eq!(thousands(1_234_567), "1\u{202f}234\u{202f}567");
    }
}
