//! Did-you-mean suggestions for diagnostics, shared by the engine, the
//! intrinsics evaluator and the policy reader.

/// Longer words are not typos of a field name; the edit distance is
/// quadratic in the lengths, so a hostile megabyte-long key must not reach it.
const MAX_WORD: usize = 64;

/// The closest candidate, when close enough to be a plausible typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    if word.len() > MAX_WORD {
        return None;
    }
    let lower = word.to_ascii_lowercase();
    candidates
        .filter(|c| c.len() <= MAX_WORD)
        .map(|c| (c, strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase())))
        .filter(|(c, d)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(_, d)| *d)
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["image", "name", "memory", "memoryReservation"];
        assert_eq!(did_you_mean("imagee", names.iter().copied()), Some("image"));
        assert_eq!(did_you_mean("Memroy", names.iter().copied()), Some("memory"));
        assert_eq!(did_you_mean("zzzzzz", names.iter().copied()), None);
    }

    #[test]
    fn a_huge_word_is_not_compared() {
        let huge = "image".repeat(200_000);
        assert_eq!(did_you_mean(&huge, ["image"].into_iter()), None);
    }
}
