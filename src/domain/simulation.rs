//! The simulator's request: raw strings from a form or a query string, parsed into a typed
//! request with one error per wrong field. Rules (PRODUCT.md): an empty field counts as absent;
//! values match case-insensitively; a parameter that does not apply to the type is ignored
//! whatever its value; a format of the wrong type is invalid; an unknown plan is invalid.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::catalog::TypeRange;
use super::pricing::{
    Creation, CreationType, Illustrations, ImageFormat, Quantity, Request, Resolution, VideoFormat,
    range_of,
};

/// The longest prompt accepted, in characters.
pub const PROMPT_MAX_CHARS: usize = 2000;

/// The simulator's parameters as received (URL map of PRODUCT.md).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RawSimulation {
    #[serde(rename = "type")]
    pub creation_type: Option<String>,
    pub duree: Option<String>,
    pub format: Option<String>,
    pub resolution: Option<String>,
    pub pages: Option<String>,
    pub illustrations: Option<String>,
    pub quantite: Option<String>,
    pub plan: Option<String>,
    pub prompt: Option<String>,
}

/// What is wrong with a field; the templates word it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum FieldError {
    Missing,
    NotANumber,
    OutOfRange {
        min: u16,
        max: u16,
    },
    UnknownChoice,
    /// A format of the other type (`9:16` for an image).
    FormatOfOtherType,
    TooLong {
        max: usize,
    },
    /// NUL, other control characters, bidirectional overrides.
    InvisibleCharacters,
}

/// Field name (as in the URL) → error, in a stable order.
pub type FieldErrors = BTreeMap<&'static str, FieldError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulation {
    pub request: Request,
    pub plan: String,
    pub prompt: String,
    /// Whether `format` was given (it only counts for a video or an image): when it was not, the
    /// default format applies, which the prompt advice says.
    pub format_given: bool,
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn number(raw: &str, min: u16, max: u16) -> Result<u16, FieldError> {
    // Whole numbers only; a decimal point or a unit make it "not a number". A negative whole
    // number is one, out of the range.
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::NotANumber);
    }
    if digits.len() < raw.len() {
        return Err(FieldError::OutOfRange { min, max });
    }
    match raw.parse::<u32>() {
        Ok(n) if n >= u32::from(min) && n <= u32::from(max) => Ok(n as u16),
        _ => Err(FieldError::OutOfRange { min, max }),
    }
}

impl RawSimulation {
    /// No type, duration nor page count: the simulator's blank form (possibly with a plan
    /// chosen), nothing to simulate.
    pub fn is_blank(&self) -> bool {
        self.creation_type.is_none() && self.duree.is_none() && self.pages.is_none()
    }

    /// Parses every field, collecting all errors. `plans` are the plan ids that exist,
    /// `default_plan` the one used when none is given.
    pub fn parse(
        &self,
        ranges: &[TypeRange],
        plans: &[&str],
        default_plan: &str,
    ) -> Result<Simulation, FieldErrors> {
        let mut errors = FieldErrors::new();

        let creation_type = match present(&self.creation_type) {
            None => {
                errors.insert("type", FieldError::Missing);
                None
            }
            Some(raw) => CreationType::parse(raw).or_else(|| {
                errors.insert("type", FieldError::UnknownChoice);
                None
            }),
        };

        let quantity = match present(&self.quantite) {
            None => Quantity::new(1),
            Some(raw) => match number(raw, Quantity::MIN, Quantity::MAX) {
                Ok(n) => Quantity::new(n),
                Err(e) => {
                    errors.insert("quantite", e);
                    None
                }
            },
        };

        let plan = match present(&self.plan).map(str::to_lowercase) {
            None => Some(default_plan.to_owned()),
            Some(raw) if plans.contains(&raw.as_str()) => Some(raw),
            Some(_) => {
                errors.insert("plan", FieldError::UnknownChoice);
                None
            }
        };

        let prompt = self.prompt.as_deref().unwrap_or("").trim().to_owned();
        if prompt.chars().count() > PROMPT_MAX_CHARS {
            errors.insert(
                "prompt",
                FieldError::TooLong {
                    max: PROMPT_MAX_CHARS,
                },
            );
        } else if prompt.chars().any(is_invisible) {
            errors.insert("prompt", FieldError::InvisibleCharacters);
        }

        let creation = creation_type.and_then(|t| self.creation(t, ranges, &mut errors));

        match (creation, quantity, plan) {
            (Some(creation), Some(quantity), Some(plan)) if errors.is_empty() => Ok(Simulation {
                request: Request { creation, quantity },
                plan,
                prompt,
                format_given: present(&self.format).is_some(),
            }),
            _ => Err(errors),
        }
    }

    fn creation(
        &self,
        t: CreationType,
        ranges: &[TypeRange],
        errors: &mut FieldErrors,
    ) -> Option<Creation> {
        let (min, max) = range_of(ranges, t);
        let mut measure = |field: &'static str, raw: &Option<String>| -> Option<u16> {
            let (Some(min), Some(max)) = (min, max) else {
                errors.insert(field, FieldError::UnknownChoice);
                return None;
            };
            match present(raw) {
                None => {
                    errors.insert(field, FieldError::Missing);
                    None
                }
                Some(raw) => number(raw, min, max)
                    .map_err(|e| errors.insert(field, e))
                    .ok(),
            }
        };
        match t {
            CreationType::Video => {
                let seconds = measure("duree", &self.duree);
                let format = self.video_format(errors);
                let resolution = self.resolution(errors);
                Some(Creation::Video {
                    seconds: seconds?,
                    format: format?,
                    resolution: resolution?,
                })
            }
            CreationType::Image => {
                let format = self.image_format(errors);
                let resolution = self.resolution(errors);
                Some(Creation::Image {
                    format: format?,
                    resolution: resolution?,
                })
            }
            CreationType::Music => Some(Creation::Music {
                seconds: measure("duree", &self.duree)?,
            }),
            CreationType::MiniBook => {
                let pages = measure("pages", &self.pages);
                let illustrations = match present(&self.illustrations)
                    .map(str::to_lowercase)
                    .as_deref()
                {
                    None | Some("simples") => Some(Illustrations::Simple),
                    Some("riches") => Some(Illustrations::Rich),
                    Some(_) => {
                        errors.insert("illustrations", FieldError::UnknownChoice);
                        None
                    }
                };
                Some(Creation::MiniBook {
                    pages: pages?,
                    illustrations: illustrations?,
                })
            }
        }
    }

    fn resolution(&self, errors: &mut FieldErrors) -> Option<Resolution> {
        match present(&self.resolution).map(str::to_lowercase).as_deref() {
            None | Some("hd") => Some(Resolution::Hd),
            Some("4k") => Some(Resolution::FourK),
            Some(_) => {
                errors.insert("resolution", FieldError::UnknownChoice);
                None
            }
        }
    }

    fn video_format(&self, errors: &mut FieldErrors) -> Option<VideoFormat> {
        match present(&self.format).map(normalise_format).as_deref() {
            None | Some("16:9") => Some(VideoFormat::Landscape),
            Some("9:16") => Some(VideoFormat::Portrait),
            Some("1920x1080" | "1080x1350") => {
                errors.insert("format", FieldError::FormatOfOtherType);
                None
            }
            Some(_) => {
                errors.insert("format", FieldError::UnknownChoice);
                None
            }
        }
    }

    fn image_format(&self, errors: &mut FieldErrors) -> Option<ImageFormat> {
        match present(&self.format).map(normalise_format).as_deref() {
            None | Some("1920x1080") => Some(ImageFormat::Landscape),
            Some("1080x1350") => Some(ImageFormat::Portrait),
            Some("16:9" | "9:16") => {
                errors.insert("format", FieldError::FormatOfOtherType);
                None
            }
            Some(_) => {
                errors.insert("format", FieldError::UnknownChoice);
                None
            }
        }
    }
}

/// `1920×1080`, `1920 x 1080` and `1920X1080` are the same format.
fn normalise_format(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| {
            if c == '×' {
                'x'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Characters a prompt never needs and that hide or reorder text: controls (but for tab and
/// newlines), bidirectional overrides and isolates.
fn is_invisible(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges() -> Vec<TypeRange> {
        vec![
            TypeRange {
                creation_type: CreationType::Video,
                min: Some(5),
                max: Some(15),
            },
            TypeRange {
                creation_type: CreationType::Image,
                min: None,
                max: None,
            },
            TypeRange {
                creation_type: CreationType::Music,
                min: Some(30),
                max: Some(90),
            },
            TypeRange {
                creation_type: CreationType::MiniBook,
                min: Some(4),
                max: Some(20),
            },
        ]
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Simulation, FieldErrors> {
        let query = serde_urlencoded::to_string(pairs).unwrap();
        let raw: RawSimulation = serde_urlencoded::from_str(&query).unwrap();
        raw.parse(&ranges(), &["eglise", "reseau"], "eglise")
    }

    fn errors(pairs: &[(&str, &str)]) -> Vec<(&'static str, FieldError)> {
        parse(pairs).unwrap_err().into_iter().collect()
    }

    #[test]
    fn defaults_apply_when_fields_are_absent_or_empty() {
        let s = parse(&[
            ("type", "video"),
            ("duree", "10"),
            ("format", ""),
            ("quantite", " "),
        ])
        .unwrap();
        assert_eq!(s.plan, "eglise");
        assert_eq!(s.request.quantity.get(), 1);
        assert_eq!(
            s.request.creation,
            Creation::Video {
                seconds: 10,
                format: VideoFormat::Landscape,
                resolution: Resolution::Hd
            }
        );
        let image = parse(&[("type", "image")]).unwrap();
        assert_eq!(
            image.request.creation,
            Creation::Image {
                format: ImageFormat::Landscape,
                resolution: Resolution::Hd
            }
        );
    }

    #[test]
    fn values_match_case_insensitively() {
        let s = parse(&[
            ("type", "VIDEO"),
            ("duree", "5"),
            ("format", "9:16"),
            ("resolution", "4K"),
            ("plan", "Reseau"),
        ])
        .unwrap();
        assert_eq!(s.plan, "reseau");
        assert_eq!(s.request.creation.resolution(), Resolution::FourK);
        let book = parse(&[
            ("type", "Mini-Livre"),
            ("pages", "10"),
            ("illustrations", "RICHES"),
        ])
        .unwrap();
        assert_eq!(
            book.request.creation,
            Creation::MiniBook {
                pages: 10,
                illustrations: Illustrations::Rich
            }
        );
    }

    #[test]
    fn parameters_that_do_not_apply_are_ignored_whatever_their_value() {
        let music = parse(&[
            ("type", "musique"),
            ("duree", "45"),
            ("format", "n'importe"),
            ("resolution", "8k"),
            ("pages", "x"),
        ])
        .unwrap();
        assert_eq!(music.request.creation, Creation::Music { seconds: 45 });
        let book = parse(&[
            ("type", "mini-livre"),
            ("pages", "8"),
            ("duree", "abc"),
            ("resolution", "4k"),
        ])
        .unwrap();
        assert_eq!(book.request.creation.resolution(), Resolution::Hd);
        let image = parse(&[("type", "image"), ("duree", "999"), ("pages", "0")]).unwrap();
        assert_eq!(image.request.creation.creation_type(), CreationType::Image);
    }

    #[test]
    fn a_format_of_the_other_type_is_invalid() {
        assert_eq!(
            errors(&[("type", "image"), ("format", "9:16")]),
            [("format", FieldError::FormatOfOtherType)]
        );
        assert_eq!(
            errors(&[("type", "video"), ("duree", "5"), ("format", "1080x1350")]),
            [("format", FieldError::FormatOfOtherType)]
        );
        assert!(parse(&[("type", "image"), ("format", "1080×1350")]).is_ok());
    }

    #[test]
    fn durations_pages_and_quantities_are_checked_on_both_sides_of_their_range() {
        let range = |min, max| FieldError::OutOfRange { min, max };
        assert!(parse(&[("type", "video"), ("duree", "5")]).is_ok());
        assert!(parse(&[("type", "video"), ("duree", "15")]).is_ok());
        assert_eq!(
            errors(&[("type", "video"), ("duree", "4")]),
            [("duree", range(5, 15))]
        );
        assert_eq!(
            errors(&[("type", "video"), ("duree", "16")]),
            [("duree", range(5, 15))]
        );
        assert!(parse(&[("type", "musique"), ("duree", "30")]).is_ok());
        assert!(parse(&[("type", "musique"), ("duree", "90")]).is_ok());
        assert_eq!(
            errors(&[("type", "musique"), ("duree", "29")]),
            [("duree", range(30, 90))]
        );
        assert_eq!(
            errors(&[("type", "musique"), ("duree", "91")]),
            [("duree", range(30, 90))]
        );
        assert!(parse(&[("type", "mini-livre"), ("pages", "4")]).is_ok());
        assert!(parse(&[("type", "mini-livre"), ("pages", "20")]).is_ok());
        assert_eq!(
            errors(&[("type", "mini-livre"), ("pages", "3")]),
            [("pages", range(4, 20))]
        );
        assert_eq!(
            errors(&[("type", "mini-livre"), ("pages", "21")]),
            [("pages", range(4, 20))]
        );
        assert!(parse(&[("type", "image"), ("quantite", "1")]).is_ok());
        assert!(parse(&[("type", "image"), ("quantite", "500")]).is_ok());
        assert_eq!(
            errors(&[("type", "image"), ("quantite", "0")]),
            [("quantite", range(1, 500))]
        );
        assert_eq!(
            errors(&[("type", "image"), ("quantite", "501")]),
            [("quantite", range(1, 500))]
        );
        assert_eq!(
            errors(&[("type", "image"), ("quantite", "99999999999999999999")]),
            [("quantite", range(1, 500))]
        );
    }

    #[test]
    fn not_a_number_missing_and_unknown_are_each_reported() {
        assert_eq!(
            errors(&[("type", "video"), ("duree", "abc")]),
            [("duree", FieldError::NotANumber)]
        );
        assert_eq!(
            errors(&[("type", "video"), ("duree", "10.5")]),
            [("duree", FieldError::NotANumber)]
        );
        assert_eq!(
            errors(&[("type", "image"), ("quantite", "-3")]),
            [("quantite", FieldError::OutOfRange { min: 1, max: 500 })]
        );
        assert_eq!(
            errors(&[("type", "image"), ("quantite", "-")]),
            [("quantite", FieldError::NotANumber)]
        );
        assert_eq!(
            errors(&[("type", "video")]),
            [("duree", FieldError::Missing)]
        );
        assert_eq!(errors(&[]), [("type", FieldError::Missing)]);
        assert_eq!(
            errors(&[("type", "podcast")]),
            [("type", FieldError::UnknownChoice)]
        );
        assert_eq!(
            errors(&[("type", "image"), ("plan", "premium")]),
            [("plan", FieldError::UnknownChoice)]
        );
        assert_eq!(
            errors(&[("type", "image"), ("resolution", "8k")]),
            [("resolution", FieldError::UnknownChoice)]
        );
    }

    #[test]
    fn every_wrong_field_is_reported_at_once() {
        let all = errors(&[
            ("type", "video"),
            ("duree", "99"),
            ("quantite", "0"),
            ("plan", "x"),
            ("format", "carré"),
        ]);
        let fields: Vec<_> = all.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["duree", "format", "plan", "quantite"]);
    }

    #[test]
    fn prompts_are_limited_in_length_and_refuse_invisible_characters() {
        let long = "a".repeat(PROMPT_MAX_CHARS + 1);
        assert_eq!(
            errors(&[("type", "image"), ("prompt", &long)]),
            [(
                "prompt",
                FieldError::TooLong {
                    max: PROMPT_MAX_CHARS
                }
            )]
        );
        for odd in ["nul\u{0}", "rtl \u{202E}txet", "iso\u{2066}late"] {
            assert_eq!(
                errors(&[("type", "image"), ("prompt", odd)]),
                [("prompt", FieldError::InvisibleCharacters)]
            );
        }
        let emoji = parse(&[
            ("type", "image"),
            ("prompt", "Crèche de Noël 🎄, vitrail, 16:9"),
        ])
        .unwrap();
        assert!(emoji.prompt.contains('🎄'), "emoji are ordinary text");
    }
}
