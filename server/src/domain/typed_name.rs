//! The one rule set for names people type on the command line (tenants,
//! plans): trimmed, not empty, at most a length, no control characters.
//! Each name type keeps its own error type, so messages name what it is.

/// Which rule a typed name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// Nothing but whitespace.
    Empty,
    /// More than the allowed characters; how many it has.
    TooLong(usize),
    /// A control character such as a newline.
    ControlCharacter,
}

/// `name` trimmed, if it keeps the rules with at most `max_chars` characters.
pub fn check(name: &str, max_chars: usize) -> Result<&str, NameProblem> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 {
        Err(NameProblem::Empty)
    } else if chars > max_chars {
        Err(NameProblem::TooLong(chars))
    } else if name.chars().any(char::is_control) {
        Err(NameProblem::ControlCharacter)
    } else {
        Ok(name)
    }
}
