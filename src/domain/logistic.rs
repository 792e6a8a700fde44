//! Multinomial logistic regression, as the two learned parts of the portal use it: the prompt
//! checks' model (`prompt::model`) and the search's (`content::question_model`). Both read text
//! as word and character n-gram features, and both are trained here, deterministically (a fixed
//! order, no randomness), so that the same examples give the same weights file.

/// Calls `each` with the character 3- to `longest`-grams of `word`, its ends marked (`^ab`,
/// `yz$`), when the marked word has at least `from_chars` characters.
pub fn char_ngrams(word: &str, from_chars: usize, longest: usize, each: &mut dyn FnMut(&str)) {
    let mut padded = String::with_capacity(word.len() + 2);
    padded.push('^');
    padded.push_str(word);
    padded.push('$');
    let mut bounds: Vec<usize> = padded.char_indices().map(|(at, _)| at).collect();
    bounds.push(padded.len());
    let chars = bounds.len() - 1;
    if chars < from_chars {
        return;
    }
    for n in 3..=longest {
        for start in 0..=chars.saturating_sub(n) {
            if let (Some(&from), Some(&to)) = (bounds.get(start), bounds.get(start + n))
                && let Some(gram) = padded.get(from..to)
            {
                each(gram);
            }
        }
    }
}

/// The prefix of a word feature's name (`w:amour`).
pub const WORD: &str = "w:";
/// The prefix of a pair of neighbouring words' name (`b:amour fou`).
pub const PAIR: &str = "b:";
/// The prefix of a character n-gram's name (`c:^am`).
pub const GRAM: &str = "c:";

/// Calls `each` with the text features of a list of words, as the pieces of their names: each
/// word (`w:`), each pair of neighbours (`b:`) and the character n-grams of each word
/// (`c:`, 3- to `longest`-grams, see `char_ngrams`).
pub fn word_features(
    words: &[&str],
    from_chars: usize,
    longest: usize,
    each: &mut dyn FnMut(&[&str]),
) {
    for (i, word) in words.iter().enumerate() {
        each(&[WORD, word]);
        if let Some(next) = words.get(i + 1) {
            each(&[PAIR, word, " ", next]);
        }
        char_ngrams(word, from_chars, longest, &mut |gram| each(&[GRAM, gram]));
    }
}

/// Turns scores into probabilities, in place.
pub fn softmax(z: &mut [f32]) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    if sum > 0.0 {
        for v in z.iter_mut() {
            *v /= sum;
        }
    }
}

/// Training settings: passes over the examples, the learning rate and the L2 penalty.
#[derive(Debug, Clone, Copy)]
pub struct Training {
    pub epochs: usize,
    pub rate: f32,
    pub l2: f32,
}

/// One labelled example, as feature names, and its class.
pub struct Example {
    pub features: Vec<String>,
    pub class: usize,
}

/// One example, encoded: its features as (index, value), each index once, and its class.
pub type Encoded = (Vec<(usize, f32)>, usize);

/// Examples given as feature names and a class, encoded: each name numbered in the order first
/// seen (the names, in that order, are returned), each feature valued by `value(name, all the
/// example's names)`, the values of a name given twice summed.
pub fn encode<'a>(
    examples: impl Iterator<Item = (&'a [String], usize)>,
    value: impl Fn(&str, &[String]) -> f32,
) -> (Vec<Encoded>, Vec<String>) {
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let encoded = examples
        .map(|(features, class)| {
            let mut ids: Vec<(usize, f32)> = features
                .iter()
                .map(|f| {
                    let id = *index.entry(f.as_str()).or_insert_with(|| {
                        names.push(f.clone());
                        names.len() - 1
                    });
                    (id, value(f, features))
                })
                .collect();
            ids.sort_unstable_by_key(|&(id, _)| id);
            ids.dedup_by(|b, a| {
                let same = a.0 == b.0;
                if same {
                    a.1 += b.1;
                }
                same
            });
            (ids, class)
        })
        .collect();
    (encoded, names)
}

/// Stochastic gradient descent on the multinomial logistic loss over `features` features and
/// `classes` classes, the examples visited in a deterministic permutation per epoch (a fixed
/// xorshift generator), the rate falling with the epochs. Returns the weights per feature and
/// the bias.
pub fn train(
    examples: &[Encoded],
    features: usize,
    classes: usize,
    settings: Training,
) -> (Vec<Vec<f32>>, Vec<f32>) {
    let mut weights = vec![vec![0.0f32; classes]; features];
    let mut bias = vec![0.0f32; classes];
    let n = examples.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut z = vec![0.0f32; classes];
    for epoch in 0..settings.epochs {
        // Fisher–Yates with the fixed generator.
        for i in (1..n).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let rate = settings.rate / (1.0 + epoch as f32 * 0.2);
        for &i in &order {
            let Some((ids, class)) = examples.get(i) else {
                continue;
            };
            z.copy_from_slice(&bias);
            for &(id, x) in ids {
                for (z, w) in z.iter_mut().zip(&weights[id]) {
                    *z += w * x;
                }
            }
            softmax(&mut z);
            if let Some(g) = z.get_mut(*class) {
                *g -= 1.0;
            }
            for (b, g) in bias.iter_mut().zip(&z) {
                *b -= rate * g;
            }
            for &(id, x) in ids {
                for (w, g) in weights[id].iter_mut().zip(&z) {
                    *w -= rate * (g * x + settings.l2 * *w);
                }
            }
        }
    }
    (weights, bias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngrams_mark_the_ends_and_count_characters_not_bytes() {
        let mut grams = Vec::new();
        char_ngrams("été", 5, 4, &mut |g| grams.push(g.to_owned()));
        assert_eq!(grams, ["^ét", "été", "té$", "^été", "été$"]);
        grams.clear();
        char_ngrams("été", 5, 5, &mut |g| grams.push(g.to_owned()));
        assert_eq!(grams, ["^ét", "été", "té$", "^été", "été$", "^été$"]);
        grams.clear();
        char_ngrams("été", 6, 4, &mut |g| grams.push(g.to_owned()));
        assert!(grams.is_empty());
    }
}
