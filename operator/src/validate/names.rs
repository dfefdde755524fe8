//! The API server's rules for names, keys and values, as k8s.io/apimachinery states them
//! (`pkg/util/validation`, `pkg/api/validation`), so that the operator refuses a spec
//! whose children the server would refuse, naming the Microservice's field instead.
//!
//! Each rule returns `Err` with the server's own wording (several reasons joined by
//! ", "), so the message matches what `kubectl` would have shown for the child.

use std::collections::BTreeMap;

pub const DNS1123_LABEL_MAX: usize = 63;
pub const DNS1035_LABEL_MAX: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// The name part of a qualified name (label and annotation keys).
pub const QUALIFIED_NAME_MAX: usize = 63;
pub const LABEL_VALUE_MAX: usize = 63;
/// IANA service names (RFC 6335), which container ports are named with.
pub const PORT_NAME_MAX: usize = 15;
/// All keys and values of one object's annotations together, in bytes.
pub const ANNOTATIONS_SIZE_MAX: usize = 256 * 1024;

const DNS1123_LABEL_PATTERN: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_PATTERN: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const WILDCARD_SUBDOMAIN_PATTERN: &str =
    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const WILDCARD_SUBDOMAIN_MESSAGE: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character";
const DNS1035_LABEL_PATTERN: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_MESSAGE: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_PATTERN: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MESSAGE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_PATTERN: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MESSAGE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const HTTP_HEADER_NAME_PATTERN: &str = "[-A-Za-z0-9]+";
const HTTP_HEADER_NAME_MESSAGE: &str =
    "a valid HTTP header must consist of alphanumeric characters or '-'";
const ENV_VAR_NAME_PATTERN: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_MESSAGE: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";
const CONFIG_KEY_PATTERN: &str = "[-._a-zA-Z0-9]+";
const CONFIG_KEY_MESSAGE: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

/// A DNS-1123 label: what most names of a single segment must be (namespaces, Service
/// port names).
pub fn dns1123_label(value: &str) -> Result<(), String> {
    let mut errors = max_len(value, DNS1123_LABEL_MAX);
    if !matches_dns1123_label(value) {
        // Length is reported above, so a valid subdomain fails only on its dots.
        if matches_dns1123_subdomain(value) {
            errors.push("must not contain dots".to_string());
        } else {
            errors.push(regex_error(
                DNS1123_LABEL_MESSAGE,
                DNS1123_LABEL_PATTERN,
                &["my-name", "123-abc"],
            ));
        }
    }
    outcome(errors)
}

/// A DNS-1035 label: a DNS-1123 label that starts with a letter. Service names must be.
pub fn dns1035_label(value: &str) -> Result<(), String> {
    let mut errors = max_len(value, DNS1035_LABEL_MAX);
    if !matches_dns1035_label(value) {
        errors.push(regex_error(
            DNS1035_LABEL_MESSAGE,
            DNS1035_LABEL_PATTERN,
            &["my-name", "abc-123"],
        ));
    }
    outcome(errors)
}

/// A DNS-1123 subdomain: the name of most objects, and a host name. The server limits
/// the whole to 253 characters but not each label to 63.
pub fn dns1123_subdomain(value: &str) -> Result<(), String> {
    outcome(dns1123_subdomain_errors(value))
}

fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = max_len(value, DNS1123_SUBDOMAIN_MAX);
    if !matches_dns1123_subdomain(value) {
        errors.push(regex_error(
            DNS1123_SUBDOMAIN_MESSAGE,
            DNS1123_SUBDOMAIN_PATTERN,
            &["example.com"],
        ));
    }
    errors
}

/// `*.` followed by a DNS-1123 subdomain, 253 characters in all.
pub fn wildcard_dns1123_subdomain(value: &str) -> Result<(), String> {
    let mut errors = max_len(value, DNS1123_SUBDOMAIN_MAX);
    if !value
        .strip_prefix("*.")
        .is_some_and(matches_dns1123_subdomain)
    {
        errors.push(regex_error(
            WILDCARD_SUBDOMAIN_MESSAGE,
            WILDCARD_SUBDOMAIN_PATTERN,
            &["*.example.com"],
        ));
    }
    outcome(errors)
}

/// The host of an Ingress rule: a DNS-1123 subdomain, or a wildcard one when it holds a
/// `*`, and never an IP address.
pub fn ingress_host(value: &str) -> Result<(), String> {
    if is_ip_address(value) {
        return Err("must be a DNS name, not an IP address".to_string());
    }
    if value.contains('*') {
        wildcard_dns1123_subdomain(value)
    } else {
        dns1123_subdomain(value)
    }
}

/// Whether the server reads `value` as an IP address. It parses IPv4 "sloppily",
/// leading zeros included, which Rust's parser refuses.
fn is_ip_address(value: &str) -> bool {
    if value.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let octets: Vec<&str> = value.split('.').collect();
    octets.len() == 4
        && octets
            .iter()
            .all(|o| o.bytes().all(|b| b.is_ascii_digit()) && o.parse::<u8>().is_ok())
}

/// A qualified name: a label key, or (see [`annotation_key`]) an annotation key. An
/// optional DNS-1123 subdomain prefix and `/`, then a name of at most 63 characters.
pub fn qualified_name(value: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                let prefix_errors = dns1123_subdomain_errors(prefix);
                errors.extend(prefix_errors.iter().map(|m| format!("prefix part {m}")));
            }
            *name
        }
        _ => {
            return Err(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MESSAGE,
                    QUALIFIED_NAME_PATTERN,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errors.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !matches_qualified_name_part(name) {
        errors.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MESSAGE,
                QUALIFIED_NAME_PATTERN,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    outcome(errors)
}

/// A label key.
pub fn label_key(value: &str) -> Result<(), String> {
    qualified_name(value)
}

/// An annotation key: a qualified name in which case does not matter (the server
/// lowercases the key before checking it, so `Example.COM/x` passes).
pub fn annotation_key(value: &str) -> Result<(), String> {
    qualified_name(&value.to_ascii_lowercase())
}

/// A label value: empty, or up to 63 characters of the name part's alphabet.
pub fn label_value(value: &str) -> Result<(), String> {
    let mut errors = max_len(value, LABEL_VALUE_MAX);
    if !value.is_empty() && !matches_qualified_name_part(value) {
        errors.push(regex_error(
            LABEL_VALUE_MESSAGE,
            LABEL_VALUE_PATTERN,
            &["MyValue", "my_value", "12345"],
        ));
    }
    outcome(errors)
}

/// An IANA service name (RFC 6335), as container ports are named: at most 15 lowercase
/// letters, digits and `-`, at least one letter, no `-` at either end nor two in a row.
pub fn port_name(value: &str) -> Result<(), String> {
    let mut errors = max_len(value, PORT_NAME_MAX);
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errors.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !value.bytes().any(|b| b.is_ascii_lowercase()) {
        errors.push("must contain at least one letter (a-z)".to_string());
    }
    if value.contains("--") {
        errors.push("must not contain consecutive hyphens".to_string());
    }
    if value.starts_with('-') || value.ends_with('-') {
        errors.push("must not begin or end with a hyphen".to_string());
    }
    outcome(errors)
}

/// The name of a header a probe sends. Stricter than an RFC 7230 token: the server
/// takes Go's definition, letters, digits and `-` only.
pub fn http_header_name(value: &str) -> Result<(), String> {
    let valid = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(regex_error(
            HTTP_HEADER_NAME_MESSAGE,
            HTTP_HEADER_NAME_PATTERN,
            &["X-Header-Name"],
        ))
    }
}

/// An environment variable name (also an `envFrom` prefix), by the rule every served
/// version enforces (1.30's relaxed rule is behind a feature gate).
pub fn env_var_name(value: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    let mut bytes = value.bytes();
    let valid = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b"-._".contains(&b))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !valid {
        errors.push(regex_error(
            ENV_VAR_NAME_MESSAGE,
            ENV_VAR_NAME_PATTERN,
            &["my.env-name", "MY_ENV.NAME", "MyEnvName1"],
        ));
    }
    errors.extend(chdir_prefix(value));
    outcome(errors)
}

/// A key of a ConfigMap or Secret, as `valueFrom` names it.
pub fn config_key(value: &str) -> Result<(), String> {
    let mut errors = max_len(value, DNS1123_SUBDOMAIN_MAX);
    let valid = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !valid {
        errors.push(regex_error(
            CONFIG_KEY_MESSAGE,
            CONFIG_KEY_PATTERN,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    errors.extend(chdir_prefix(value));
    outcome(errors)
}

/// The total size of an object's annotations: every key and value, in bytes.
pub fn annotations_size(annotations: &BTreeMap<String, String>) -> Result<(), String> {
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > ANNOTATIONS_SIZE_MAX {
        Err(format!(
            "must have at most {ANNOTATIONS_SIZE_MAX} bytes (keys and values together), got {size}"
        ))
    } else {
        Ok(())
    }
}

/// Every problem of a label map, each naming the key or value at fault.
pub fn labels(labels: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, value) in labels {
        if let Err(message) = label_key(key) {
            problems.push(format!("key `{key}`: {message}"));
        }
        if let Err(message) = label_value(value) {
            problems.push(format!("value `{value}` of `{key}`: {message}"));
        }
    }
    problems
}

/// Every problem of an annotation map: its keys, then its total size.
pub fn annotations(annotations: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems: Vec<String> = annotations
        .keys()
        .filter_map(|key| {
            annotation_key(key)
                .err()
                .map(|message| format!("key `{key}`: {message}"))
        })
        .collect();
    if let Err(message) = annotations_size(annotations) {
        problems.push(message);
    }
    problems
}

fn outcome(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join(", "))
    }
}

fn max_len(value: &str, max: usize) -> Vec<String> {
    if value.len() > max {
        vec![max_len_error(max)]
    } else {
        Vec::new()
    }
}

fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// A pattern mismatch in the server's words, examples and (odd spacing included) all.
fn regex_error(message: &str, pattern: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{message} (regex used for validation is '{pattern}')");
    }
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{pattern}')",
        examples.join(" or ")
    )
}

/// Names the kubelet would resolve as a path: `.`, `..` and anything under `..`.
fn chdir_prefix(value: &str) -> Option<String> {
    match value {
        "." => Some("must not be '.'".to_string()),
        ".." => Some("must not be '..'".to_string()),
        _ if value.starts_with("..") => Some("must not start with '..'".to_string()),
        _ => None,
    }
}

fn is_lower_alphanumeric(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, with no length limit.
fn matches_dns1123_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alphanumeric(first)
                && is_lower_alphanumeric(last)
                && bytes.iter().all(|&b| is_lower_alphanumeric(b) || b == b'-')
        }
        _ => false,
    }
}

/// Dot-separated DNS-1123 labels, with no length limit.
fn matches_dns1123_subdomain(value: &str) -> bool {
    value.split('.').all(matches_dns1123_label)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`, with no length limit.
fn matches_dns1035_label(value: &str) -> bool {
    value.as_bytes().first().is_some_and(u8::is_ascii_lowercase) && matches_dns1123_label(value)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, with no length limit.
fn matches_qualified_name_part(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(rule: fn(&str) -> Result<(), String>, values: &[&str]) {
        for value in values {
            assert_eq!(rule(value), Ok(()), "`{value}` must be accepted");
        }
    }

    fn refuses(rule: fn(&str) -> Result<(), String>, values: &[&str]) {
        for value in values {
            assert!(rule(value).is_err(), "`{value}` must be refused");
        }
    }

    fn sized(length: usize, fill: char) -> String {
        std::iter::repeat_n(fill, length).collect()
    }

    #[test]
    fn dns1123_labels() {
        let longest = sized(63, 'a');
        accepts(
            dns1123_label,
            &["a", "0", "my-name", "123-abc", "a-1", &longest],
        );
        let too_long = sized(64, 'a');
        refuses(
            dns1123_label,
            &["", "-a", "a-", "My-name", "a_b", "a.b", "ä", &too_long],
        );
        assert_eq!(
            dns1123_label(&too_long).unwrap_err(),
            "must be no more than 63 characters"
        );
        assert_eq!(dns1123_label("a.b").unwrap_err(), "must not contain dots");
        assert_eq!(
            dns1123_label("A").unwrap_err(),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
    }

    #[test]
    fn dns1035_labels() {
        let longest = sized(63, 'a');
        accepts(dns1035_label, &["a", "my-name", "abc-123", &longest]);
        let too_long = sized(64, 'a');
        refuses(
            dns1035_label,
            &["", "1abc", "123", "-a", "a-", "my.app", "My-app", &too_long],
        );
        assert!(
            dns1035_label("my.app")
                .unwrap_err()
                .starts_with("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character")
        );
    }

    #[test]
    fn dns1123_subdomains() {
        // The server limits the whole, not each label.
        let long_label = format!("{}.com", sized(64, 'a'));
        let longest = format!("{}.{}", sized(126, 'a'), sized(126, 'b'));
        assert_eq!(longest.len(), 253);
        accepts(
            dns1123_subdomain,
            &[
                "a",
                "example.com",
                "1.2.3",
                "a-b.c-d",
                &long_label,
                &longest,
            ],
        );
        let too_long = format!("{longest}b");
        refuses(
            dns1123_subdomain,
            &[
                "",
                ".a",
                "a.",
                "a..b",
                "Example.com",
                "a_b.com",
                "*.a.com",
                &too_long,
            ],
        );
        assert_eq!(
            dns1123_subdomain(&too_long).unwrap_err(),
            "must be no more than 253 characters"
        );
    }

    #[test]
    fn wildcard_subdomains_and_ingress_hosts() {
        accepts(wildcard_dns1123_subdomain, &["*.example.com", "*.a"]);
        refuses(
            wildcard_dns1123_subdomain,
            &[
                "example.com",
                "*",
                "*.",
                "*.*.a.com",
                "a.*.com",
                "*a.com",
                "*.A.com",
            ],
        );
        accepts(
            ingress_host,
            &["shop.example.com", "*.example.com", "1.example.com"],
        );
        refuses(
            ingress_host,
            &[
                "10.0.0.1",
                "010.0.0.1",
                "::1",
                "a.*.com",
                "Shop.example.com",
                "",
            ],
        );
        assert_eq!(
            ingress_host("10.0.0.1").unwrap_err(),
            "must be a DNS name, not an IP address"
        );
    }

    #[test]
    fn qualified_names() {
        let longest_name = sized(63, 'N');
        let longest_prefix = format!("{}.{}/x", sized(126, 'a'), sized(126, 'b'));
        accepts(
            qualified_name,
            &[
                "a",
                "MyName",
                "my.name",
                "123-abc",
                "a_b",
                "example.com/MyName",
                "app.kubernetes.io/name",
                &longest_name,
                &longest_prefix,
            ],
        );
        let too_long_name = sized(64, 'N');
        let too_long_prefix = format!("{}.{}b/x", sized(126, 'a'), sized(126, 'b'));
        refuses(
            qualified_name,
            &[
                "",
                "/a",
                "a/",
                "a/b/c",
                "-a",
                "a-",
                "a b",
                "Example.com/a",
                "exa_mple.com/a",
                &too_long_name,
                &too_long_prefix,
            ],
        );
        assert_eq!(
            qualified_name(&too_long_name).unwrap_err(),
            "name part must be no more than 63 characters"
        );
        assert!(
            qualified_name("Example.com/a")
                .unwrap_err()
                .starts_with("prefix part a lowercase RFC 1123 subdomain")
        );
        assert!(
            qualified_name("/a")
                .unwrap_err()
                .starts_with("prefix part must be non-empty")
        );
        assert!(
            qualified_name("a/b/c")
                .unwrap_err()
                .starts_with("a qualified name must consist of")
        );
        assert_eq!(label_key("Example.com/a"), qualified_name("Example.com/a"));
    }

    #[test]
    fn annotation_keys_ignore_case() {
        accepts(
            annotation_key,
            &["Example.COM/Key", "example.com/key", "KEY"],
        );
        refuses(annotation_key, &["a/b/c", "-a", "ex_ample.com/a", ""]);
    }

    #[test]
    fn label_values() {
        let longest = sized(63, 'v');
        accepts(
            label_value,
            &["", "MyValue", "my_value", "12345", "a.b-c", &longest],
        );
        let too_long = sized(64, 'v');
        refuses(
            label_value,
            &["-a", "a-", "_a", "a b", "a/b", "ä", &too_long],
        );
        assert_eq!(
            label_value(&too_long).unwrap_err(),
            "must be no more than 63 characters"
        );
    }

    #[test]
    fn port_names() {
        let longest = sized(15, 'p');
        accepts(port_name, &["http", "h2c", "a", "web-1", "1a", &longest]);
        let too_long = sized(16, 'p');
        refuses(
            port_name,
            &[
                "", "80", "123-456", "HTTP", "a--b", "-a", "a-", "a_b", "a.b", &too_long,
            ],
        );
        assert_eq!(
            port_name("a--b").unwrap_err(),
            "must not contain consecutive hyphens"
        );
        assert_eq!(
            port_name("80").unwrap_err(),
            "must contain at least one letter (a-z)"
        );
        assert_eq!(
            port_name(&too_long).unwrap_err(),
            "must be no more than 15 characters"
        );
    }

    #[test]
    fn http_header_names() {
        accepts(http_header_name, &["X-Header-Name", "Accept", "x-1", "-"]);
        // Valid RFC 7230 tokens that the server still refuses.
        refuses(
            http_header_name,
            &["", "X_Header", "X.Header", "X Header", "a:b", "X!"],
        );
    }

    #[test]
    fn env_var_names() {
        accepts(
            env_var_name,
            &[
                "A",
                "my.env-name",
                "MY_ENV.NAME",
                "MyEnvName1",
                "_A",
                "-a",
                ".a",
            ],
        );
        refuses(
            env_var_name,
            &["", "1A", "A=B", "A B", "Ä", ".", "..", "..a"],
        );
        assert_eq!(env_var_name("..a").unwrap_err(), "must not start with '..'");
    }

    #[test]
    fn config_keys() {
        let longest = sized(253, 'k');
        accepts(
            config_key,
            &["key.name", "KEY_NAME", "key-name", "1", &longest],
        );
        let too_long = sized(254, 'k');
        refuses(config_key, &["", "a/b", "a b", ".", "..", "..a", &too_long]);
    }

    #[test]
    fn annotations_limit_their_total_size() {
        let at_limit = BTreeMap::from([("k".to_string(), sized(ANNOTATIONS_SIZE_MAX - 1, 'v'))]);
        assert_eq!(annotations_size(&at_limit), Ok(()));
        let over = BTreeMap::from([
            ("k".to_string(), sized(ANNOTATIONS_SIZE_MAX - 1, 'v')),
            ("l".to_string(), String::new()),
        ]);
        assert!(annotations_size(&over).is_err());
        assert_eq!(annotations(&over).len(), 1);
    }

    #[test]
    fn maps_name_the_key_at_fault() {
        let bad = BTreeMap::from([
            ("Team.io/x".to_string(), "ok".to_string()),
            ("tier".to_string(), "not ok".to_string()),
        ]);
        let problems = labels(&bad);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("key `Team.io/x`: prefix part"));
        assert!(problems[1].starts_with("value `not ok` of `tier`: a valid label"));
        // The same prefix with uppercase is fine in an annotation key.
        let annotated = BTreeMap::from([("Team.io/x".to_string(), "any value".to_string())]);
        assert!(annotations(&annotated).is_empty());
    }
}
