//! "Did you mean" suggestions for misspelt keys and names.

/// The candidate closest to `word` by edit distance, if it is close enough
/// to be a likely typo (at most a third of the word's length, at least 1).
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn typos() {
        let keys = ["environment", "entrypoint", "env_file", "image"];
        assert_eq!(
            super::closest("enviroment", keys.into_iter()),
            Some("environment")
        );
        assert_eq!(super::closest("imag", keys.into_iter()), Some("image"));
        assert_eq!(super::closest("zzz", keys.into_iter()), None);
    }
}
