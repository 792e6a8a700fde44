//! One guide: TOML front matter, Markdown rendered once to sanitised HTML, its headings and links.

use std::collections::HashSet;
use std::path::Path;

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::Deserialize;

use super::ContentError;
use super::text::{slugify, typography};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: String,
    description: String,
    category: String,
    order: u32,
    updated: toml::value::Datetime,
    slug: String,
    #[serde(default)]
    keywords: Vec<String>,
}

/// A live table a guide embeds with `{{< name >}}` on a line of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveTable {
    Bareme,
    Plans,
    Packs,
}

#[derive(Debug, Clone)]
pub enum Segment {
    /// Sanitised HTML, where each inline figure is a placeholder: `FIGURE_START`, the figure's
    /// index in `Guide::figures`, `FIGURE_END` (private-use characters no text holds).
    Html(String),
    Live(LiveTable),
}

pub const FIGURE_START: char = '\u{E000}';
pub const FIGURE_END: char = '\u{E001}';

/// A figure of the catalog stated inline in a guide with `{{< name args >}}`, rendered from the
/// catalog in force: a price, a cap or a pack's content written in a guide never goes stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Figure {
    /// `{{< prix eglise >}}`, `{{< credits pack-10 >}}`…: a field of a plan or a pack, by id.
    Field { field: FigureField, id: String },
    /// `{{< cout type=video duree=10 resolution=4k plan=reseau >}}`: the cost of one render on
    /// the price schedule in force, with the simulator's parameters.
    Cost { params: Vec<(String, String)> },
    /// `{{< par-page illustrations=riches plan=reseau >}}`: a mini-book's credits per page on the
    /// schedule in force (« 0,8 »), before the batch is rounded up.
    PerPage { params: Vec<(String, String)> },
}

/// What a `Figure::Field` states; the shortcode's name in a guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigureField {
    /// `prix`: the price TTC of a plan (per period) or a pack.
    Price,
    /// `ht`: that price without VAT.
    Net,
    /// `tva`: the VAT in that price.
    Vat,
    /// `credits`: a plan's credits per period, a pack's credits.
    Credits,
    /// `report`: a plan's rollover cap.
    Rollover,
    /// `par-jour`: a plan's generations per day.
    Daily,
    /// `par-mois`: a plan's credits spent per month.
    Monthly,
    /// `simultanes`: a plan's concurrent renders.
    Concurrent,
    /// `nom`: a plan's or a pack's name.
    Name,
}

impl FigureField {
    pub const ALL: [(&'static str, FigureField); 9] = [
        ("prix", Self::Price),
        ("ht", Self::Net),
        ("tva", Self::Vat),
        ("credits", Self::Credits),
        ("report", Self::Rollover),
        ("par-jour", Self::Daily),
        ("par-mois", Self::Monthly),
        ("simultanes", Self::Concurrent),
        ("nom", Self::Name),
    ];
}

/// The parameters a `cout` figure may give (the simulator's, `quantite` and `prompt` aside).
const COST_PARAMS: [&str; 7] = [
    "type",
    "duree",
    "format",
    "resolution",
    "pages",
    "illustrations",
    "plan",
];

/// Reads an inline shortcode's inside (`prix eglise`, `cout type=image plan=reseau`).
pub fn parse_figure(inside: &str) -> Result<Figure, String> {
    let mut words = inside.split_whitespace();
    let name = words.next().unwrap_or_default();
    let args: Vec<&str> = words.collect();
    if name == "cout" || name == "par-page" {
        let allowed: &[&str] = if name == "cout" {
            &COST_PARAMS
        } else {
            &["illustrations", "plan"]
        };
        let mut params = Vec::new();
        for arg in args {
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| format!("`{name}`: `{arg}` is not key=value"))?;
            if !allowed.contains(&key) {
                return Err(format!(
                    "`{name}`: unknown parameter `{key}` ({})",
                    allowed.join(", ")
                ));
            }
            params.push((key.to_owned(), value.to_owned()));
        }
        if name == "par-page" {
            return Ok(Figure::PerPage { params });
        }
        if !params.iter().any(|(k, _)| k == "type") {
            return Err("`cout` needs a `type=`".into());
        }
        return Ok(Figure::Cost { params });
    }
    let Some(&(_, field)) = FigureField::ALL.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = FigureField::ALL.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "unknown shortcode `{name}` (inline: {}, cout, par-page; on a line of its own: bareme, plans, packs)",
            names.join(", ")
        ));
    };
    match args.as_slice() {
        [id] => Ok(Figure::Field {
            field,
            id: (*id).to_owned(),
        }),
        _ => Err(format!(
            "`{name}` takes one plan or pack id, e.g. {{{{< {name} eglise >}}}}"
        )),
    }
}

/// Replaces the inline shortcodes of a line by placeholders, recording their figures; a
/// « crédit » or « crédits » right after one goes with it (see `Guide::credits_after`).
fn inline_figures(
    line: &str,
    figures: &mut Vec<Figure>,
    credits_after: &mut Vec<bool>,
) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("{{<") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after
            .find(">}}")
            .ok_or_else(|| "shortcode `{{<` is not closed by `>}}`".to_owned())?;
        figures.push(parse_figure(after[..end].trim())?);
        out.push(FIGURE_START);
        out.push_str(&(figures.len() - 1).to_string());
        out.push(FIGURE_END);
        rest = &after[end + 3..];
        let unit = [" crédits", " crédit"].into_iter().find(|u| {
            rest.strip_prefix(u)
                .is_some_and(|r| !r.starts_with(char::is_alphanumeric))
        });
        credits_after.push(unit.is_some());
        if let Some(unit) = unit {
            rest = &rest[unit.len()..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Text without its figure placeholders (the search index and snippets hold no figure).
fn without_figures(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        match c {
            FIGURE_START => inside = true,
            FIGURE_END => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

/// Fills the figure placeholders of rendered HTML with `text` of each figure (already HTML).
pub fn fill_figures(html: &str, mut text: impl FnMut(usize) -> String) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    while let Some(start) = rest.find(FIGURE_START) {
        out.push_str(&rest[..start]);
        let after = &rest[start + FIGURE_START.len_utf8()..];
        let Some(end) = after.find(FIGURE_END) else {
            break;
        };
        if let Ok(index) = after[..end].parse::<usize>() {
            out.push_str(&text(index));
        }
        rest = &after[end + FIGURE_END.len_utf8()..];
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone)]
pub struct Heading {
    pub level: u8,
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub url: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Guide {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub order: u32,
    pub updated: time::Date,
    pub keywords: Vec<String>,
    pub segments: Vec<Segment>,
    pub headings: Vec<Heading>,
    pub links: Vec<Link>,
    /// The inline figures, by the index their placeholder holds.
    pub figures: Vec<Figure>,
    /// For each figure, whether the source followed it with « crédit(s) »: the word is then
    /// written at render, agreeing with the figure (« 1 crédit », « 0,8 crédit », « 2 crédits »).
    pub credits_after: Vec<bool>,
    /// The body as plain text, for search and snippets.
    pub text: String,
}

impl Guide {
    pub fn url(&self) -> String {
        format!("/aide/{}", self.slug)
    }

    pub fn has_anchor(&self, id: &str) -> bool {
        self.headings.iter().any(|h| h.id == id)
    }

    /// The « Sommaire »: second-level headings.
    pub fn toc(&self) -> impl Iterator<Item = &Heading> {
        self.headings.iter().filter(|h| h.level == 2)
    }
}

/// Every parser option in one place (as mdBook does).
fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_SMART_PUNCTUATION
        | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS
        | Options::ENABLE_STRIKETHROUGH
}

fn sanitiser() -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::default();
    builder
        .add_generic_attributes(["id"])
        .add_tag_attributes("div", ["class", "role", "tabindex", "aria-label"])
        .add_tag_attributes("th", ["scope"])
        .link_rel(Some("noopener noreferrer"));
    builder
}

pub fn parse(path: &Path, source: &str) -> Result<Guide, ContentError> {
    let file = path.display().to_string();
    let err = |line: usize, message: String| ContentError {
        file: file.clone(),
        line,
        message,
    };

    // Front matter: between the first two `+++` lines.
    let rest = source
        .strip_prefix("+++\n")
        .ok_or_else(|| err(1, "the file must start with `+++` front matter".into()))?;
    let end = rest
        .find("\n+++\n")
        .ok_or_else(|| err(1, "front matter is not closed by a `+++` line".into()))?;
    let front_text = &rest[..end];
    let body = &rest[end + "\n+++\n".len()..];
    let body_first_line = front_text.lines().count() + 3;
    let front: FrontMatter = toml::from_str(front_text).map_err(|e| {
        let line = e
            .span()
            .map(|s| front_text[..s.start].lines().count().max(1) + 1)
            .unwrap_or(2);
        err(line, format!("front matter: {}", e.message()))
    })?;
    let expected_slug = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if front.slug != expected_slug {
        return Err(err(
            2,
            format!(
                "slug `{}` differs from the file name `{expected_slug}.md`",
                front.slug
            ),
        ));
    }
    for (name, value) in [
        ("title", &front.title),
        ("description", &front.description),
        ("category", &front.category),
    ] {
        if value.trim().is_empty() {
            return Err(err(2, format!("front matter: `{name}` is empty")));
        }
    }
    let date = front
        .updated
        .date
        .ok_or_else(|| err(2, "front matter: `updated` needs a date".into()))?;
    let updated = time::Month::try_from(date.month)
        .ok()
        .and_then(|m| time::Date::from_calendar_date(i32::from(date.year), m, date.day).ok())
        .ok_or_else(|| err(2, "front matter: `updated` is not a valid date".into()))?;

    let mut guide = Guide {
        slug: front.slug,
        title: typography(&front.title),
        description: typography(&front.description),
        category: front.category,
        order: front.order,
        updated,
        keywords: front.keywords,
        segments: Vec::new(),
        headings: Vec::new(),
        links: Vec::new(),
        figures: Vec::new(),
        credits_after: Vec::new(),
        text: String::new(),
    };

    // Shortcode lines split the body into Markdown chunks and live tables.
    let mut chunk = String::new();
    let mut chunk_line = body_first_line;
    let mut ids = HashSet::new();
    for (i, line) in body.lines().enumerate() {
        // A live table: `{{< bareme >}}`, `plans` or `packs` alone on its line. Any other
        // shortcode is an inline figure.
        let table = line
            .trim()
            .strip_prefix("{{<")
            .and_then(|l| l.strip_suffix(">}}"))
            .and_then(|name| match name.trim() {
                "bareme" => Some(LiveTable::Bareme),
                "plans" => Some(LiveTable::Plans),
                "packs" => Some(LiveTable::Packs),
                _ => None,
            });
        if let Some(table) = table {
            render_chunk(&chunk, chunk_line, &mut guide, &mut ids)
                .map_err(|(line, m)| err(line, m))?;
            guide.segments.push(Segment::Live(table));
            chunk.clear();
            chunk_line = body_first_line + i + 1;
        } else {
            let line = inline_figures(line, &mut guide.figures, &mut guide.credits_after)
                .map_err(|m| err(body_first_line + i, m))?;
            chunk.push_str(&line);
            chunk.push('\n');
        }
    }
    render_chunk(&chunk, chunk_line, &mut guide, &mut ids).map_err(|(line, m)| err(line, m))?;
    guide.text = without_figures(&guide.text);
    Ok(guide)
}

fn render_chunk(
    markdown: &str,
    first_line: usize,
    guide: &mut Guide,
    ids: &mut HashSet<String>,
) -> Result<(), (usize, String)> {
    if markdown.trim().is_empty() {
        return Ok(());
    }
    let line_of = |offset: usize| first_line + markdown[..offset].matches('\n').count();
    let mut events = Vec::new();
    let mut heading: Option<(HeadingLevel, Option<String>, String, usize, usize)> = None;
    let mut in_code = false;
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, id, .. }) => {
                if level == HeadingLevel::H1 {
                    return Err((
                        line_of(range.start),
                        "no `#` title in the body: the page prints the front-matter title".into(),
                    ));
                }
                heading = Some((
                    level,
                    id.map(|i| i.to_string()),
                    String::new(),
                    events.len(),
                    line_of(range.start),
                ));
                events.push(Event::Text(CowStr::Borrowed(""))); // placeholder, replaced at the end
            }
            Event::End(TagEnd::Heading(level)) => {
                let Some((lvl, id, text, at, line)) = heading.take() else {
                    continue;
                };
                if text.contains(FIGURE_START) {
                    return Err((
                        line,
                        "no shortcode in a heading: its anchor would change with the catalog"
                            .into(),
                    ));
                }
                let id = id.unwrap_or_else(|| slugify(&text));
                if !ids.insert(id.clone()) {
                    return Err((line, format!("duplicate heading anchor `#{id}`")));
                }
                events[at] = Event::Start(Tag::Heading {
                    level: lvl,
                    id: Some(id.clone().into()),
                    classes: vec![],
                    attrs: vec![],
                });
                events.push(Event::End(TagEnd::Heading(level)));
                guide.text.push_str(&text);
                guide.text.push_str(".\n");
                guide.headings.push(Heading {
                    level: lvl as u8,
                    id,
                    text,
                });
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                guide.links.push(Link {
                    url: dest_url.to_string(),
                    line: line_of(range.start),
                });
                events.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }));
            }
            Event::Start(Tag::Table(alignments)) => {
                // A scrolling region must be reachable with the keyboard and named (WCAG 2.1.1).
                events.push(Event::Html(CowStr::Borrowed(
                    "<div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-label=\"Tableau\">",
                )));
                events.push(Event::Start(Tag::Table(alignments)));
            }
            Event::End(TagEnd::Table) => {
                events.push(Event::End(TagEnd::Table));
                events.push(Event::Html(CowStr::Borrowed("</div>")));
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                in_code = true;
                events.push(Event::Start(Tag::CodeBlock(kind)));
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code = false;
                events.push(Event::End(TagEnd::CodeBlock));
            }
            Event::Text(text) if !in_code => {
                let fixed = typography(&text);
                if let Some((_, _, heading_text, _, _)) = heading.as_mut() {
                    heading_text.push_str(&fixed);
                } else {
                    guide.text.push_str(&fixed);
                }
                events.push(Event::Text(fixed.into()));
            }
            Event::Code(code) => {
                if let Some((_, _, heading_text, _, _)) = heading.as_mut() {
                    heading_text.push_str(&code);
                } else {
                    guide.text.push_str(&code);
                }
                events.push(Event::Code(code));
            }
            Event::SoftBreak | Event::HardBreak => {
                guide.text.push(' ');
                events.push(event);
            }
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::TableCell) => {
                guide
                    .text
                    .push_str(if matches!(event, Event::End(TagEnd::TableCell)) {
                        " "
                    } else {
                        "\n"
                    });
                events.push(event);
            }
            other => events.push(other),
        }
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    // Raw HTML in Markdown never reaches a reader unsanitised.
    let clean = sanitiser().clean(&html).to_string();
    guide.segments.push(Segment::Html(clean));
    Ok(())
}
