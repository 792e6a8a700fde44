//! Text measured with the embedded fonts: shaping (the same shaper as krilla's own, so a width
//! measured here is the width drawn), right alignment and line wrapping. Pure: the only data
//! read is the fonts compiled into the binary.

use krilla::text::{GlyphId, KrillaGlyph};

/// DejaVu Sans, committed under `assets/fonts/` with its licence: the PDF never depends on the
/// fonts of the machine it is made on.
static REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// One embedded face: krilla's handle (for drawing and subsetting) and rustybuzz's (for shaping).
pub struct Face {
    pub font: krilla::text::Font,
    shaper: rustybuzz::Face<'static>,
    units_per_em: f32,
}

impl Face {
    fn load(data: &'static [u8]) -> Option<Self> {
        let font = krilla::text::Font::new(data.into(), 0)?;
        let shaper = rustybuzz::Face::from_slice(data, 0)?;
        let units_per_em = f32::from(u16::try_from(shaper.units_per_em()).ok()?);
        Some(Self {
            font,
            shaper,
            units_per_em,
        })
    }

    /// The glyphs of `text`, left to right, with advances in ems (as krilla wants them).
    pub fn shape(&self, text: &str) -> Vec<KrillaGlyph> {
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.set_direction(rustybuzz::Direction::LeftToRight);
        buffer.guess_segment_properties();
        let output = rustybuzz::shape(&self.shaper, &[], buffer);
        let infos = output.glyph_infos();
        let positions = output.glyph_positions();
        let em = self.units_per_em;
        (0..infos.len())
            .map(|i| {
                let start = infos[i].cluster as usize;
                // A cluster ends where the next one starts (left to right).
                let end = infos[i + 1..]
                    .iter()
                    .map(|next| next.cluster as usize)
                    .find(|&c| c != start)
                    .unwrap_or(text.len());
                let p = positions[i];
                KrillaGlyph::new(
                    GlyphId::new(infos[i].glyph_id),
                    p.x_advance as f32 / em,
                    p.x_offset as f32 / em,
                    p.y_offset as f32 / em,
                    p.y_advance as f32 / em,
                    start..end,
                    None,
                )
            })
            .collect()
    }

    /// The width of `text` at `size` points, kerning included.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        self.shape(text).iter().map(|g| g.x_advance).sum::<f32>() * size
    }
}

/// The two faces a document uses.
pub struct Fonts {
    pub regular: Face,
    pub bold: Face,
}

impl Fonts {
    /// `None` only if the embedded files were not fonts (a broken build).
    pub fn embedded() -> Option<Self> {
        Some(Self {
            regular: Face::load(REGULAR)?,
            bold: Face::load(BOLD)?,
        })
    }

    pub fn face(&self, bold: bool) -> &Face {
        if bold { &self.bold } else { &self.regular }
    }
}

/// Where text `width` wide starts so that it ends at `right_edge`.
pub fn right_aligned(right_edge: f32, width: f32) -> f32 {
    right_edge - width
}

/// `text` in lines no wider than `max` (as `width` measures them), broken at ordinary spaces
/// only: no-break spaces (U+00A0, U+202F) keep « 29,00 € » and « 24 novembre » together. A line
/// break in `text` is kept. A word wider than a line on its own (a long e-mail address) is cut
/// between characters. Empty text gives no line.
pub fn wrap(text: &str, max: f32, width: impl Fn(&str) -> f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if width(&candidate) <= max {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if width(word) <= max {
                line = word.to_owned();
                continue;
            }
            // Too wide alone: as many characters per line as fit (at least one).
            for c in word.chars() {
                let mut longer = line.clone();
                longer.push(c);
                if !line.is_empty() && width(&longer) > max {
                    lines.push(std::mem::replace(&mut line, c.to_string()));
                } else {
                    line = longer;
                }
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> Fonts {
        Fonts::embedded().expect("the committed fonts load")
    }

    #[test]
    fn the_embedded_fonts_have_every_character_french_invoices_need() {
        let fonts = fonts();
        for face in [&fonts.regular, &fonts.bold] {
            for c in "éèêàçôœÉ€«»\u{a0}\u{202f}−’°".chars() {
                let glyphs = face.shape(&c.to_string());
                assert!(
                    glyphs.iter().all(|g| g.glyph_id.to_u32() != 0),
                    "no glyph for {c:?} (U+{:04X})",
                    c as u32
                );
            }
        }
    }

    #[test]
    fn widths_grow_with_the_text_and_the_size_and_bold_is_wider() {
        let f = fonts();
        let short = f.regular.width("9,00\u{a0}€", 10.0);
        let long = f.regular.width("1\u{202f}234,00\u{a0}€", 10.0);
        assert!(short > 20.0 && short < 50.0, "{short}");
        assert!(long > short);
        assert!((f.regular.width("9,00\u{a0}€", 20.0) - 2.0 * short).abs() < 0.01);
        assert!(f.bold.width("Total", 10.0) > f.regular.width("Total", 10.0));
        assert_eq!(f.regular.width("", 10.0), 0.0);
    }

    #[test]
    fn right_aligned_amounts_end_on_the_same_edge() {
        let f = fonts();
        let edge = 539.0;
        let amounts = [
            "0,05\u{a0}€",
            "29,00\u{a0}€",
            "1\u{202f}234,56\u{a0}€",
            "−29,00\u{a0}€",
        ];
        let starts: Vec<f32> = amounts
            .iter()
            .map(|a| right_aligned(edge, f.regular.width(a, 10.0)))
            .collect();
        for (amount, start) in amounts.iter().zip(&starts) {
            let end = start + f.regular.width(amount, 10.0);
            assert!((end - edge).abs() < 0.001, "{amount} ends at {end}");
        }
        // A wider amount starts further left.
        assert!(starts[2] < starts[1] && starts[1] < starts[0], "{starts:?}");
    }

    #[test]
    fn long_addresses_wrap_at_spaces_within_the_width() {
        let f = fonts();
        let width = |s: &str| f.regular.width(s, 10.0);
        let address = "Bâtiment B, 12 rue de l’Église Saint-Jean-Baptiste, boîte postale 42, \
                       69002 Lyon Cedex 02, France";
        let lines = wrap(address, 150.0, width);
        assert!(lines.len() >= 3, "{lines:?}");
        for line in &lines {
            assert!(width(line) <= 150.0, "{line} is too wide");
            assert!(!line.starts_with(' ') && !line.ends_with(' '), "{line:?}");
        }
        // Nothing lost, nothing reordered.
        assert_eq!(
            lines.join(" "),
            address.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        // Short text: one line, as it is.
        assert_eq!(wrap("69002 Lyon", 150.0, width), ["69002 Lyon"]);
        assert!(wrap("", 150.0, width).is_empty());
    }

    #[test]
    fn no_break_spaces_hold_and_line_breaks_are_kept() {
        let f = fonts();
        let width = |s: &str| f.regular.width(s, 10.0);
        let amount = "Payée le 24\u{a0}novembre 2026 pour 1\u{202f}234,56\u{a0}€";
        let narrow = width("Payée le 24\u{a0}novembre") + 1.0;
        let lines = wrap(amount, narrow, width);
        assert!(
            lines.contains(&"24\u{a0}novembre".to_owned())
                || lines[0].ends_with("24\u{a0}novembre"),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("1\u{202f}234,56\u{a0}€")),
            "{lines:?}"
        );
        assert_eq!(
            wrap("12 rue des Lilas\n75011 Paris", 400.0, width),
            ["12 rue des Lilas", "75011 Paris"]
        );
    }

    #[test]
    fn a_word_too_wide_for_a_line_is_cut_between_characters() {
        let f = fonts();
        let width = |s: &str| f.regular.width(s, 10.0);
        let email = "secretariat.paroisse-saint-jean-baptiste-de-la-salle@exemple-diocese.fr";
        let lines = wrap(email, 120.0, width);
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(lines.iter().all(|l| width(l) <= 120.0), "{lines:?}");
        assert_eq!(lines.concat(), email);
        // Even narrower than one character: one character a line, nothing lost.
        assert_eq!(wrap("ab", 1.0, width), ["a", "b"]);
    }
}
