//! Scores the help-centre search on the TUNING half of the readers' questions (#15) and prints
//! every question it does not put first, with the three first guides and their scores. The
//! frozen half is never read here: it is scored once, after tuning, by
//! `aide::the_search_is_scored_on_readers_questions_written_before_tuning`.
//!
//! Run: `cargo run --example search_tuning` (`-- --all` also prints the questions it gets right;
//! `-- --variants` asks each question without accents and with two letters of its longest word
//! swapped, a check that the tuning generalises; `-- --stdin` reads other slug<TAB>question
//! lines from the standard input instead).

use std::path::Path;

use nanoclip::content::Library;

fn main() -> anyhow::Result<()> {
    let all = std::env::args().any(|a| a == "--all");
    let variants = std::env::args().any(|a| a == "--variants");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let library = Library::load(&root.join("content"))?;
    let text = if std::env::args().any(|a| a == "--stdin") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(root.join("tests/data/search-questions/tuning.tsv"))?
    };
    let (mut n, mut top1, mut top3, mut rr) = (0usize, 0usize, 0usize, 0f64);
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let Some((expected, question)) = line.split_once('\t') else {
            anyhow::bail!("not slug<TAB>question: {line}");
        };
        let question = &variant(question, variants);
        let hits = library.search.search(question, 10);
        let rank = hits.iter().position(|h| h.slug == expected);
        n += 1;
        top1 += usize::from(rank == Some(0));
        top3 += usize::from(rank.is_some_and(|r| r < 3));
        rr += rank.map_or(0.0, |r| 1.0 / (r as f64 + 1.0));
        if rank != Some(0) || all {
            let found: Vec<String> = hits
                .iter()
                .take(3)
                .map(|h| format!("{} {:.1}", h.slug, h.score))
                .collect();
            nanoclip::cli::say([format!(
                "{} « {question} » → {expected} at {}: {}",
                if rank == Some(0) { "ok  " } else { "MISS" },
                rank.map_or("-".to_owned(), |r| (r + 1).to_string()),
                found.join(" · ")
            )])?;
        }
    }
    let n_f = n as f64;
    nanoclip::cli::say([format!(
        "tuning.tsv: {n} questions, top-1 {:.3}, top-3 {:.3}, MRR {:.3}",
        top1 as f64 / n_f,
        top3 as f64 / n_f,
        rr / n_f
    )])?;
    Ok(())
}

/// The question without accents, with the middle letters of its longest word swapped.
fn variant(question: &str, on: bool) -> String {
    if !on {
        return question.to_owned();
    }
    let folded = nanoclip::content::text::fold(question);
    let Some(longest) = folded.split_whitespace().max_by_key(|w| w.len()) else {
        return folded;
    };
    let mut letters: Vec<char> = longest.chars().collect();
    let middle = letters.len() / 2;
    if letters.len() >= 5 {
        letters.swap(middle - 1, middle);
    }
    let swapped: String = letters.into_iter().collect();
    folded.replacen(longest, &swapped, 1)
}
