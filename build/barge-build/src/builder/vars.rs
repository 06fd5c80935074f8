//! Variable substitution in instruction words with a stage's ARGs and ENV: the parser
//! crate's [`crate::expand`] (Docker's shell-word rules: `$VAR`, `${VAR:-d}`, quotes removed).

/// Substitute the variables of `word`; `lookup` gives a variable's value (None: unset).
pub fn expand(word: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    crate::expand::expand(word, lookup).map_err(|e| e.to_string())
}
