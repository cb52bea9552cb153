//! Reading string-valued configs (connectors', transforms', the worker's): numbers,
//! flags and comma lists, each refusing a bad value with an error that names the key.
//! The one place such values are read.

use crate::api::Config;
use crate::error::{Error, Result};

pub fn flag(config: &Config, key: &str) -> Result<bool> {
    match config.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(Error::config(key, format!("{v} is neither true nor false"))),
    }
}

pub fn number<T: std::str::FromStr>(config: &Config, key: &str, default: T) -> Result<T> {
    match config.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| Error::config(key, format!("{v} is not a valid number"))),
    }
}

pub fn list(config: &Config, key: &str) -> Vec<String> {
    config
        .get(key)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}
