//! French-aware search over the guides, with tantivy in memory (rebuilt at start-up).
//!
//! Snowball's French stemmer alone misses accent-less and conjugated queries (« credit expire »:
//! "expire" stems to `expir`, "expirent" to `expirent`). So every query word is matched three
//! ways: the exact stemmed and folded term (scored by BM25, title and keywords boosted), the same
//! term as a prefix (`expir` finds `expirent`), and within one edit for words of five letters or
//! more (typos). Synonyms from `content/synonymes.toml` widen each word; an unknown word gets a
//! « Vouliez-vous dire … ? » from the nearest word of the guides.

use std::collections::{HashMap, HashSet};

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, TantivyDocument, Term, doc};

use super::guide::Guide;
use super::text::fold;

const TOKENIZER: &str = "fr";

pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    analyzer: TextAnalyzer,
    fields: Fields,
    /// Folded word → its synonyms (folded), from the lexicon.
    synonyms: HashMap<String, Vec<String>>,
    /// Folded words of the guides, with their frequency, for suggestions.
    vocabulary: HashMap<String, u32>,
    /// Every analysed term of the index, for prefix and typo expansion.
    indexed_terms: Vec<String>,
    /// Body text by slug, for snippets.
    texts: HashMap<String, String>,
    /// Answers already computed, by query (cleared when full; rebuilt with the index).
    cache: crate::memo::Memo<std::sync::Arc<Outcome>>,
}

/// A search's answer: the guides (slug and snippet), best first, and a correction.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub hits: Vec<(String, Vec<SnippetPart>)>,
    pub suggestion: Option<String>,
}

const CACHE_ENTRIES: usize = 4096;

#[derive(Clone, Copy)]
struct Fields {
    slug: Field,
    title: Field,
    keywords: Field,
    headings: Field,
    body: Field,
}

/// One hit: the guide's position in the library, and the words to highlight in its snippet.
#[derive(Debug, Clone)]
pub struct Hit {
    pub slug: String,
    pub score: f32,
}

pub fn analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser);
    match StopWordFilter::new(Language::French) {
        Some(stop) => builder
            .filter(stop)
            .filter(Stemmer::new(Language::French))
            .filter(AsciiFoldingFilter)
            .build(),
        None => TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(Stemmer::new(Language::French))
            .filter(AsciiFoldingFilter)
            .build(),
    }
}

/// The analysed terms of `text`, with their byte ranges.
pub fn terms(analyzer: &TextAnalyzer, text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        let token = stream.token();
        out.push((token.text.clone(), token.offset_from..token.offset_to));
    }
    out
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(fold)
}

impl SearchIndex {
    pub fn build(guides: &[Guide], synonym_groups: &[Vec<String>]) -> tantivy::Result<Self> {
        let mut schema = Schema::builder();
        let text = |stored: bool| {
            let options = TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(TOKENIZER)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            );
            if stored {
                options.set_stored()
            } else {
                options
            }
        };
        let fields = Fields {
            slug: schema.add_text_field("slug", STRING | STORED),
            title: schema.add_text_field("title", text(false)),
            keywords: schema.add_text_field("keywords", text(false)),
            headings: schema.add_text_field("headings", text(false)),
            body: schema.add_text_field("body", text(false)),
        };
        let index = Index::create_in_ram(schema.build());
        let analyzer = analyzer();
        index.tokenizers().register(TOKENIZER, analyzer.clone());
        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 15_000_000)?;
        let mut vocabulary = HashMap::new();
        let mut indexed = std::collections::BTreeSet::new();
        let mut texts = HashMap::new();
        for guide in guides {
            texts.insert(guide.slug.clone(), guide.text.clone());
            for text in [guide.title.as_str(), guide.text.as_str()]
                .into_iter()
                .chain(guide.keywords.iter().map(String::as_str))
            {
                indexed.extend(terms(&analyzer, text).into_iter().map(|(t, _)| t));
            }
            let headings: Vec<&str> = guide.headings.iter().map(|h| h.text.as_str()).collect();
            writer.add_document(doc!(
                fields.slug => guide.slug.as_str(),
                fields.title => guide.title.as_str(),
                fields.keywords => guide.keywords.join(" "),
                fields.headings => headings.join(" "),
                fields.body => guide.text.as_str(),
            ))?;
            for word in words(&guide.title)
                .chain(words(&guide.text))
                .chain(guide.keywords.iter().flat_map(|k| words(k)))
            {
                *vocabulary.entry(word).or_insert(0) += 1;
            }
        }
        writer.commit()?;
        let reader = index.reader()?;
        let mut synonyms: HashMap<String, Vec<String>> = HashMap::new();
        for group in synonym_groups {
            let folded: Vec<String> = group.iter().map(|w| fold(w)).collect();
            for word in &folded {
                let others = folded.iter().filter(|o| *o != word).cloned();
                synonyms.entry(word.clone()).or_default().extend(others);
            }
        }
        Ok(Self {
            index,
            reader,
            analyzer,
            fields,
            synonyms,
            vocabulary,
            indexed_terms: indexed.into_iter().collect(),
            texts,
            cache: crate::memo::Memo::new(CACHE_ENTRIES),
        })
    }

    /// The best guides for `query`, best first.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let Some(query) = self.query(query) else {
            return Vec::new();
        };
        let searcher = self.reader.searcher();
        let Ok(top) = searcher.search(&*query, &TopDocs::with_limit(limit).order_by_score()) else {
            return Vec::new();
        };
        top.into_iter()
            .filter_map(|(score, address)| {
                let doc: TantivyDocument = searcher.doc(address).ok()?;
                let slug = doc.get_first(self.fields.slug)?.as_str()?.to_owned();
                Some(Hit { slug, score })
            })
            .collect()
    }

    /// Analysed terms of the query, each with its synonyms' terms (lower weight).
    pub fn query_terms(&self, query: &str) -> Vec<(String, f32)> {
        let mut out: Vec<(String, f32)> = Vec::new();
        let mut seen = HashSet::new();
        let folded = fold(query);
        let mut push = |term: String, weight: f32, out: &mut Vec<(String, f32)>| {
            if seen.insert(term.clone()) {
                out.push((term, weight));
            }
        };
        for (term, _) in terms(&self.analyzer, query) {
            push(term, 1.0, &mut out);
        }
        // Synonyms of single words and of multi-word entries found in the query.
        for (entry, others) in &self.synonyms {
            let found = if entry.contains(' ') {
                folded.contains(entry.as_str())
            } else {
                words(&folded).any(|w| w == *entry)
            };
            if found {
                for other in others {
                    for (term, _) in terms(&self.analyzer, other) {
                        push(term, 0.5, &mut out);
                    }
                }
            }
        }
        out
    }

    fn query(&self, query: &str) -> Option<Box<dyn Query>> {
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        // The query's own words as a phrase in a title, keywords or heading: « prompt interdit »
        // is the subject of the ethics guide even though « prompt » is the title of another.
        let own: Vec<String> = terms(&self.analyzer, query)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        if own.len() >= 2 {
            for (field, boost) in [(f.title, 8.0), (f.keywords, 8.0), (f.headings, 4.0)] {
                let phrase = PhraseQuery::new(
                    own.iter()
                        .map(|t| Term::from_field_text(field, t))
                        .collect(),
                );
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(phrase), boost)),
                ));
            }
        }
        for (term, weight) in self.query_terms(query) {
            let expansions = self.expand(&term);
            let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (field, boost) in [
                (f.title, 5.0),
                (f.keywords, 4.0),
                (f.headings, 2.0),
                (f.body, 1.0),
            ] {
                let exact = TermQuery::new(
                    Term::from_field_text(field, &term),
                    IndexRecordOption::WithFreqs,
                );
                alternatives.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(exact), boost * weight)),
                ));
                // Prefix: « expir » finds « expirent »; within one edit for longer words.
                for other in &expansions {
                    let near = TermQuery::new(
                        Term::from_field_text(field, other),
                        IndexRecordOption::WithFreqs,
                    );
                    alternatives.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(near), 0.3 * boost * weight)),
                    ));
                }
            }
            clauses.push((Occur::Should, Box::new(BooleanQuery::new(alternatives))));
        }
        (!clauses.is_empty()).then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>)
    }

    /// Indexed terms that `term` starts (3 letters or more) or is one edit away from (5 or more),
    /// other than itself. Tantivy's fuzzy queries build an automaton per term and field, which
    /// costs milliseconds; the index has a few thousand terms, so a scan is cheaper.
    fn expand(&self, term: &str) -> Vec<String> {
        let len = term.chars().count();
        if len < 3 {
            return Vec::new();
        }
        let first = term.chars().next();
        self.indexed_terms
            .iter()
            .filter(|t: &&String| String::as_str(t) != term)
            .filter(|t| {
                if t.starts_with(term) {
                    return true;
                }
                if len < 5 || t.chars().next() != first {
                    return false;
                }
                let head: String = t.chars().take(len).collect();
                strsim::levenshtein(&head, term) <= 1 || strsim::levenshtein(t, term) <= 1
            })
            .take(20)
            .cloned()
            .collect()
    }

    /// The answer to `query`, from the cache when it was asked before.
    pub fn run(&self, query: &str, limit: usize) -> std::sync::Arc<Outcome> {
        let key = fold(query);
        if let Some(found) = self.cache.get(&key) {
            return found;
        }
        let terms = self.query_terms(query);
        let hits = self
            .search(query, limit)
            .into_iter()
            .map(|hit| {
                let snippet = self
                    .texts
                    .get(&hit.slug)
                    .map(|text| self.snippet(text, &terms))
                    .unwrap_or_default();
                (hit.slug, snippet)
            })
            .collect();
        let outcome = std::sync::Arc::new(Outcome {
            hits,
            suggestion: self.suggestion(query),
        });
        self.cache.put(key, outcome.clone());
        outcome
    }

    /// « Vouliez-vous dire … ? »: each word unknown to the guides replaced by the nearest known
    /// word (one edit for short words, two for longer), or `None` if nothing changes.
    pub fn suggestion(&self, query: &str) -> Option<String> {
        let mut changed = false;
        let corrected: Vec<String> = query
            .split_whitespace()
            .map(|word| {
                let folded = fold(word.trim_matches(|c: char| !c.is_alphanumeric()));
                if folded.chars().count() < 4
                    || self.vocabulary.contains_key(&folded)
                    || self.synonyms.contains_key(&folded)
                {
                    return word.to_owned();
                }
                let max = if folded.chars().count() >= 7 { 2 } else { 1 };
                let best = self
                    .vocabulary
                    .iter()
                    .map(|(known, count)| {
                        (
                            strsim::levenshtein(&folded, known),
                            std::cmp::Reverse(*count),
                            known,
                        )
                    })
                    .filter(|(distance, _, _)| *distance <= max)
                    .min();
                match best {
                    Some((_, _, known)) => {
                        changed = true;
                        known.clone()
                    }
                    None => word.to_owned(),
                }
            })
            .collect();
        changed.then(|| corrected.join(" "))
    }

    pub fn analyzer(&self) -> &TextAnalyzer {
        &self.analyzer
    }

    pub fn index(&self) -> &Index {
        &self.index
    }
}

/// A piece of a snippet; `true` marks a word that matched the query.
pub type SnippetPart = (String, bool);

const SNIPPET_CHARS: usize = 220;

fn matches(token: &str, query: &[(String, f32)]) -> bool {
    query.iter().any(|(q, _)| {
        token == q
            || (q.chars().count() >= 3 && token.starts_with(q.as_str()))
            || (q.chars().count() >= 5 && strsim::levenshtein(token, q) <= 1)
    })
}

impl SearchIndex {
    /// The line of `text` that matches the most query terms, cut around its first match, with
    /// the matching words marked.
    pub fn snippet(&self, text: &str, query: &[(String, f32)]) -> Vec<SnippetPart> {
        let mut best: Option<(usize, &str, Vec<std::ops::Range<usize>>)> = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let hits: Vec<(String, std::ops::Range<usize>)> = terms(&self.analyzer, line)
                .into_iter()
                .filter(|(t, _)| matches(t, query))
                .collect();
            let distinct: HashSet<&str> = hits.iter().map(|(t, _)| t.as_str()).collect();
            if distinct.len() > best.as_ref().map_or(0, |b| b.0) {
                best = Some((
                    distinct.len(),
                    line,
                    hits.into_iter().map(|(_, r)| r).collect(),
                ));
            }
        }
        let Some((_, line, ranges)) = best else {
            let start: String = text.chars().take(SNIPPET_CHARS).collect();
            return vec![(start, false)];
        };
        // A window of SNIPPET_CHARS around the first match, on char boundaries.
        let first = ranges.first().map_or(0, |r| r.start);
        let mut start = first.saturating_sub(60);
        while !line.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + SNIPPET_CHARS).min(line.len());
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let mut parts = Vec::new();
        if start > 0 {
            parts.push(("…".to_owned(), false));
        }
        let mut at = start;
        for range in ranges.iter().filter(|r| r.start >= start && r.end <= end) {
            if range.start > at {
                parts.push((line[at..range.start].to_owned(), false));
            }
            parts.push((line[range.clone()].to_owned(), true));
            at = range.end;
        }
        if at < end {
            parts.push((line[at..end].to_owned(), false));
        }
        if end < line.len() {
            parts.push(("…".to_owned(), false));
        }
        parts
    }
}
