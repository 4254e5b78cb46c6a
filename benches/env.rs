//! The benches' knobs: environment variables with defaults.

/// `name` parsed, or `default` when unset or blank; a value that does not
/// parse stops the bench rather than measure something else.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        _ => default,
    }
}
