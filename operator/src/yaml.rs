//! YAML in and out, with serde-saphyr: the limits for text read from users' files, the
//! style of what the CLI prints (`flotilla crd`, `render`, `diff`), and the document of a
//! multi-document stream a line belongs to (for error messages).

use serde::Serialize;

/// Limits for YAML read from users' files (`flotilla render`, `diff`, `graph`): the text
/// may come from anywhere (a pipe, a download, a chart's output). A Microservice is a few
/// dozen nodes and the API server takes no object over 3 MiB, so these leave room for
/// thousands of objects in one file (10,000 documents, a million nodes, 64 MiB of text),
/// while an alias bomb ("billion laughs") is refused within milliseconds instead of
/// taking the machine's memory. Aliases are rare in manifests: 10,000 replayed events
/// allow a shared block of a hundred events reused a hundred times. Nesting stops at 64
/// levels, twice the deepest CRD schema (ours is 27): each level costs the deserializer
/// about 20 KiB of stack in a debug build, and 95 overflow a 2 MiB thread.
pub fn options() -> serde_saphyr::Options {
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 10_000;
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 10_000,
            max_nodes: 1_000_000,
            max_depth: 64,
            max_total_scalar_bytes: 64 << 20,
        },
        alias_limits: alias_limits,
        // Errors on one line, as `input N, document M: ... at line L, column C`.
        with_snippet: false,
    }
}

/// `value` as one YAML document, in the style of `kubectl get -o yaml`: block collections,
/// sequences not indented under their key, strings on one line however long (a folded
/// `>` scalar would wrap CRD descriptions), multi-line strings as `|` literals.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string_with_options(
        value,
        serde_saphyr::ser_options! {
            min_fold_chars: usize::MAX,
            folded_wrap_chars: usize::MAX,
        },
    )
}

/// The document (from 1) of the YAML stream `text` that holds line `line` (from 1; 0 when
/// unknown gives 1), counted as a YAML parser does: `---` starts a document unless it only
/// follows comments, blank lines or directives; `...` ends one.
pub fn document_at(text: &str, line: u64) -> usize {
    let marker = |l: &str, m: &str| {
        l.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    };
    let mut document = 1;
    // The current document has begun: it has content or an explicit `---`.
    let mut begun = false;
    for l in text
        .lines()
        .take(usize::try_from(line).unwrap_or(usize::MAX))
    {
        if marker(l, "---") {
            if begun {
                document += 1;
            }
            begun = true;
        } else if marker(l, "...") {
            if begun {
                document += 1;
            }
            begun = false;
        } else if !begun {
            let l = l.trim_start();
            begun = !(l.is_empty() || l.starts_with('#') || l.starts_with('%'));
        }
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_counted_as_a_parser_does() {
        let text = "# c\n---\na: 1\n---\n\n---\nb: |\n  x\n...\nc: 1\n...\n---\nd: 1\n";
        let at = |line| document_at(text, line);
        assert_eq!([at(0), at(1), at(2), at(3)], [1, 1, 1, 1]);
        assert_eq!([at(4), at(5)], [2, 2]);
        assert_eq!([at(6), at(7), at(8), at(9)], [3, 3, 3, 4]);
        assert_eq!([at(10), at(11), at(12), at(13)], [4, 5, 5, 5]);
        assert_eq!(document_at("a: 1\n--- x\n", 2), 2);
        assert_eq!(document_at("a: 1\n----\n", 2), 1);
    }

    #[test]
    fn long_strings_stay_on_one_line() {
        let long = "word ".repeat(40);
        let yaml = to_string(&serde_json::json!({"d": long.trim(), "m": "a\nb\n"})).unwrap();
        assert_eq!(yaml, format!("d: {}\nm: |\n  a\n  b\n", long.trim()));
    }
}
