//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the JSON API, generated from the
//! code (utoipa): the answers are the structs the handlers serialize (`api`, `api_reseau`,
//! `api_error`), the operations are the `#[utoipa::path]` attributes on the handlers.
//!
//! What a request may hold is described here, as exactly as JSON Schema allows, from the same
//! rules the portal applies (`domain::simulation`): an empty value counts as absent, values match
//! case-insensitively, surrounding spaces are ignored, a parameter that does not apply to the
//! type is ignored. The ranges of measures are the seeded catalog's (a test compares them).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::header;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::{api, api_error, api_reseau};
use crate::domain::pricing::Quantity;
use crate::domain::simulation::PROMPT_MAX_CHARS;

/// Seconds a video lasts (the seeded catalog's range; a test compares them).
pub const VIDEO_SECONDS: (u16, u16) = (5, 15);
/// Seconds of music.
pub const MUSIC_SECONDS: (u16, u16) = (30, 90);
/// Pages of a mini-book.
pub const MINI_BOOK_PAGES: (u16, u16) = (4, 20);
/// The plans, as the simulator's `plan` names them.
pub const PLANS: [&str; 2] = ["eglise", "reseau"];
/// `limit` of `GET /api/v1/generations`.
pub const LIST_LIMIT: (u16, u16) = (1, 200);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "NanoClip API",
        description = "The NanoClip portal's JSON API: the simulator and the help-centre \
            search (public), the Plan Réseau API (an API key) and the generation engine's \
            reports (its token). Field names are English, messages French sentences.",
    ),
    paths(
        api::simulateur,
        api::recherche,
        api_reseau::solde,
        api_reseau::launch,
        api_reseau::generations_list,
        api_reseau::generation,
        api_reseau::report,
        document,
    ),
    components(schemas(api_error::ApiErrorCode)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "public", description = "No sign-in."),
        (name = "reseau", description = "Plan Réseau: `Authorization: Bearer <API key>`."),
        (name = "moteur", description = "The generation engine: `Authorization: Bearer <token>`."),
    ),
)]
pub struct ApiDoc;

/// The name of the Plan Réseau API keys' scheme.
pub const API_KEY: &str = "api_key";
/// The name of the engine token's scheme.
pub const ENGINE_TOKEN: &str = "engine_token";

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // The crate has no license to name (utoipa would write an empty one).
        openapi.info.license = None;
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("nanoclip_live_…")
                    .description(Some(
                        "A Plan Réseau API key (`nanoclip_live_…`), created by an owner on \
                         /compte/api or with `nanoclip api-key create`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            ENGINE_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The generation engine's token (`NANOCLIP_ENGINE_TOKEN`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document, built once.
pub fn json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default())
}

/// `GET /api/v1/openapi.json`
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "get_openapi",
    tag = "public",
    summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "This document.", body = Object)),
)]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("application/json")
        .body(json())
}

// --- what a request may hold --------------------------------------------------------------------

/// What `str::trim` takes off (Unicode `White_Space`), as a character class.
const SPACE: &str = r"[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";
/// What a prompt may not hold once trimmed (`domain::simulation::is_invisible`).
const INVISIBLE: &str =
    r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069";

/// `word` in any case (ASCII letters).
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
            } else if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// One of `words`, any case, spaces around; absent if `optional` (empty or only spaces).
pub fn choice_pattern(words: &[&str], optional: bool) -> String {
    let words: Vec<String> = words.iter().map(|w| any_case(w)).collect();
    let q = if optional { "?" } else { "" };
    format!("^{SPACE}*({}){q}{SPACE}*$", words.join("|"))
}

/// A format (`16:9`, `1920x1080`): spaces anywhere, `x` in any case or `×`.
pub fn format_pattern(formats: &[&str], optional: bool) -> String {
    let formats: Vec<String> = formats
        .iter()
        .map(|f| {
            f.chars()
                .map(|c| match c {
                    'x' => "[xX×]".to_owned(),
                    ':' => ":".to_owned(),
                    c => c.to_string(),
                })
                .collect::<Vec<_>>()
                .join(&format!("{SPACE}*"))
        })
        .collect();
    let q = if optional { "?" } else { "" };
    format!("^{SPACE}*({}){q}{SPACE}*$", formats.join("|"))
}

/// Whole numbers from `a` to `b`, written with as many digits (`a` ≤ `b`).
fn digits_between(a: &[u8], b: &[u8]) -> String {
    let (fa, fb) = (a[0] - b'0', b[0] - b'0');
    if a.len() == 1 {
        return if fa == fb {
            fa.to_string()
        } else {
            format!("[{fa}-{fb}]")
        };
    }
    let rest = a.len() - 1;
    if fa == fb {
        return format!("{fa}({})", digits_between(&a[1..], &b[1..]));
    }
    if a[1..].iter().all(|&d| d == b'0') && b[1..].iter().all(|&d| d == b'9') {
        return format!("[{fa}-{fb}][0-9]{{{rest}}}");
    }
    let nines = vec![b'9'; rest];
    let zeros = vec![b'0'; rest];
    let mut parts = vec![format!("{fa}({})", digits_between(&a[1..], &nines))];
    if fa + 1 < fb {
        parts.push(format!("[{}-{}][0-9]{{{rest}}}", fa + 1, fb - 1));
    }
    parts.push(format!("{fb}({})", digits_between(&zeros, &b[1..])));
    parts.join("|")
}

/// The whole numbers `min..=max` in decimal, without leading zeros.
fn range_regex(min: u32, max: u32) -> String {
    let mut parts = Vec::new();
    let mut low = min;
    while low <= max {
        let digits = low.to_string().len() as u32;
        let top = 10u32.saturating_pow(digits) - 1;
        let high = max.min(top);
        parts.push(digits_between(
            low.to_string().as_bytes(),
            format!("{high:0width$}", width = digits as usize).as_bytes(),
        ));
        low = high + 1;
    }
    parts.join("|")
}

/// A whole number from `min` to `max` as the simulator reads it (digits only, leading zeros
/// and surrounding spaces allowed); absent if `optional`.
pub fn number_pattern(min: u16, max: u16, optional: bool) -> String {
    let q = if optional { "?" } else { "" };
    format!(
        "^{SPACE}*(0*({})){q}{SPACE}*$",
        range_regex(u32::from(min), u32::from(max))
    )
}

/// A prompt: at most `PROMPT_MAX_CHARS` characters once trimmed, none of them invisible.
pub fn prompt_pattern() -> String {
    format!("^{SPACE}*[^{INVISIBLE}]{{0,{PROMPT_MAX_CHARS}}}{SPACE}*$")
}

fn string(pattern: String, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

/// How a field is sent: in a query string (text), or in a JSON body (text, a number for the
/// numeric fields, `null` for absent).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Query,
    Body,
}

/// A field's schema; `number` gives the range of a numeric field.
fn field(
    carrier: Carrier,
    pattern: String,
    number: Option<(u16, u16)>,
    optional: bool,
    description: &str,
) -> RefOr<Schema> {
    if carrier == Carrier::Query {
        return string(pattern, description);
    }
    let mut builder = OneOfBuilder::new()
        .description(Some(description))
        .item(string(pattern, "As text."));
    if let Some((min, max)) = number {
        builder = builder.item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(min))
                .maximum(Some(max)),
        );
    }
    if optional {
        builder = builder.item(ObjectBuilder::new().schema_type(Type::Null));
    }
    builder.into()
}

/// A field that does not apply to the type: ignored, whatever its text (in a body, any text,
/// number or `null`).
fn ignored(carrier: Carrier) -> RefOr<Schema> {
    let types = match carrier {
        Carrier::Query => SchemaType::Type(Type::String),
        Carrier::Body => SchemaType::Array(vec![Type::String, Type::Number, Type::Null]),
    };
    ObjectBuilder::new()
        .schema_type(types)
        .description(Some("Ignored for this type."))
        .into()
}

const FIELDS: [&str; 6] = [
    "duree",
    "format",
    "resolution",
    "pages",
    "illustrations",
    "quantite",
];

/// A field of a creation type: its name, schema, and whether it is required.
type OwnField = (&'static str, RefOr<Schema>, bool);

/// The simulator's request: one variant per creation type. The simulator takes a quantity
/// (1–500) and a plan; a launch takes one render and its organisation's plan.
fn creation(carrier: Carrier) -> RefOr<Schema> {
    let quantity = match carrier {
        Carrier::Query => (Quantity::MIN, Quantity::MAX),
        Carrier::Body => (1, 1),
    };
    let resolution = || {
        field(
            carrier,
            choice_pattern(&["hd", "4k"], true),
            None,
            true,
            "`hd` (default) or `4k` (Plan Réseau).",
        )
    };
    let variants: [(&str, Vec<OwnField>); 4] = [
        (
            "video",
            vec![
                (
                    "duree",
                    field(
                        carrier,
                        number_pattern(VIDEO_SECONDS.0, VIDEO_SECONDS.1, false),
                        Some(VIDEO_SECONDS),
                        false,
                        "Seconds (5–15).",
                    ),
                    true,
                ),
                (
                    "format",
                    field(
                        carrier,
                        format_pattern(&["16:9", "9:16"], true),
                        None,
                        true,
                        "`16:9` (default) or `9:16`.",
                    ),
                    false,
                ),
                ("resolution", resolution(), false),
            ],
        ),
        (
            "image",
            vec![
                (
                    "format",
                    field(
                        carrier,
                        format_pattern(&["1920x1080", "1080x1350"], true),
                        None,
                        true,
                        "`1920x1080` (default) or `1080x1350`.",
                    ),
                    false,
                ),
                ("resolution", resolution(), false),
            ],
        ),
        (
            "musique",
            vec![(
                "duree",
                field(
                    carrier,
                    number_pattern(MUSIC_SECONDS.0, MUSIC_SECONDS.1, false),
                    Some(MUSIC_SECONDS),
                    false,
                    "Seconds (30–90).",
                ),
                true,
            )],
        ),
        (
            "mini-livre",
            vec![
                (
                    "pages",
                    field(
                        carrier,
                        number_pattern(MINI_BOOK_PAGES.0, MINI_BOOK_PAGES.1, false),
                        Some(MINI_BOOK_PAGES),
                        false,
                        "Pages (4–20).",
                    ),
                    true,
                ),
                (
                    "illustrations",
                    field(
                        carrier,
                        choice_pattern(&["simples", "riches"], true),
                        None,
                        true,
                        "`simples` (default) or `riches`.",
                    ),
                    false,
                ),
            ],
        ),
    ];
    let mut one_of = OneOfBuilder::new();
    for (type_id, own) in variants {
        let mut object = ObjectBuilder::new()
            .title(Some(type_id))
            .property(
                "type",
                string(choice_pattern(&[type_id], false), "The creation type."),
            )
            .required("type");
        for name in FIELDS {
            if name == "quantite" {
                continue;
            }
            match own.iter().find(|(n, _, _)| *n == name) {
                Some((_, schema, required)) => {
                    object = object.property(name, schema.clone());
                    if *required {
                        object = object.required(name);
                    }
                }
                None => object = object.property(name, ignored(carrier)),
            }
        }
        object = object.property(
            "quantite",
            field(
                carrier,
                number_pattern(quantity.0, quantity.1, true),
                Some(quantity),
                true,
                match carrier {
                    Carrier::Query => "How many renders (1–500, default 1).",
                    Carrier::Body => "One render per request: absent or 1.",
                },
            ),
        );
        match carrier {
            Carrier::Query => {
                object = object.property(
                    "plan",
                    string(
                        choice_pattern(&PLANS, true),
                        "`eglise` (default) or `reseau`.",
                    ),
                );
            }
            Carrier::Body => {
                object = object.property("plan", ignored(carrier));
            }
        }
        object = object.property(
            "prompt",
            field(
                carrier,
                prompt_pattern(),
                None,
                true,
                "The prompt (at most 2000 characters, no invisible character).",
            ),
        );
        one_of = one_of.item(object);
    }
    one_of.into()
}

/// The query of `GET /api/v1/simulateur` (each property is a query parameter).
pub struct SimulationQuery;

impl PartialSchema for SimulationQuery {
    fn schema() -> RefOr<Schema> {
        creation(Carrier::Query)
    }
}

impl ToSchema for SimulationQuery {}

/// The body of `POST /api/v1/generations`.
pub struct LaunchBody;

impl PartialSchema for LaunchBody {
    fn schema() -> RefOr<Schema> {
        creation(Carrier::Body)
    }
}

impl ToSchema for LaunchBody {}

/// 403 and 429 of a launch: a refusal (a rule of the launch), or an error of the API (the plan
/// has no API; too many requests).
#[allow(dead_code)]
#[derive(ToSchema)]
#[serde(untagged)]
pub enum RefusalOrError {
    Refused(api_reseau::RefusedJson),
    Error(api_error::ErrorJson),
}

#[cfg(test)]
mod tests {
    //! The document's patterns against the portal's own parsing: a value matches the pattern
    //! exactly when the portal takes it.

    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;
    use crate::domain::catalog::TypeRange;
    use crate::domain::pricing::CreationType;
    use crate::domain::simulation::RawSimulation;

    #[test]
    fn the_range_regex_matches_the_range_and_nothing_else() {
        for (min, max) in [
            (1, 1),
            (5, 15),
            (30, 90),
            (4, 20),
            (1, 200),
            (1, 500),
            (0, 9),
        ] {
            let re = regex::Regex::new(&format!("^({})$", range_regex(min, max))).unwrap();
            for n in 0..1200u32 {
                assert_eq!(
                    re.is_match(&n.to_string()),
                    (min..=max).contains(&n),
                    "{n} in {min}..={max}: {re}"
                );
            }
        }
    }

    fn document() -> &'static Value {
        static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
        DOCUMENT.get_or_init(|| serde_json::from_str(json()).unwrap())
    }

    fn regex(pattern: &str) -> regex::Regex {
        regex::RegexBuilder::new(pattern)
            .size_limit(1 << 26)
            .build()
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    /// The pattern of a parameter of the document (`field` of the simulator's variant
    /// `type_id`, or a parameter by name), compiled once.
    fn pattern(at: &str, name: &str) -> &'static regex::Regex {
        type Compiled = std::sync::Mutex<Vec<(String, String, &'static regex::Regex)>>;
        static COMPILED: std::sync::OnceLock<Compiled> = std::sync::OnceLock::new();
        let compiled = COMPILED.get_or_init(Default::default);
        let mut compiled = compiled.lock().unwrap();
        if let Some((_, _, re)) = compiled.iter().find(|(a, n, _)| a == at && n == name) {
            return re;
        }
        let doc = document();
        let schema = if at.starts_with('/') {
            doc["paths"][at]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .map(|p| p["schema"].clone())
                .unwrap()
        } else {
            doc["paths"]["/api/v1/simulateur"]["get"]["parameters"][0]["schema"]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["title"] == at)
                .map(|v| v["properties"][name].clone())
                .unwrap()
        };
        let re: &'static regex::Regex =
            Box::leak(Box::new(regex(schema["pattern"].as_str().unwrap())));
        compiled.push((at.to_owned(), name.to_owned(), re));
        re
    }

    fn field_regex(type_id: &str, field: &str) -> &'static regex::Regex {
        pattern(type_id, field)
    }

    fn ranges() -> Vec<TypeRange> {
        let range = |creation_type, (min, max): (u16, u16)| TypeRange {
            creation_type,
            min: Some(min),
            max: Some(max),
        };
        vec![
            range(CreationType::Video, VIDEO_SECONDS),
            TypeRange {
                creation_type: CreationType::Image,
                min: None,
                max: None,
            },
            range(CreationType::Music, MUSIC_SECONDS),
            range(CreationType::MiniBook, MINI_BOOK_PAGES),
        ]
    }

    /// Whether the simulator takes `value` for `field` of a request of `type_id` whose other
    /// fields are valid.
    fn accepted(type_id: &str, field: &str, value: &str) -> bool {
        if field == "type" {
            return CreationType::parse(value).map(|t| t.id()) == Some(type_id);
        }
        let mut raw = RawSimulation {
            creation_type: Some(type_id.to_owned()),
            duree: Some(if type_id == "musique" { "60" } else { "10" }.to_owned()),
            pages: Some("10".to_owned()),
            ..RawSimulation::default()
        };
        let slot = match field {
            "type" => &mut raw.creation_type,
            "duree" => &mut raw.duree,
            "format" => &mut raw.format,
            "resolution" => &mut raw.resolution,
            "pages" => &mut raw.pages,
            "illustrations" => &mut raw.illustrations,
            "quantite" => &mut raw.quantite,
            "plan" => &mut raw.plan,
            "prompt" => &mut raw.prompt,
            _ => unreachable!(),
        };
        *slot = Some(value.to_owned());
        raw.parse(&ranges(), &PLANS, PLANS[0]).is_ok()
    }

    /// Pieces that make the values worth trying: spaces of every kind, digits, signs, the
    /// choices in any case, separators, control and invisible characters.
    fn pieces() -> impl Strategy<Value = String> {
        let pieces: Vec<&str> = vec![
            "",
            " ",
            "\t",
            "\n",
            "\u{b}",
            "\u{c}",
            "\u{1c}",
            "\u{85}",
            "\u{a0}",
            "\u{2003}",
            "\u{3000}",
            "\u{200b}",
            "\u{202e}",
            "\u{0}",
            "0",
            "00",
            "1",
            "2",
            "4",
            "5",
            "6",
            "9",
            "10",
            "15",
            "16",
            "20",
            "30",
            "90",
            "200",
            "500",
            "501",
            "+",
            "-",
            ".",
            ",",
            "e",
            ":",
            "x",
            "X",
            "×",
            "*",
            "hd",
            "HD",
            "Hd",
            "4k",
            "4K",
            "K",
            "video",
            "VIDEO",
            "vidéo",
            "image",
            "musique",
            "mini-livre",
            "MINI-LIVRE",
            "simples",
            "riches",
            "eglise",
            "Réseau",
            "RESEAU",
            "1920",
            "1080",
            "1350",
            "a",
            "é",
            "😀",
        ];
        proptest::collection::vec(proptest::sample::select(pieces), 0..6).prop_map(|p| p.concat())
    }

    const FIELDS_BY_TYPE: [(&str, &[&str]); 4] = [
        (
            "video",
            &[
                "type",
                "duree",
                "format",
                "resolution",
                "quantite",
                "plan",
                "prompt",
            ],
        ),
        (
            "image",
            &["type", "format", "resolution", "quantite", "plan", "prompt"],
        ),
        ("musique", &["type", "duree", "quantite", "plan", "prompt"]),
        (
            "mini-livre",
            &[
                "type",
                "pages",
                "illustrations",
                "quantite",
                "plan",
                "prompt",
            ],
        ),
    ];

    proptest! {
        #[test]
        fn each_field_s_pattern_is_what_the_simulator_takes(value in pieces()) {
            for (type_id, fields) in FIELDS_BY_TYPE {
                for field in fields.iter().copied() {
                    let matches = field_regex(type_id, field).is_match(&value);
                    prop_assert_eq!(
                        matches,
                        accepted(type_id, field, &value),
                        "{} of {}: {:?}", field, type_id, value
                    );
                }
            }
        }

        #[test]
        fn the_search_pattern_is_what_the_search_takes(value in pieces()) {
            prop_assert_eq!(search_valid(&value), super::super::aide::normalise(Some(&value)).is_ok(), "{:?}", value);
        }

        #[test]
        fn the_limit_pattern_is_what_the_list_takes(value in pieces()) {
            let matches = pattern("/api/v1/generations", "limit").is_match(&value);
            let taken = matches!(value.trim().parse::<i64>(), Ok(1..=200));
            prop_assert_eq!(matches, taken, "{:?}", value);
        }
    }

    fn search_valid(value: &str) -> bool {
        let q = &document()["paths"]["/api/v1/aide/recherche"]["get"]["parameters"][0]["schema"];
        pattern("/api/v1/aide/recherche", "q").is_match(value)
            && value.chars().count() <= q["maxLength"].as_u64().unwrap() as usize
    }

    #[test]
    fn the_search_s_length_is_the_typed_one() {
        for (value, ok) in [
            ("a".repeat(200), true),
            ("a".repeat(201), false),
            (format!("{}  {}", "a".repeat(99), "b".repeat(99)), true),
            (format!("{}   {}", "a".repeat(99), "b".repeat(99)), false),
            (format!(" {} ", "a".repeat(199)), false),
        ] {
            assert_eq!(search_valid(&value), ok, "{}", value.len());
            assert_eq!(
                super::super::aide::normalise(Some(&value)).is_ok(),
                ok,
                "{}",
                value.len()
            );
        }
    }

    #[test]
    fn the_prompt_pattern_counts_characters_once_trimmed() {
        let re = field_regex("video", "prompt");
        for (value, ok) in [
            ("a".repeat(2000), true),
            (format!("  {}\u{3000}\n", "é".repeat(2000)), true),
            ("a".repeat(2001), false),
            (format!("{} b", "a".repeat(1999)), false),
            ("\u{b}début".to_owned(), true),
            ("au\u{b}milieu".to_owned(), false),
        ] {
            assert_eq!(re.is_match(&value), ok, "{}", value.len());
            assert_eq!(accepted("video", "prompt", &value), ok, "{}", value.len());
        }
    }
}
