//! French formats: « 24 novembre 2026 », « 4 décembre 2026 à 23 h 49 » (Paris time),
//! « 1 234,50 € », « 1 234 ». Pure functions.

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

/// The wall-clock time in Europe/Paris: UTC+1, and UTC+2 from the last Sunday of March to the
/// last Sunday of October, both at 01:00 UTC (the European Union's rule, France's since 1996).
pub fn paris(at: time::OffsetDateTime) -> time::PrimitiveDateTime {
    let utc = at.to_offset(time::UtcOffset::UTC);
    let last_sunday_at_one = |month| {
        let last = time::Date::from_calendar_date(utc.year(), month, 31)
            .expect("March and October have 31 days");
        let back = i64::from(last.weekday().number_days_from_sunday());
        time::PrimitiveDateTime::new(last - time::Duration::days(back), time::macros::time!(1:00))
            .assume_utc()
    };
    let summer = utc >= last_sunday_at_one(time::Month::March)
        && utc < last_sunday_at_one(time::Month::October);
    let hours = if summer { 2 } else { 1 };
    let local = utc + time::Duration::hours(hours);
    time::PrimitiveDateTime::new(local.date(), local.time())
}

/// « 4 décembre 2026 à 23 h 49 », in Paris time.
pub fn moment_fr(at: time::OffsetDateTime) -> String {
    let local = paris(at);
    format!(
        "{} à {}{NBSP}h{NBSP}{:02}",
        date_fr(local.date()),
        local.hour(),
        local.minute()
    )
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
    fn paris_time_follows_the_european_summer_time() {
        use time::macros::datetime;
        // Winter: UTC+1; a launch at 23:30 UTC is already the next day in Paris.
        assert_eq!(
            moment_fr(datetime!(2026-12-04 23:30 UTC)),
            "5\u{a0}décembre 2026 à 0\u{a0}h\u{a0}30"
        );
        // Summer: UTC+2, from 01:00 UTC on the last Sunday of March (29 March 2026)…
        assert_eq!(
            paris(datetime!(2026-03-29 00:59 UTC)),
            datetime!(2026-03-29 01:59)
        );
        assert_eq!(
            paris(datetime!(2026-03-29 01:00 UTC)),
            datetime!(2026-03-29 03:00)
        );
        // … to 01:00 UTC on the last Sunday of October (25 October 2026).
        assert_eq!(
            paris(datetime!(2026-10-25 00:59 UTC)),
            datetime!(2026-10-25 02:59)
        );
        assert_eq!(
            paris(datetime!(2026-10-25 01:00 UTC)),
            datetime!(2026-10-25 02:00)
        );
        // Any offset in, the same Paris time out.
        assert_eq!(
            moment_fr(datetime!(2026-07-14 12:05 +05:00)),
            "14\u{a0}juillet 2026 à 9\u{a0}h\u{a0}05"
        );
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
