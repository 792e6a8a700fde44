//! Billing documents as PDF: invoices (« Facture », series FA) and credit notes (« Avoir »,
//! series AV, naming the invoice they cancel), drawn from one plain [`Document`] by one
//! renderer. Pure: no database, clock or file; the fonts are compiled in (`layout.rs`), the
//! French words come from `templates/pdf/libelles.txt`, amounts and dates from the portal's
//! formatters (`Cents::euros`, `format::date_fr`).
//!
//! The output is deterministic: the creation date is the document's date and krilla derives the
//! file identifiers from the number and the content, so the same document gives the same bytes.

pub mod layout;

use askama::Template;
use krilla::geom::{PathBuilder, Point};
use krilla::paint::Stroke;

use crate::config::Seller;
use crate::db::billing::Invoice;
use crate::domain::format;
use crate::domain::money::Cents;
use layout::{Fonts, right_aligned, wrap};

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invoice,
    CreditNote,
}

/// A billing document, as printed: everything the renderer needs, nothing it must look up.
#[derive(Debug, Clone)]
pub struct Document {
    pub kind: Kind,
    /// « FA-2026-000001 » or « AV-2026-000001 ».
    pub number: String,
    /// The day it was issued (Europe/Paris).
    pub date: time::Date,
    pub seller: Seller,
    pub buyer: Buyer,
    pub lines: Vec<Line>,
    pub totals: Amounts,
    /// The invoice a credit note cancels.
    pub cancels: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Buyer {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub amounts: Amounts,
}

/// HT, TVA and TTC. A credit note carries them as it records them (negative for money given
/// back): the renderer prints what it is given.
#[derive(Debug, Clone, Copy)]
pub struct Amounts {
    pub ht: Cents,
    pub tva: Cents,
    pub ttc: Cents,
}

impl Document {
    /// The document of a row of `invoices` (series AV is a credit note, which names the invoice
    /// it corrects).
    pub fn of_invoice(invoice: &Invoice, seller: &Seller) -> Self {
        let amounts = Amounts {
            ht: invoice.ht_cents,
            tva: invoice.tva_cents,
            ttc: invoice.ttc_cents,
        };
        Document {
            kind: if invoice.series == "AV" {
                Kind::CreditNote
            } else {
                Kind::Invoice
            },
            number: invoice.number.clone(),
            date: format::paris(invoice.issued_at).date(),
            seller: seller.clone(),
            buyer: Buyer {
                name: invoice.buyer_name.clone(),
                email: invoice.buyer_email.clone(),
            },
            lines: vec![Line {
                label: invoice.label.clone(),
                amounts,
            }],
            totals: amounts,
            cancels: invoice.corrects.clone(),
        }
    }

    /// The file name offered for download: « FA-2026-000001.pdf ».
    pub fn file_name(&self) -> String {
        format!("{}.pdf", self.number)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the embedded fonts cannot be read")]
    Fonts,
    #[error("the document's words")]
    Words(#[from] askama::Error),
    #[error("krilla: {0}")]
    Krilla(String),
}

/// One word or sentence of the document; its French is in `templates/pdf/libelles.txt`, whose
/// exhaustive `match` makes a variant without its words a compile error.
enum Word<'a> {
    Title { kind: Kind, number: &'a str },
    Issued { kind: Kind, date: &'a str },
    Cancels { invoice: &'a str },
    Seller,
    Buyer,
    Siren { siren: &'a str },
    VatNumber { number: &'a str },
    Designation,
    Ht,
    Tva,
    Ttc,
    Total,
    Settled { kind: Kind, date: &'a str },
}

#[derive(Template)]
#[template(path = "pdf/libelles.txt")]
struct WordText<'a> {
    word: Word<'a>,
}

fn say(word: Word<'_>) -> Result<String, PdfError> {
    Ok(WordText { word }.render()?)
}

/// A4, in points; the origin is the top left corner, y grows downwards, text sits on its baseline.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const RIGHT: f32 = PAGE_WIDTH - MARGIN;
const BOTTOM: f32 = PAGE_HEIGHT - MARGIN;
const TEXT: f32 = 10.0;
const LEADING: f32 = 14.0;
const TITLE: f32 = 20.0;
const HEADING: f32 = 11.0;
/// The buyer's column.
const SECOND_COLUMN: f32 = 310.0;
const COLUMN_WIDTH: f32 = SECOND_COLUMN - MARGIN - 24.0;
/// The right edges of the amount columns (HT, TVA, TTC) and the designation's width.
const AMOUNT_EDGES: [f32; 3] = [RIGHT - 184.0, RIGHT - 92.0, RIGHT];
const DESIGNATION_WIDTH: f32 = AMOUNT_EDGES[0] - 80.0 - MARGIN;

/// What is drawn, placed: a piece of text or a horizontal rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: String,
    },
    Rule {
        from: f32,
        to: f32,
        y: f32,
    },
}

/// Places marks top to bottom, starting a new page when the next block would not fit.
struct Pages<'f> {
    fonts: &'f Fonts,
    pages: Vec<Vec<Mark>>,
    y: f32,
}

impl<'f> Pages<'f> {
    fn new(fonts: &'f Fonts) -> Self {
        Self {
            fonts,
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    /// Whether `height` more points fit on this page; if not, a new page is started.
    fn room_for(&mut self, height: f32) -> bool {
        if self.y + height <= BOTTOM {
            return true;
        }
        self.pages.push(Vec::new());
        self.y = MARGIN;
        false
    }

    fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(page) = self.pages.last_mut() {
            page.push(Mark::Text {
                x,
                y,
                size,
                bold,
                text: text.to_owned(),
            });
        }
    }

    /// `text` ending at `right_edge`.
    fn text_right(&mut self, right_edge: f32, y: f32, size: f32, bold: bool, text: &str) {
        let width = self.fonts.face(bold).width(text, size);
        self.text(right_aligned(right_edge, width), y, size, bold, text);
    }

    fn rule(&mut self, y: f32) {
        if let Some(page) = self.pages.last_mut() {
            page.push(Mark::Rule {
                from: MARGIN,
                to: RIGHT,
                y,
            });
        }
    }

    /// `text` wrapped to `width`, one line under the other from the baseline `y`; the baseline
    /// after the last line.
    fn paragraph(&mut self, x: f32, mut y: f32, width: f32, bold: bool, text: &str) -> f32 {
        let face = self.fonts.face(bold);
        for line in wrap(text, width, |s| face.width(s, TEXT)) {
            self.text(x, y, TEXT, bold, &line);
            y += LEADING;
        }
        y
    }
}

/// The words of `doc`, rendered once.
struct Words {
    title: String,
    issued: String,
    cancels: Option<String>,
    seller: String,
    buyer: String,
    siren: String,
    vat_number: String,
    columns: [String; 4],
    total: String,
    settled: String,
}

impl Words {
    fn of(doc: &Document) -> Result<Self, PdfError> {
        let date = format::date_fr(doc.date);
        Ok(Self {
            title: say(Word::Title {
                kind: doc.kind,
                number: &doc.number,
            })?,
            issued: say(Word::Issued {
                kind: doc.kind,
                date: &date,
            })?,
            cancels: match &doc.cancels {
                Some(invoice) => Some(say(Word::Cancels { invoice })?),
                None => None,
            },
            seller: say(Word::Seller)?,
            buyer: say(Word::Buyer)?,
            siren: say(Word::Siren {
                siren: &doc.seller.siren,
            })?,
            vat_number: say(Word::VatNumber {
                number: &doc.seller.vat_number,
            })?,
            columns: [
                say(Word::Designation)?,
                say(Word::Ht)?,
                say(Word::Tva)?,
                say(Word::Ttc)?,
            ],
            total: say(Word::Total)?,
            settled: say(Word::Settled {
                kind: doc.kind,
                date: &date,
            })?,
        })
    }
}

/// Places every mark of `doc`, page by page.
fn lay_out(doc: &Document, words: &Words, fonts: &Fonts) -> Vec<Vec<Mark>> {
    let mut p = Pages::new(fonts);
    p.y = MARGIN + TITLE;
    p.text(MARGIN, p.y, TITLE, true, &words.title);
    p.y += 24.0;
    p.text(MARGIN, p.y, TEXT, false, &words.issued);
    if let Some(cancels) = &words.cancels {
        p.y += LEADING;
        p.text(MARGIN, p.y, TEXT, false, cancels);
    }

    // Seller and buyer, side by side.
    let top = p.y + 36.0;
    p.text(MARGIN, top, HEADING, true, &words.seller);
    p.text(SECOND_COLUMN, top, HEADING, true, &words.buyer);
    let mut left = top + 18.0;
    for part in [
        &doc.seller.name,
        &doc.seller.address,
        &words.siren,
        &words.vat_number,
    ] {
        left = p.paragraph(MARGIN, left, COLUMN_WIDTH, false, part);
    }
    let mut right = top + 18.0;
    for part in [&doc.buyer.name, &doc.buyer.email] {
        right = p.paragraph(SECOND_COLUMN, right, RIGHT - SECOND_COLUMN, false, part);
    }
    p.y = left.max(right) + 24.0;

    // The table: its header (again on each new page), the lines, the totals.
    let header = |p: &mut Pages<'_>| {
        p.text(MARGIN, p.y, TEXT, true, &words.columns[0]);
        for (edge, title) in AMOUNT_EDGES.iter().zip(&words.columns[1..]) {
            p.text_right(*edge, p.y, TEXT, true, title);
        }
        p.rule(p.y + 6.0);
        p.y += 6.0 + LEADING + 2.0;
    };
    header(&mut p);
    for line in &doc.lines {
        let face = fonts.face(false);
        let label = wrap(&line.label, DESIGNATION_WIDTH, |s| face.width(s, TEXT));
        let height = LEADING * label.len().max(1) as f32;
        if !p.room_for(height) {
            p.y += TEXT;
            header(&mut p);
        }
        amounts(&mut p, &line.amounts, false);
        for text in &label {
            p.text(MARGIN, p.y, TEXT, false, text);
            p.y += LEADING;
        }
    }
    if !p.room_for(2.0 * LEADING + 24.0) {
        p.y += TEXT;
    }
    p.rule(p.y - LEADING + 6.0);
    p.y += 4.0;
    p.text(MARGIN, p.y, TEXT, true, &words.total);
    amounts(&mut p, &doc.totals, true);
    p.y += 2.0 * LEADING + 8.0;
    p.text(MARGIN, p.y, TEXT, false, &words.settled);
    p.pages
}

/// HT, TVA and TTC on the current baseline, each ending on its column's edge.
fn amounts(p: &mut Pages<'_>, amounts: &Amounts, bold: bool) {
    for (edge, cents) in AMOUNT_EDGES
        .iter()
        .zip([amounts.ht, amounts.tva, amounts.ttc])
    {
        p.text_right(*edge, p.y, TEXT, bold, &cents.euros());
    }
}

/// The PDF of `doc`.
pub fn render(doc: &Document) -> Result<Vec<u8>, PdfError> {
    let fonts = Fonts::embedded().ok_or(PdfError::Fonts)?;
    let words = Words::of(doc)?;
    let pages = lay_out(doc, &words, &fonts);

    let mut pdf = krilla::Document::new();
    let created = krilla::metadata::DateTime::new(doc.date.year().clamp(1, 9999) as u16)
        .month(u8::from(doc.date.month()))
        .day(doc.date.day());
    pdf.set_metadata(
        krilla::metadata::Metadata::new()
            .title(words.title.clone())
            .authors(vec![doc.seller.name.clone()])
            .creator("NanoClip".to_owned())
            .language("fr-FR".to_owned())
            .creation_date(created)
            .document_id(doc.number.clone()),
    );
    for marks in &pages {
        let mut page = pdf.start_page_with(krilla::page::PageSettings::default());
        let mut surface = page.surface();
        surface.set_fill(Some(krilla::paint::Fill::default()));
        for mark in marks {
            match mark {
                Mark::Text {
                    x,
                    y,
                    size,
                    bold,
                    text,
                } => {
                    let face = fonts.face(*bold);
                    surface.draw_glyphs(
                        Point::from_xy(*x, *y),
                        &face.shape(text),
                        face.font.clone(),
                        text,
                        *size,
                        false,
                    );
                }
                Mark::Rule { from, to, y } => {
                    let mut path = PathBuilder::new();
                    path.move_to(*from, *y);
                    path.line_to(*to, *y);
                    if let Some(path) = path.finish() {
                        surface.set_fill(None);
                        surface.set_stroke(Some(Stroke {
                            width: 0.6,
                            ..Stroke::default()
                        }));
                        surface.draw_path(&path);
                        surface.set_stroke(None);
                        surface.set_fill(Some(krilla::paint::Fill::default()));
                    }
                }
            }
        }
        surface.finish();
        page.finish();
    }
    pdf.finish().map_err(|e| PdfError::Krilla(e.to_string()))
}

#[cfg(test)]
mod tests;
