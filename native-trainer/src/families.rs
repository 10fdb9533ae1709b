//! TweepFake's persona families: each bot imitates one human account (`dril_gpt2` imitates `dril`), so a
//! family is a human account and every bot that imitates it. Grouped cross-validation (`cv`) keeps a
//! family whole on one side of the split, which is how a model meets the accounts of its users: ones it
//! never saw. This table is the one place that knows the families; an account that is not in it is an
//! error, never a family of its own.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::data::Example;

/// `(family, its accounts)`: the family is named after the human account (or accounts) that its bots
/// imitate. `jaden` and `JustinTrudeau` are one family: `theJadenTrudeau` imitates both. 16 families, 17
/// human accounts and 23 bots: every account of TweepFake's train, validation and test splits.
pub const FAMILIES: &[(&str, &[&str])] = &[
    ("dril", &["dril", "dril_gpt2", "DrilRnn", "Gpt2Wint"]),
    (
        "realDonaldTrump",
        &["realDonaldTrump", "gpt2_trump", "botustrump", "deep_potus", "DeepDrumpf", "sarcastic_trump"],
    ),
    ("elonmusk", &["elonmusk", "DeepElonMusk", "Musk_from_Mars"]),
    ("narendramodi", &["narendramodi", "AINarendraModi"]),
    ("kevinhooke", &["kevinhooke", "kevinhookebot"]),
    ("zawvrk", &["zawvrk", "zawarbot"]),
    ("imranye", &["imranye", "imranyebot"]),
    ("ahadsheriff", &["ahadsheriff", "ahadsheriffbot"]),
    ("jaden+JustinTrudeau", &["jaden", "JustinTrudeau", "theJadenTrudeau"]),
    ("awhalefact", &["awhalefact", "whalefakes"]),
    ("ninjasexparty", &["ninjasexparty", "nsp_gpt2"]),
    ("GenePark", &["GenePark", "GenePark_GPT2"]),
    ("VitalikButerin", &["VitalikButerin", "VBoterin"]),
    ("calebgamman", &["calebgamman", "calebgamman2"]),
    ("Thorin", &["Thorin", "deep_thorin"]),
    ("UtilityLimb", &["UtilityLimb", "utilitylimbgpt2"]),
];

/// The family of a screen name, or an error naming it (a new account needs a row in [`FAMILIES`]).
pub fn family_of(account: &str) -> Result<&'static str> {
    FAMILIES.iter().find(|(_, accounts)| accounts.contains(&account)).map(|(family, _)| *family).ok_or_else(|| {
        anyhow::anyhow!(
            "account {account:?} belongs to no persona family in native-trainer/src/families.rs: \
                 add it to the family of the account it imitates"
        )
    })
}

/// The family of every example, in order; an example without an account, or with an unknown one, is an
/// error naming its row (1-based, as in the file after its header).
pub fn families_of(examples: &[Example]) -> Result<Vec<&'static str>> {
    examples
        .iter()
        .enumerate()
        .map(|(i, e)| match &e.account {
            Some(account) => family_of(account).map_err(|err| err.context(format!("row {}", i + 1))),
            None => bail!("row {}: no screen_name: grouped cross-validation needs TweepFake's columns", i + 1),
        })
        .collect()
}

/// Families dealt into `folds` groups of about equal rows: largest family first, each to the group with
/// the fewest rows so far (ties to the lower index). Deterministic: it depends only on the row counts.
/// Returns the fold of each family present in `families`.
pub fn assign_folds(families: &[&'static str], folds: usize) -> Result<BTreeMap<&'static str, usize>> {
    let mut sizes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for family in families {
        *sizes.entry(family).or_default() += 1;
    }
    if folds < 2 || folds > sizes.len() {
        bail!("{folds} folds for {} families: choose between 2 and {}", sizes.len(), sizes.len());
    }
    let mut by_size: Vec<(&'static str, usize)> = sizes.into_iter().collect();
    // Largest first; the table's order breaks ties, so the result never depends on a hash or a name's sort.
    let rank = |f: &str| FAMILIES.iter().position(|(name, _)| *name == f).unwrap_or(usize::MAX);
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then(rank(a.0).cmp(&rank(b.0))));
    let mut rows = vec![0usize; folds];
    let mut assignment = BTreeMap::new();
    for (family, size) in by_size {
        let fold = (0..folds).min_by_key(|&f| (rows[f], f)).unwrap_or(0);
        rows[fold] += size;
        assignment.insert(family, fold);
    }
    Ok(assignment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_has_one_family() {
        let mut seen = std::collections::HashSet::new();
        for (family, accounts) in FAMILIES {
            assert!(accounts.contains(family) || family.contains('+'), "{family} is named after its human account");
            for account in *accounts {
                assert!(seen.insert(*account), "{account} is in two families");
                assert_eq!(family_of(account).unwrap(), *family);
            }
        }
        assert_eq!((FAMILIES.len(), seen.len()), (16, 40), "TweepFake has 40 accounts in 16 families");
        let err = family_of("new_bot_2027").unwrap_err().to_string();
        assert!(err.contains("new_bot_2027") && err.contains("families.rs"), "{err}");
    }

    #[test]
    fn an_example_without_a_known_account_is_an_error_with_its_row() {
        let known = Example { account: Some("dril_gpt2".into()), ..Example::new("a", 1) };
        let unknown = Example { account: Some("stranger".into()), ..Example::new("b", 0) };
        assert_eq!(families_of(std::slice::from_ref(&known)).unwrap(), ["dril"]);
        let err = format!("{:#}", families_of(&[known.clone(), unknown]).unwrap_err());
        assert!(err.contains("row 2") && err.contains("stranger"), "{err}");
        let err = format!("{:#}", families_of(&[Example::new("c", 0)]).unwrap_err());
        assert!(err.contains("row 1: no screen_name"), "{err}");
    }

    #[test]
    fn folds_are_balanced_by_rows_and_keep_families_whole() {
        // 6 families of 9, 7, 5, 3, 2 and 1 rows into 3 folds: 9 | 7+2 | 5+3+1.
        let sizes = [("dril", 9), ("kevinhooke", 7), ("zawvrk", 5), ("imranye", 3), ("Thorin", 2), ("UtilityLimb", 1)];
        let families: Vec<&'static str> =
            sizes.iter().flat_map(|&(f, n)| std::iter::repeat_n(family_of(f).unwrap(), n)).collect();
        let folds = assign_folds(&families, 3).unwrap();
        let rows = |fold| sizes.iter().filter(|(f, _)| folds[f] == fold).map(|(_, n)| n).sum::<usize>();
        assert_eq!([rows(0), rows(1), rows(2)], [9, 9, 9]);
        assert_eq!(folds["dril"], 0);
        assert_eq!(folds, assign_folds(&families, 3).unwrap(), "deterministic");
        assert!(assign_folds(&families, 7).is_err() && assign_folds(&families, 1).is_err());
    }
}
