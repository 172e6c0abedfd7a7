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

/// For a value of an enum: the closest by [`did_you_mean`], or else the only
/// one the word begins (a value cut short: `ECSServiceAverageCPU` for
/// `ECSServiceAverageCPUUtilization`, too far apart for an edit distance).
pub fn did_you_mean_value<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if let Some(close) = did_you_mean(word, candidates.iter().copied()) {
        return Some(close);
    }
    if word.len() < 3 || word.len() > MAX_WORD {
        return None;
    }
    let lower = word.to_ascii_lowercase();
    let mut starting = candidates
        .iter()
        .filter(|c| c.len() > word.len() && c.to_ascii_lowercase().starts_with(&lower));
    match (starting.next(), starting.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_cut_short_is_completed_when_only_one_fits() {
        let metrics = [
            "ECSServiceAverageCPUUtilization",
            "ECSServiceAverageMemoryUtilization",
            "ALBRequestCountPerTarget",
        ];
        assert_eq!(
            did_you_mean_value("ECSServiceAverageCPU", &metrics),
            Some("ECSServiceAverageCPUUtilization")
        );
        assert_eq!(did_you_mean_value("ECSServiceAverage", &metrics), None);
        assert_eq!(did_you_mean_value("EC", &metrics), None);
        assert_eq!(did_you_mean_value("awsvpcc", &["awsvpc", "bridge"]), Some("awsvpc"));
    }

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
