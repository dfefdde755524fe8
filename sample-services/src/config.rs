//! Configuration from environment variables. A dependency's address comes only from the
//! `<NAME>_URL` variable Flotilla injects for each `spec.dependsOn` entry, a backing
//! service's from the `<NAME>_URL` (and `_HOST`, `_PORT`, …) it injects for each
//! `spec.backingServices` entry.

use std::fmt;
use std::str::FromStr;

/// A setting that is missing or malformed: the process exits at start with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The variable's value; `None` when it is unset or empty.
pub fn env_opt(name: &str) -> Option<String> {
    lookup(name)
}

/// The variable's value, or `default` when it is unset or empty.
pub fn env_or(name: &str, default: &str) -> String {
    lookup(name).unwrap_or_else(|| default.to_string())
}

/// The variable parsed as `T`, or `default` when unset; a value that does not parse is
/// an error naming the variable.
pub fn env_parse<T: FromStr>(name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match lookup(name) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| ConfigError(format!("{name}={raw:?} is not valid: {e}"))),
    }
}

/// The base URL of dependency `dependency` from `<DEPENDENCY>_URL` (e.g. `USERS_URL`),
/// without a trailing slash. `caller` names the service, for the message.
pub fn required_url(caller: &str, dependency: &str) -> Result<String, ConfigError> {
    let var = format!("{}_URL", dependency.to_ascii_uppercase().replace('-', "_"));
    let Some(url) = lookup(&var) else {
        return Err(ConfigError(format!(
            "{var} is not set: {caller} calls {dependency} through it. Under Flotilla, add \
             `{{name: {dependency}}}` to the Microservice's spec.dependsOn; elsewhere, set it \
             to the base URL, e.g. {var}=http://127.0.0.1:8081"
        )));
    };
    check_url(&var, &url)
}

fn check_url(var: &str, url: &str) -> Result<String, ConfigError> {
    // Only plain http: the samples carry no TLS stack, and in-cluster traffic is http.
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        ConfigError(format!(
            "{var}={url:?} must be an http:// URL (is the dependency's port appProtocol http?)"
        ))
    })?;
    if rest.trim_end_matches('/').is_empty() {
        return Err(ConfigError(format!("{var}={url:?} has no host")));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn lookup(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_with_a_host_and_lose_the_trailing_slash() {
        assert_eq!(
            check_url("USERS_URL", "http://users.shop.svc.cluster.local:80/"),
            Ok("http://users.shop.svc.cluster.local:80".to_string())
        );
        assert!(check_url("USERS_URL", "https://users").is_err());
        assert!(check_url("USERS_URL", "http://").is_err());
    }

    #[test]
    fn a_missing_dependency_url_says_what_to_set() {
        let err = required_url("orders", "no-such-dependency-xyz").unwrap_err();
        assert!(
            err.0.starts_with("NO_SUCH_DEPENDENCY_XYZ_URL is not set"),
            "{err}"
        );
        assert!(err.0.contains("spec.dependsOn"), "{err}");
    }

    #[test]
    fn unparsable_numbers_name_the_variable() {
        // SAFETY of the test: this variable is read by this test only.
        unsafe { std::env::set_var("SAMPLES_TEST_NUMBER", "lots") };
        let err = env_parse::<u64>("SAMPLES_TEST_NUMBER", 1).unwrap_err();
        assert!(err.0.contains("SAMPLES_TEST_NUMBER=\"lots\""), "{err}");
        assert_eq!(env_parse::<u64>("SAMPLES_TEST_UNSET_NUMBER", 7), Ok(7));
    }
}
