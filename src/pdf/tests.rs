use time::macros::date;

use super::*;

fn seller() -> Seller {
    Seller {
        name: "NanoClip SAS".into(),
        address: "Bâtiment B, 12 rue de l’Église Saint-Jean-Baptiste, 69002 Lyon".into(),
        siren: "123\u{a0}456\u{a0}789".into(),
        vat_number: "FR12123456789".into(),
    }
}

fn invoice() -> Document {
    let amounts = Amounts {
        ht: Cents(2750),
        tva: Cents(550),
        ttc: Cents(3300),
    };
    Document {
        kind: Kind::Invoice,
        number: "FA-2026-000001".into(),
        date: date!(2026 - 11 - 24),
        seller: seller(),
        buyer: Buyer {
            name: "Paroisse Sainte-Thérèse".into(),
            email: "tresorier@exemple.fr".into(),
        },
        lines: vec![Line {
            label: "Pack 30 crédits".into(),
            amounts,
        }],
        totals: amounts,
        cancels: None,
    }
}

/// A credit note giving back a large order: negative amounts, thousands, the invoice cancelled.
fn credit_note() -> Document {
    let amounts = Amounts {
        ht: Cents(-102_880),
        tva: Cents(-20_576),
        ttc: Cents(-123_456),
    };
    Document {
        kind: Kind::CreditNote,
        number: "AV-2026-000001".into(),
        date: date!(2026 - 12 - 01),
        cancels: Some("FA-2026-000042".into()),
        lines: vec![Line {
            label: "Remboursement du Pack 100 crédits acheté le 24\u{a0}novembre 2026 \
                    (crédits inutilisés, demande du trésorier)"
                .into(),
            amounts,
        }],
        totals: amounts,
        ..invoice()
    }
}

fn texts(pages: &[Vec<Mark>]) -> Vec<String> {
    pages
        .iter()
        .flatten()
        .filter_map(|m| match m {
            Mark::Text { text, .. } => Some(text.clone()),
            Mark::Rule { .. } => None,
        })
        .collect()
}

fn marks_of(doc: &Document) -> Vec<Vec<Mark>> {
    let fonts = Fonts::embedded().unwrap();
    lay_out(doc, &Words::of(doc).unwrap(), &fonts)
}

/// The text poppler's `pdftotext` reads from `pdf`. Poppler turns every kind of space into
/// U+0020 (the PDF's own text map keeps U+00A0 and U+202F: `tests/web/achats.rs` reads it), so
/// the no-break spaces are compared as spaces here: see [`spaces`].
fn pdftotext(pdf: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("nanoclip-pdf-{}.pdf", uuid::Uuid::new_v4()));
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output();
    let _ = std::fs::remove_file(&path);
    let out = out.expect("pdftotext runs (poppler-utils; scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `text` with its no-break spaces as poppler gives them.
fn spaces(text: &str) -> String {
    text.replace(['\u{a0}', '\u{202f}'], " ")
}

#[test]
fn an_invoice_says_who_sells_who_buys_what_and_how_much_in_french() {
    let texts = texts(&marks_of(&invoice()));
    for expected in [
        "Facture FA-2026-000001",
        "Émise le 24\u{a0}novembre 2026",
        "Vendeur",
        "Client",
        "NanoClip SAS",
        "SIREN 123\u{a0}456\u{a0}789",
        "TVA intracommunautaire FR12123456789",
        "Paroisse Sainte-Thérèse",
        "tresorier@exemple.fr",
        "Désignation",
        "TVA 20\u{a0}%",
        "Pack 30 crédits",
        "27,50\u{a0}€",
        "5,50\u{a0}€",
        "33,00\u{a0}€",
        "Total",
        "Payée le 24\u{a0}novembre 2026.",
    ] {
        assert!(
            texts.iter().any(|t| t == expected),
            "{expected:?} in {texts:?}"
        );
    }
    assert!(!texts.iter().any(|t| t.contains("Annule")), "{texts:?}");
}

#[test]
fn amounts_and_their_column_titles_end_on_the_column_edges() {
    let fonts = Fonts::embedded().unwrap();
    let pages = marks_of(&credit_note());
    let mut ends = Vec::new();
    for mark in pages.iter().flatten() {
        if let Mark::Text {
            x,
            size,
            bold,
            text,
            ..
        } = mark
            && (text.ends_with('€') || ["HT", "TVA 20\u{a0}%", "TTC"].contains(&text.as_str()))
        {
            ends.push((text.clone(), x + fonts.face(*bold).width(text, *size)));
        }
    }
    // Three titles, three amounts on the line, three totals.
    assert_eq!(ends.len(), 9, "{ends:?}");
    for (i, (text, end)) in ends.iter().enumerate() {
        let edge = AMOUNT_EDGES[i % 3];
        assert!(
            (end - edge).abs() < 0.01,
            "{text} ends at {end}, not {edge}"
        );
    }
}

#[test]
fn a_long_designation_and_address_wrap_inside_their_columns() {
    let fonts = Fonts::embedded().unwrap();
    let pages = marks_of(&credit_note());
    assert_eq!(pages.len(), 1);
    let y_of = |wanted: &str| {
        pages[0]
            .iter()
            .find_map(|m| match m {
                Mark::Text { y, text, .. } if text == wanted => Some(*y),
                _ => None,
            })
            .unwrap()
    };
    let (seller, table, total) = (y_of("Vendeur"), y_of("Désignation"), y_of("Total"));
    // Regular text in the left column: the seller's details, then the designation's lines.
    let mut seller_lines = Vec::new();
    let mut designation_lines = Vec::new();
    for mark in &pages[0] {
        if let Mark::Text {
            x,
            y,
            size,
            bold: false,
            text,
        } = mark
            && *x == MARGIN
        {
            let width = fonts.regular.width(text, *size);
            if *y > seller && *y < table {
                assert!(width <= COLUMN_WIDTH, "{text} is {width} wide");
                seller_lines.push(text.clone());
            } else if *y > table && *y < total {
                assert!(width <= DESIGNATION_WIDTH, "{text} is {width} wide");
                designation_lines.push(text.clone());
            }
        }
    }
    assert!(
        seller_lines.len() >= 5,
        "the address takes two lines or more: {seller_lines:?}"
    );
    assert!(designation_lines.len() >= 2, "{designation_lines:?}");
    assert_eq!(
        designation_lines.join(" "),
        credit_note().lines[0].label,
        "nothing lost in the wrapping"
    );
}

#[test]
fn many_lines_continue_on_a_new_page_with_the_column_titles_again() {
    let mut doc = invoice();
    doc.lines = (1..=60)
        .map(|i| Line {
            label: format!("Génération n°\u{a0}{i}"),
            amounts: doc.totals,
        })
        .collect();
    let pages = marks_of(&doc);
    assert!(pages.len() >= 2, "{} pages", pages.len());
    for page in &pages {
        assert!(
            page.iter()
                .any(|m| matches!(m, Mark::Text { text, .. } if text == "Désignation")),
            "each page has the column titles"
        );
        for mark in page {
            if let Mark::Text { y, text, .. } = mark {
                assert!(*y <= BOTTOM && *y >= MARGIN, "{text} at {y}");
            }
        }
    }
    let all = texts(&pages);
    assert!(all.iter().any(|t| t == "Génération n°\u{a0}60"));
    assert!(all.iter().any(|t| t == "Payée le 24\u{a0}novembre 2026."));
}

#[test]
fn the_invoice_pdf_has_its_words_accents_euros_and_no_break_spaces() {
    let pdf = render(&invoice()).unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "{:?}", &pdf[..8]);
    assert!(
        pdf.len() < 60_000,
        "the fonts are subset: {} bytes",
        pdf.len()
    );
    let text = pdftotext(&pdf);
    for expected in [
        "Facture FA-2026-000001",
        "Émise le 24\u{a0}novembre 2026",
        "SIREN 123\u{a0}456\u{a0}789",
        "Paroisse Sainte-Thérèse",
        "Pack 30 crédits",
        "27,50\u{a0}€",
        "5,50\u{a0}€",
        "33,00\u{a0}€",
        "TVA 20\u{a0}%",
        "Payée le",
    ] {
        assert!(text.contains(&spaces(expected)), "{expected:?} in {text:?}");
    }
}

#[test]
fn a_credit_note_renders_with_the_same_renderer() {
    let pdf = render(&credit_note()).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdftotext(&pdf);
    for expected in [
        "Avoir AV-2026-000001",
        "Émis le 1er\u{a0}décembre 2026",
        "Annule la facture FA-2026-000042",
        "−1\u{202f}234,56\u{a0}€",
        "−205,76\u{a0}€",
        "Remboursé le 1er\u{a0}décembre 2026.",
    ] {
        assert!(text.contains(&spaces(expected)), "{expected:?} in {text:?}");
    }
    assert!(
        !text.contains("Facture") && !text.contains("Payée"),
        "{text}"
    );
}

#[test]
fn the_same_document_gives_the_same_bytes() {
    assert_eq!(render(&invoice()).unwrap(), render(&invoice()).unwrap());
    assert_ne!(render(&invoice()).unwrap(), render(&credit_note()).unwrap());
}

#[test]
fn a_row_of_invoices_becomes_its_document_dated_in_paris() {
    let row = Invoice {
        id: uuid::Uuid::nil(),
        number: "FA-2027-000001".into(),
        series: "FA".into(),
        order_id: uuid::Uuid::nil(),
        organisation_id: uuid::Uuid::nil(),
        buyer_name: "Paroisse".into(),
        buyer_email: "p@exemple.fr".into(),
        label: "Pack 10 crédits".into(),
        ht_cents: Cents(1000),
        tva_cents: Cents(200),
        ttc_cents: Cents(1200),
        // 23:30 UTC on New Year's Eve is already 2027 in Paris, like the number.
        issued_at: time::macros::datetime!(2026-12-31 23:30 UTC),
    };
    let doc = Document::of_invoice(&row, &seller());
    assert_eq!(doc.kind, Kind::Invoice);
    assert_eq!(doc.date, date!(2027 - 01 - 01));
    assert_eq!(doc.file_name(), "FA-2027-000001.pdf");
    assert_eq!(doc.lines.len(), 1);
    assert_eq!(doc.totals.ttc, Cents(1200));
    let credit = Document::of_invoice(
        &Invoice {
            series: "AV".into(),
            ..row
        },
        &seller(),
    );
    assert_eq!(credit.kind, Kind::CreditNote);
}
