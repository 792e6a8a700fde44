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
fn invoices_and_credit_notes_render_as_small_pdfs() {
    for doc in [invoice(), credit_note()] {
        let pdf = render(&doc).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{:?}", &pdf[..8]);
        // The fonts are subset (each whole face is over 700 KB).
        assert!(pdf.len() < 60_000, "{}: {} bytes", doc.number, pdf.len());
    }
    // What the pages say, read back with poppler and through the fonts' text maps: tests/web/achats.rs.
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
        corrects: None,
    };
    let doc = Document::of_invoice(&row, &seller());
    assert_eq!(doc.kind, Kind::Invoice);
    assert_eq!(doc.date, date!(2027 - 01 - 01));
    assert_eq!(doc.file_name(), "FA-2027-000001.pdf");
    assert_eq!(doc.lines.len(), 1);
    assert_eq!(doc.totals.ttc, Cents(1200));
    assert_eq!(doc.cancels, None);
    let credit = Document::of_invoice(
        &Invoice {
            number: "AV-2027-000001".into(),
            series: "AV".into(),
            corrects: Some("FA-2027-000001".into()),
            ..row
        },
        &seller(),
    );
    assert_eq!(credit.kind, Kind::CreditNote);
    assert_eq!(credit.cancels.as_deref(), Some("FA-2027-000001"));
}
