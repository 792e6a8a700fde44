//! Trains the search's learned half (`src/content/question_model.rs`) and writes
//! `content/search-model.tsv`. The training questions are in two rounds by different writers,
//! `tests/data/search-questions/training.tsv` and `training-2.tsv`.
//!
//! - `cargo run --release --example train_search -- --mix 5`: trains on both rounds and the
//!   tuning half, and writes the weights with that mix (what `content/search-model.tsv` holds).
//! - `-- --sweep --on training-2.tsv --with-tuning`: trains on the first round and the tuning
//!   half, and scores the second round (writers the model did not learn from) with several
//!   mixes: how the settings were chosen. Without `--on`, it scores the tuning half. Writes
//!   nothing.
//! - `-- --cv`: five-fold cross-validation over the training questions. Writes nothing.
//! - `--epochs N`, `--rate R`, `--l2 L` try other settings than `question_model::TRAINING`.
//!
//! The frozen half is never read here.

use std::path::Path;
use std::sync::Arc;

use nanoclip::content::Library;
use nanoclip::content::question_model::{self, Example, QuestionModel, TRAINING, Training};

fn questions(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let Some((slug, question)) = line.split_once('\t') else {
            anyhow::bail!("{}: not slug<TAB>question: {line}", path.display());
        };
        out.push((slug.to_owned(), question.to_owned()));
    }
    Ok(out)
}

fn examples(
    library: &Library,
    classes: &[String],
    labelled: &[(String, String)],
) -> anyhow::Result<Vec<Example>> {
    labelled
        .iter()
        .map(|(slug, question)| {
            let class = classes
                .iter()
                .position(|c| c == slug)
                .ok_or_else(|| anyhow::anyhow!("no guide `{slug}` ({question})"))?;
            let (words, stems, intent) = library.search.question_words(question);
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let stems: Vec<&str> = stems.iter().map(String::as_str).collect();
            Ok(Example {
                features: question_model::feature_names(&words, &stems, intent.as_deref()),
                class,
            })
        })
        .collect()
}

/// Top-1, top-3 and MRR of the library's search on these questions.
fn score(library: &Library, labelled: &[(String, String)]) -> (f64, f64, f64) {
    let (mut top1, mut top3, mut rr) = (0usize, 0usize, 0f64);
    for (slug, question) in labelled {
        let hits = library.search.search(question, 10);
        let rank = hits.iter().position(|h| &h.slug == slug);
        top1 += usize::from(rank == Some(0));
        top3 += usize::from(rank.is_some_and(|r| r < 3));
        rr += rank.map_or(0.0, |r| 1.0 / (r as f64 + 1.0));
    }
    let n = labelled.len().max(1) as f64;
    (top1 as f64 / n, top3 as f64 / n, rr / n)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("tests/data/search-questions");
    let mut library = Library::load(&root.join("content"))?;
    let classes: Vec<String> = library.guides.iter().map(|g| g.slug.clone()).collect();
    // Two rounds of training questions, by different writers: the second round also tells how
    // the first carries over to new writers (`--sweep --on training-2.tsv`).
    let first_round = questions(&data.join("training.tsv"))?;
    let second_round = questions(&data.join("training-2.tsv"))?;
    let on = args
        .iter()
        .position(|a| a == "--on")
        .and_then(|i| args.get(i + 1));
    let training = match on {
        Some(_) => first_round.clone(),
        None => [first_round.clone(), second_round.clone()].concat(),
    };
    let tuning = questions(&data.join("tuning.tsv"))?;
    let setting = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f32>().ok())
    };
    let defaults = TRAINING;
    let settings = Training {
        epochs: setting("--epochs").map_or(defaults.epochs, |e| e as usize),
        rate: setting("--rate").unwrap_or(defaults.rate),
        l2: setting("--l2").unwrap_or(defaults.l2),
    };

    if args.iter().any(|a| a == "--cv") {
        // Five folds of the training questions: trained on four, the whole search scored on
        // the fifth (questions neither the rules nor the model saw).
        let mixes = [0.0f32, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0];
        let mut sums = vec![(0.0, 0.0, 0.0); mixes.len()];
        for fold in 0..5 {
            let (held, kept): (Vec<_>, Vec<_>) = training
                .iter()
                .enumerate()
                .partition(|(i, _)| i % 5 == fold);
            let held: Vec<(String, String)> = held.into_iter().map(|(_, q)| q.clone()).collect();
            let mut kept: Vec<(String, String)> =
                kept.into_iter().map(|(_, q)| q.clone()).collect();
            if args.iter().any(|a| a == "--with-tuning") {
                kept.extend(tuning.iter().cloned());
            }
            let trained =
                question_model::train(&classes, &examples(&library, &classes, &kept)?, settings);
            for (k, mix) in mixes.iter().enumerate() {
                let model = QuestionModel::from_tsv(&trained.to_tsv(*mix, ""))?;
                library.search = library.search.with_model(Arc::new(model));
                let (top1, top3, mrr) = score(&library, &held);
                sums[k].0 += top1 / 5.0;
                sums[k].1 += top3 / 5.0;
                sums[k].2 += mrr / 5.0;
            }
        }
        nanoclip::cli::say([format!(
            "5-fold cross-validation on {} training questions:",
            training.len()
        )])?;
        for (mix, (top1, top3, mrr)) in mixes.iter().zip(sums) {
            nanoclip::cli::say([format!(
                "  mix {mix:>5}: top-1 {top1:.3}  top-3 {top3:.3}  MRR {mrr:.3}"
            )])?;
        }
        return Ok(());
    }

    if args.iter().any(|a| a == "--sweep") {
        let mut learnt = training.clone();
        if args.iter().any(|a| a == "--with-tuning") {
            learnt.extend(tuning.iter().cloned());
        }
        let trained =
            question_model::train(&classes, &examples(&library, &classes, &learnt)?, settings);
        let scored = match on {
            Some(file) if file.contains("frozen") => anyhow::bail!("never the frozen half"),
            Some(file) => questions(&data.join(file))?,
            None => tuning.clone(),
        };
        nanoclip::cli::say([format!(
            "trained on {} questions; scored on {} ({} questions):",
            learnt.len(),
            on.map_or("tuning.tsv", String::as_str),
            scored.len()
        )])?;
        let tuning = scored;
        for mix in [0.0f32, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0] {
            let model = QuestionModel::from_tsv(&trained.to_tsv(mix, ""))?;
            library.search = library.search.with_model(Arc::new(model));
            let (top1, top3, mrr) = score(&library, &tuning);
            nanoclip::cli::say([format!(
                "  mix {mix:>5}: top-1 {top1:.3}  top-3 {top3:.3}  MRR {mrr:.3}"
            )])?;
        }
        return Ok(());
    }

    let mix: f32 = args
        .iter()
        .position(|a| a == "--mix")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("--sweep, or --mix <number>"))?;
    let mut labelled = training.clone();
    labelled.extend(tuning.iter().cloned());
    let trained = question_model::train(
        &classes,
        &examples(&library, &classes, &labelled)?,
        settings,
    );
    let header = format!(
        "The search's learned half (src/content/question_model.rs): written by\n\
         `cargo run --release --example train_search -- --mix {mix}`, from {} training and {} tuning\n\
         questions (tests/data/search-questions/; never the frozen half). Do not edit by hand.",
        training.len(),
        tuning.len()
    );
    std::fs::write(
        root.join("content/search-model.tsv"),
        trained.to_tsv(mix, &header),
    )?;
    nanoclip::cli::say([format!(
        "content/search-model.tsv: {} features kept of {}",
        trained
            .weights
            .iter()
            .filter(|w| w.iter().any(|v| v.abs() >= 0.01))
            .count(),
        trained.names.len()
    )])?;
    Ok(())
}
