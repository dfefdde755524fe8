//! Text within the API's limits: condition messages, event notes and reasons are bounded
//! in bytes.

/// `text` cut to at most `max` bytes on a character boundary, an ellipsis marking the
/// cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    const ELLIPSIS: char = '…';
    let mut end = max - ELLIPSIS.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    #[test]
    fn truncation_fits_the_limit_on_a_character_boundary() {
        assert_eq!(truncate("short", MAX), "short");
        let long = "é".repeat(600); // 1,200 bytes
        let cut = truncate(&long, MAX);
        assert!(cut.len() <= MAX, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(cut.len() > MAX - 8, "as much as fits is kept");
        let exact = "a".repeat(MAX);
        assert_eq!(truncate(&exact, MAX), exact);
    }
}
