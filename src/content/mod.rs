//! Help-centre guides: loaded once at start-up from `content/`, checked (front matter, duplicate
//! slugs, internal links and anchors), rendered, and indexed for search.

pub mod guide;
pub mod question_model;
pub mod search;
pub mod text;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

pub use guide::{Figure, FigureField, Guide, LiveTable, Segment};
use search::{Lexicon, SearchIndex};

/// A problem in the content, with the file and line to fix.
#[derive(Debug, Clone)]
pub struct ContentError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ContentError {}

/// All the problems found, one per line.
#[derive(Debug)]
pub struct ContentErrors(pub Vec<ContentError>);

impl fmt::Display for ContentErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ContentErrors {}

#[derive(Debug, Clone, Deserialize)]
pub struct Category {
    pub name: String,
    pub description: String,
}

#[derive(Deserialize)]
struct Categories {
    category: Vec<Category>,
}

pub struct Library {
    /// In reading order: by category, then `order`.
    pub guides: Vec<Guide>,
    pub categories: Vec<Category>,
    by_slug: HashMap<String, usize>,
    pub search: SearchIndex,
    /// The lexicon of `synonymes.toml` (the seed of the search's synonyms).
    seed_lexicon: Lexicon,
    /// The search's learned half, `search-model.tsv` (absent: the search without it).
    search_model: Option<std::sync::Arc<question_model::QuestionModel>>,
}

impl Library {
    pub fn load(dir: &Path) -> Result<Self, ContentErrors> {
        let mut errors = Vec::new();
        let file_error = |file: &Path, message: String| ContentError {
            file: file.display().to_string(),
            line: 1,
            message,
        };

        let categories_path = dir.join("categories.toml");
        let categories = std::fs::read_to_string(&categories_path)
            .map_err(|e| e.to_string())
            .and_then(|t| toml::from_str::<Categories>(&t).map_err(|e| e.to_string()))
            .map(|c| c.category)
            .unwrap_or_else(|e| {
                errors.push(file_error(&categories_path, e));
                Vec::new()
            });
        let synonyms_path = dir.join("synonymes.toml");
        let lexicon = std::fs::read_to_string(&synonyms_path)
            .map_err(|e| e.to_string())
            .and_then(|t| toml::from_str::<Lexicon>(&t).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| {
                errors.push(file_error(&synonyms_path, e));
                Lexicon::default()
            });

        // The search's model (a few MB of weights) is parsed on a thread of its own while the
        // guides are read and indexed.
        let model_path = dir.join("search-model.tsv");
        let model_thread = std::thread::spawn({
            let model_path = model_path.clone();
            move || match std::fs::read_to_string(&model_path) {
                Ok(text) => question_model::QuestionModel::from_tsv(&text)
                    .map(|m| Some(std::sync::Arc::new(m)))
                    .map_err(|e| e.to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        });

        let mut paths: Vec<_> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect(),
            Err(e) => {
                return Err(ContentErrors(vec![file_error(
                    dir,
                    format!("cannot read the content directory: {e}"),
                )]));
            }
        };
        paths.sort();
        // The guides parsed on two threads (half each, in order): a third of start-up.
        let read = |path: &std::path::PathBuf| match std::fs::read_to_string(path) {
            Ok(source) => guide::parse(path, &source).map(|g| (path.display().to_string(), g)),
            Err(e) => Err(file_error(path, e.to_string())),
        };
        let (first, second) = paths.split_at(paths.len() / 2);
        let parsed: Vec<Result<(String, Guide), ContentError>> = std::thread::scope(|scope| {
            let second = scope.spawn(|| second.iter().map(read).collect::<Vec<_>>());
            let mut parsed: Vec<_> = first.iter().map(read).collect();
            parsed.extend(
                second
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
            parsed
        });
        let mut guides = Vec::new();
        for outcome in parsed {
            match outcome {
                Ok(guide) => guides.push(guide),
                Err(e) => errors.push(e),
            }
        }

        let mut by_slug = HashMap::new();
        for (i, (file, guide)) in guides.iter().enumerate() {
            if let Some(&first) = by_slug.get(&guide.slug) {
                let (other, _): &(String, Guide) = &guides[first];
                errors.push(ContentError {
                    file: file.clone(),
                    line: 2,
                    message: format!("duplicate slug `{}` (also in {other})", guide.slug),
                });
            } else {
                by_slug.insert(guide.slug.clone(), i);
            }
            if !categories.iter().any(|c| c.name == guide.category) {
                errors.push(ContentError {
                    file: file.clone(),
                    line: 4,
                    message: format!("category `{}` is not in categories.toml", guide.category),
                });
            }
        }
        for (file, guide) in &guides {
            for link in &guide.links {
                if let Err(message) = check_link(&link.url, guide, &guides, &by_slug) {
                    errors.push(ContentError {
                        file: file.clone(),
                        line: link.line,
                        message,
                    });
                }
            }
        }
        // The search's model is waited for once the index is built (below), unless the guides
        // have errors: then its own error, if any, is listed with theirs.
        let join_model = |thread: std::thread::JoinHandle<_>, errors: &mut Vec<ContentError>| {
            match thread.join() {
                Ok(Ok(model)) => model,
                Ok(Err(message)) => {
                    errors.push(file_error(&model_path, message));
                    None
                }
                Err(_) => {
                    errors.push(file_error(&model_path, "the model's reader failed".into()));
                    None
                }
            }
        };
        if !errors.is_empty() {
            join_model(model_thread, &mut errors);
            return Err(ContentErrors(errors));
        }

        let position = |c: &str| {
            categories
                .iter()
                .position(|k| k.name == c)
                .unwrap_or(usize::MAX)
        };
        let mut guides: Vec<Guide> = guides.into_iter().map(|(_, g)| g).collect();
        guides.sort_by(|a, b| {
            (position(&a.category), a.order, &a.slug).cmp(&(
                position(&b.category),
                b.order,
                &b.slug,
            ))
        });
        let by_slug = guides
            .iter()
            .enumerate()
            .map(|(i, g)| (g.slug.clone(), i))
            .collect();
        let search = SearchIndex::build(&guides, &lexicon).map_err(|e| ContentError {
            file: dir.display().to_string(),
            line: 0,
            message: format!("search index: {e}"),
        });
        let search_model = join_model(model_thread, &mut errors);
        let search = match search {
            Ok(search) if errors.is_empty() => search,
            Ok(_) => return Err(ContentErrors(errors)),
            Err(error) => {
                errors.insert(0, error);
                return Err(ContentErrors(errors));
            }
        };
        let search = match &search_model {
            Some(model) => search.with_model(model.clone()),
            None => search,
        };
        Ok(Self {
            guides,
            categories,
            by_slug,
            search,
            seed_lexicon: lexicon,
            search_model,
        })
    }

    /// The same guides with a search index built from the seed lexicon and `added` (synonyms
    /// staff stored): a new index, with an empty answer cache.
    pub fn with_added_synonyms(&self, added: &[(String, String)]) -> tantivy::Result<Self> {
        let lexicon = Lexicon {
            groups: merge_synonyms(&self.seed_lexicon.groups, added),
            ..self.seed_lexicon.clone()
        };
        let search = SearchIndex::build(&self.guides, &lexicon)?;
        Ok(Self {
            guides: self.guides.clone(),
            categories: self.categories.clone(),
            by_slug: self.by_slug.clone(),
            search: match &self.search_model {
                Some(model) => search.with_model(model.clone()),
                None => search,
            },
            seed_lexicon: self.seed_lexicon.clone(),
            search_model: self.search_model.clone(),
        })
    }

    /// Whether `word` is in the seed lexicon (folded).
    pub fn in_lexicon(&self, word: &str) -> bool {
        let word = text::fold(word);
        self.seed_lexicon
            .groups
            .iter()
            .flatten()
            .any(|w| text::fold(w) == word)
    }

    pub fn get(&self, slug: &str) -> Option<&Guide> {
        self.by_slug.get(slug).map(|&i| &self.guides[i])
    }

    pub fn position(&self, slug: &str) -> Option<usize> {
        self.by_slug.get(slug).copied()
    }

    pub fn in_category<'a>(&'a self, category: &'a str) -> impl Iterator<Item = &'a Guide> + 'a {
        self.guides.iter().filter(move |g| g.category == category)
    }
}

/// The lexicon's groups with each added `(query, word)`: the query joins the group that holds
/// `word`, or a new group with `word` when none does. A query already in the lexicon is left
/// where it is.
pub fn merge_synonyms(seed: &[Vec<String>], added: &[(String, String)]) -> Vec<Vec<String>> {
    let mut groups = seed.to_vec();
    for (query, word) in added {
        let (query_folded, word_folded) = (text::fold(query), text::fold(word));
        if query_folded == word_folded
            || groups
                .iter()
                .flatten()
                .any(|w| text::fold(w) == query_folded)
        {
            continue;
        }
        match groups
            .iter_mut()
            .find(|g| g.iter().any(|w| text::fold(w) == word_folded))
        {
            Some(group) => group.push(query.clone()),
            None => groups.push(vec![word.clone(), query.clone()]),
        }
    }
    groups
}

fn check_link(
    url: &str,
    from: &Guide,
    guides: &[(String, Guide)],
    by_slug: &HashMap<String, usize>,
) -> Result<(), String> {
    if url.starts_with("https://") || url.starts_with("mailto:") {
        return Ok(());
    }
    if let Some(anchor) = url.strip_prefix('#') {
        return if from.has_anchor(anchor) {
            Ok(())
        } else {
            Err(format!(
                "broken anchor `{url}`: no such heading in this guide"
            ))
        };
    }
    if !url.starts_with('/') {
        return Err(format!(
            "link `{url}` must be site-relative (start with /) or https://"
        ));
    }
    let (before_fragment, fragment) = url
        .split_once('#')
        .map_or((url, None), |(a, b)| (a, Some(b)));
    let path = before_fragment
        .split_once('?')
        .map_or(before_fragment, |(p, _)| p);
    if let Some(slug) = path.strip_prefix("/aide/").filter(|s| *s != "recherche") {
        let Some(&i) = by_slug.get(slug) else {
            return Err(format!("broken link `{url}`: no guide `{slug}`"));
        };
        if let Some(anchor) = fragment
            && !guides[i].1.has_anchor(anchor)
        {
            return Err(format!(
                "broken anchor `{url}`: guide `{slug}` has no heading `#{anchor}`"
            ));
        }
        return Ok(());
    }
    // Pages of the URL map (its route table), and the planned ones the guides already promise.
    if crate::web::routes::is_site_page(path) {
        Ok(())
    } else {
        Err(format!("broken link `{url}`: not a page of the portal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_added_synonym_joins_its_word_s_group_or_makes_one() {
        let seed = vec![vec!["crédit".to_owned(), "jeton".to_owned()]];
        let added = [
            ("zzyzx".to_owned(), "Crédit".to_owned()),
            ("quorglub".to_owned(), "facture".to_owned()),
            ("jeton".to_owned(), "facture".to_owned()),
            ("facture".to_owned(), "facture".to_owned()),
        ];
        assert_eq!(
            merge_synonyms(&seed, &added),
            vec![
                vec!["crédit".to_owned(), "jeton".to_owned(), "zzyzx".to_owned()],
                vec!["facture".to_owned(), "quorglub".to_owned()],
            ]
        );
    }
}
