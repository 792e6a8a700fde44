//! Reading the portal's PDFs back in tests, two ways:
//!
//! - [`pdftotext`]: poppler's reader (another program's view of the file). Poppler turns every
//!   kind of space into U+0020, so it cannot show the no-break spaces;
//! - [`shown_text`]: each piece of text the pages draw, decoded through the fonts' `ToUnicode`
//!   maps, which is what a reader copying the text gets: there U+00A0 and U+202F must be kept.
//!   It reads the files krilla writes (plain objects, Flate streams, Identity-H fonts with
//!   two-byte codes in literal strings), not any PDF.

use std::collections::HashMap;
use std::io::Read as _;

/// The text of `pdf` as poppler's `pdftotext` reads it (layout order, UTF-8).
pub fn pdftotext(pdf: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("nanoclip-pdf-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("document.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.expect("pdftotext runs (poppler-utils: scripts/test installs it)");
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("pdftotext writes UTF-8")
}

/// `text` with its no-break spaces as poppler gives them (plain spaces).
pub fn as_poppler_reads(text: &str) -> String {
    text.replace(['\u{a0}', '\u{202f}'], " ")
}

struct Object {
    dict: String,
    stream: Option<Vec<u8>>,
}

fn objects(pdf: &[u8]) -> HashMap<u32, Object> {
    let mut out = HashMap::new();
    let mut rest = pdf;
    let mut offset = 0;
    while let Some(at) = find(rest, b" 0 obj") {
        // The object number is the digits just before « 0 obj ».
        let start = rest[..at]
            .iter()
            .rposition(|b| !b.is_ascii_digit())
            .map_or(0, |p| p + 1);
        let number: u32 = std::str::from_utf8(&rest[start..at])
            .unwrap()
            .parse()
            .unwrap();
        let body = &rest[at + 6..];
        let end = find(body, b"endobj").expect("endobj");
        let body = &body[..end];
        let (dict, stream) = match find(body, b"stream") {
            Some(s) if !body[..s].ends_with(b"end") => {
                let dict = String::from_utf8_lossy(&body[..s]).into_owned();
                let mut data = &body[s + 6..];
                if data.starts_with(b"\r\n") {
                    data = &data[2..];
                } else if data.starts_with(b"\n") {
                    data = &data[1..];
                }
                let data = &data[..find(data, b"endstream").expect("endstream")];
                let stream = if dict.contains("/FlateDecode") {
                    let mut inflated = Vec::new();
                    flate2::read::ZlibDecoder::new(data)
                        .read_to_end(&mut inflated)
                        .expect("a Flate stream");
                    inflated
                } else {
                    data.to_vec()
                };
                (dict, Some(stream))
            }
            _ => (String::from_utf8_lossy(body).into_owned(), None),
        };
        out.insert(number, Object { dict, stream });
        offset += at + 6 + end;
        rest = &pdf[offset..];
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The number of the object `key` refers to in `dict` (`/key 12 0 R`).
fn reference(dict: &str, key: &str) -> Option<u32> {
    let at = dict.find(&format!("/{key} "))? + key.len() + 2;
    dict[at..].split(' ').next()?.parse().ok()
}

/// A `ToUnicode` CMap's `bfchar` entries: code → text.
fn to_unicode(cmap: &str) -> HashMap<u16, String> {
    let mut map = HashMap::new();
    for line in cmap.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() == 2 && parts.iter().all(|p| p.starts_with('<') && p.ends_with('>')) {
            let code = u16::from_str_radix(parts[0].trim_matches(['<', '>']), 16).unwrap();
            let hex = parts[1].trim_matches(['<', '>']);
            let units: Vec<u16> = (0..hex.len())
                .step_by(4)
                .map(|i| u16::from_str_radix(&hex[i..i + 4], 16).unwrap())
                .collect();
            map.insert(code, String::from_utf16(&units).unwrap());
        }
    }
    map
}

/// A literal string's bytes, `(` already read; the position after its `)`.
fn literal(content: &[u8], mut i: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut depth = 0;
    while i < content.len() {
        let b = content[i];
        i += 1;
        match b {
            b'\\' => {
                let e = content[i];
                i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'0'..=b'7' => {
                        let mut value = u32::from(e - b'0');
                        for _ in 0..2 {
                            match content.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    value = value * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push(value as u8);
                    }
                    b'\n' => {}
                    other => out.push(other),
                }
            }
            b'(' => {
                depth += 1;
                out.push(b);
            }
            b')' if depth == 0 => return (out, i),
            b')' => {
                depth -= 1;
                out.push(b);
            }
            _ => out.push(b),
        }
    }
    panic!("unterminated string")
}

/// Each text-showing operation of every page (`Tj` or `TJ`), decoded through its font's map.
pub fn shown_text(pdf: &[u8]) -> Vec<String> {
    let objects = objects(pdf);
    let mut shown = Vec::new();
    let mut pages: Vec<_> = objects
        .iter()
        .filter(|(_, o)| o.dict.contains("/Type/Page/") || o.dict.contains("/Type/Page>>"))
        .collect();
    pages.sort_by_key(|(n, _)| **n);
    for (_, page) in pages {
        let resources = &objects[&reference(&page.dict, "Resources").expect("Resources")].dict;
        let fonts_at = resources.find("/Font<<").expect("fonts") + 7;
        let fonts = &resources[fonts_at..fonts_at + resources[fonts_at..].find(">>").unwrap()];
        let maps: HashMap<String, HashMap<u16, String>> = fonts
            .split('/')
            .filter(|f| !f.is_empty())
            .map(|entry| {
                let name = entry.split(' ').next().unwrap().to_owned();
                let font: u32 = entry.split(' ').nth(1).unwrap().parse().unwrap();
                let cmap = reference(&objects[&font].dict, "ToUnicode").expect("ToUnicode");
                let text = String::from_utf8_lossy(objects[&cmap].stream.as_ref().unwrap());
                (name, to_unicode(&text))
            })
            .collect();
        let contents = reference(&page.dict, "Contents").expect("Contents");
        let content = objects[&contents].stream.as_ref().unwrap();
        let mut font = String::new();
        let mut piece = String::new();
        let mut last_name = String::new();
        let mut i = 0;
        while i < content.len() {
            match content[i] {
                b'(' => {
                    let (bytes, next) = literal(content, i + 1);
                    i = next;
                    for pair in bytes.chunks(2) {
                        let code = u16::from_be_bytes([pair[0], pair[1]]);
                        piece.push_str(&maps[&font][&code]);
                    }
                }
                b'/' => {
                    let end = content[i + 1..]
                        .iter()
                        .position(|b| !b.is_ascii_alphanumeric())
                        .map_or(content.len(), |p| i + 1 + p);
                    last_name = String::from_utf8_lossy(&content[i + 1..end]).into_owned();
                    i = end;
                }
                b'T' if content[i + 1..].starts_with(b"f") => {
                    font = last_name.clone();
                    i += 2;
                }
                b'T' if content[i + 1..].starts_with(b"j")
                    || content[i + 1..].starts_with(b"J") =>
                {
                    shown.push(std::mem::take(&mut piece));
                    i += 2;
                }
                _ => i += 1,
            }
        }
    }
    shown
}
