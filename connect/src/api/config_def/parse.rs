//! From a config's strings to typed [`Values`], as Kafka's `ConfigDef.parse` and
//! `validateAll` do, with their messages ("Invalid value x for configuration k: Not a
//! number of type INT", "Missing required configuration ...").

use std::collections::BTreeMap;

use super::{ConfigDef, ConfigKey, Default, Type, Validator};
use crate::api::Config;
use crate::error::{Error, Result};

/// One parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    Null,
    Boolean(bool),
    /// STRING, CLASS and PASSWORD values.
    String(String),
    /// INT and LONG values.
    Long(i64),
    Double(f64),
    List(Vec<String>),
}

/// A config parsed by its definition: every defined key has a value (its default when
/// unset). Reading a key the definition lacks is a bug in the reader; it reads as null.
#[derive(Debug, Clone, PartialEq)]
pub struct Values {
    values: BTreeMap<&'static str, ConfigValue>,
}

impl ConfigDef {
    /// Every defined key's value; the first key that is missing or invalid is the error.
    pub fn parse(&self, config: &Config) -> Result<Values> {
        let mut values = BTreeMap::new();
        for k in self.keys() {
            values.insert(
                k.name,
                parse_key(k, config.get(k.name).map(String::as_str))?,
            );
        }
        Ok(Values { values })
    }

    /// Each invalid or missing key with Kafka's message for it (`validateAll`).
    pub fn validate(&self, config: &Config) -> Vec<(String, String)> {
        self.keys()
            .iter()
            .filter_map(|k| parse_key(k, config.get(k.name).map(String::as_str)).err())
            .map(Error::field_message)
            .collect()
    }
}

/// One key's value: the given string or the default, parsed and checked.
pub(crate) fn parse_key(key: &ConfigKey, given: Option<&str>) -> Result<ConfigValue> {
    let text = match (given, key.default) {
        (Some(v), _) => v,
        (None, Default::Value(d)) => d,
        (None, Default::Null) => return Ok(ConfigValue::Null),
        (None, Default::Required) => return Err(Error::MissingConfig(key.name.into())),
    };
    let invalid = |message: String| Error::InvalidValue {
        field: key.name.into(),
        value: text.to_string(),
        message,
    };
    let trimmed = text.trim();
    let value = match key.ty {
        Type::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" => ConfigValue::Boolean(true),
            "false" => ConfigValue::Boolean(false),
            _ => return Err(invalid("Expected value to be either true or false".into())),
        },
        Type::String | Type::Class => ConfigValue::String(trimmed.to_string()),
        Type::Password => ConfigValue::String(text.to_string()),
        Type::Int => match trimmed.parse::<i32>() {
            Ok(n) => ConfigValue::Long(n.into()),
            Err(_) => return Err(invalid("Not a number of type INT".into())),
        },
        Type::Long => match trimmed.parse::<i64>() {
            Ok(n) => ConfigValue::Long(n),
            Err(_) => return Err(invalid("Not a number of type LONG".into())),
        },
        Type::Double => match trimmed.parse::<f64>() {
            Ok(n) => ConfigValue::Double(n),
            Err(_) => return Err(invalid("Not a number of type DOUBLE".into())),
        },
        Type::List => ConfigValue::List(
            trimmed
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
    };
    check(key.validator, &value).map_err(invalid)?;
    Ok(value)
}

fn check(validator: Validator, value: &ConfigValue) -> std::result::Result<(), String> {
    let number = match value {
        ConfigValue::Long(n) => Some(*n as f64),
        ConfigValue::Double(n) => Some(*n),
        _ => None,
    };
    match (validator, number, value) {
        (Validator::AtLeast(min), Some(n), _) | (Validator::Between(min, _), Some(n), _)
            if n < min as f64 =>
        {
            Err(format!("Value must be at least {min}"))
        }
        (Validator::Between(_, max), Some(n), _) if n > max as f64 => {
            Err(format!("Value must be no more than {max}"))
        }
        (Validator::OneOf(allowed), _, ConfigValue::String(s))
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(s)) =>
        {
            Err(format!(
                "String must be one of (case insensitive): {}",
                allowed.join(", ")
            ))
        }
        (Validator::NonEmpty, _, ConfigValue::String(s)) if s.is_empty() => {
            Err("String must be non-empty".into())
        }
        _ => Ok(()),
    }
}

impl Values {
    pub fn get(&self, name: &str) -> &ConfigValue {
        debug_assert!(self.values.contains_key(name), "{name} is not defined");
        self.values.get(name).unwrap_or(&ConfigValue::Null)
    }

    /// A STRING, CLASS or PASSWORD value; `None` when null.
    pub fn string(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            ConfigValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// A string value that is set and not blank.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.string(name).filter(|s| !s.trim().is_empty())
    }

    /// A string value in lower case (the keys validated by [`Validator::OneOf`]).
    pub fn lowercase(&self, name: &str) -> Option<String> {
        self.string(name).map(str::to_ascii_lowercase)
    }

    pub fn boolean(&self, name: &str) -> bool {
        matches!(self.get(name), ConfigValue::Boolean(true))
    }

    pub fn list(&self, name: &str) -> &[String] {
        match self.get(name) {
            ConfigValue::List(l) => l,
            _ => &[],
        }
    }

    /// An INT or LONG value as `T`; null or out of `T`'s range is an error naming the key.
    pub fn number<T: TryFrom<i64>>(&self, name: &str) -> Result<T> {
        match self.get(name) {
            ConfigValue::Long(n) => T::try_from(*n).map_err(|_| Error::InvalidValue {
                field: name.into(),
                value: n.to_string(),
                message: "Value is out of range".into(),
            }),
            _ => Err(Error::MissingConfig(name.into())),
        }
    }

    pub fn double(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            ConfigValue::Double(n) => Some(*n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{key, ConfigDef, Type, Validator};
    use crate::api::Config;

    fn def() -> ConfigDef {
        ConfigDef::new().group(
            "Main",
            [
                key("size", Type::Int, "")
                    .default("10")
                    .validator(Validator::AtLeast(1)),
                key("mode", Type::String, "")
                    .required()
                    .validator(Validator::OneOf(&["bulk", "incrementing"])),
                key("enabled", Type::Boolean, "").default("false"),
                key("names", Type::List, "").default(""),
                key("ratio", Type::Double, "").validator(Validator::Between(0, 1)),
            ],
        )
    }

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_given_values_and_defaults() {
        let v = def()
            .parse(&config(&[("mode", " BULK "), ("names", "a, b,,c")]))
            .unwrap();
        assert_eq!(v.number::<usize>("size").unwrap(), 10);
        assert_eq!(v.lowercase("mode").as_deref(), Some("bulk"));
        assert!(!v.boolean("enabled"));
        assert_eq!(v.list("names"), ["a", "b", "c"]);
        assert_eq!(v.double("ratio"), None);
        let v = def()
            .parse(&config(&[
                ("mode", "bulk"),
                ("enabled", "TRUE"),
                ("ratio", "0.5"),
            ]))
            .unwrap();
        assert!(v.boolean("enabled"));
        assert_eq!(v.double("ratio"), Some(0.5));
    }

    /// Messages as Kafka's ConfigDef / ConfigException word them.
    #[test]
    fn errors_use_kafkas_wording() {
        let d = def();
        let msg = |pairs: &[(&str, &str)]| d.parse(&config(pairs)).unwrap_err().to_string();
        assert_eq!(
            msg(&[]),
            "Missing required configuration \"mode\" which has no default value."
        );
        assert_eq!(
            msg(&[("mode", "bulk"), ("size", "ten")]),
            "Invalid value ten for configuration size: Not a number of type INT"
        );
        assert_eq!(
            msg(&[("mode", "bulk"), ("size", "0")]),
            "Invalid value 0 for configuration size: Value must be at least 1"
        );
        assert_eq!(
            msg(&[("mode", "bulk"), ("ratio", "2")]),
            "Invalid value 2 for configuration ratio: Value must be no more than 1"
        );
        assert_eq!(
            msg(&[("mode", "nope")]),
            "Invalid value nope for configuration mode: String must be one of (case insensitive): bulk, incrementing"
        );
        assert_eq!(
            msg(&[("mode", "bulk"), ("enabled", "yes")]),
            "Invalid value yes for configuration enabled: Expected value to be either true or false"
        );
        assert_eq!(
            msg(&[("mode", "bulk"), ("size", "99999999999")]),
            "Invalid value 99999999999 for configuration size: Not a number of type INT"
        );
    }

    #[test]
    fn validate_reports_every_bad_key() {
        let errors = def().validate(&config(&[("size", "-1"), ("enabled", "x")]));
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["size", "mode", "enabled"]);
        assert!(def()
            .validate(&config(&[("mode", "incrementing")]))
            .is_empty());
    }

    #[test]
    fn groups_number_their_keys_and_later_definitions_win() {
        let d = def()
            .group("Other", [key("x", Type::String, "")])
            .with(ConfigDef::new().group("Main", [key("size", Type::Long, "").default("5")]));
        assert_eq!(d.groups(), ["Main", "Other"]);
        assert_eq!(d.find("x").unwrap().order, 1);
        assert_eq!(d.find("size").unwrap().ty, Type::Long);
        // The later definition replaces the key in its place, as it was written.
        assert_eq!(d.find("size").unwrap().order, 1);
        assert_eq!(d.keys()[0].name, "size");
        assert_eq!(d.find("ratio").unwrap().order, 5);
        let prefixed = d.prefixed("transforms.a.", "Transforms: a");
        assert_eq!(prefixed[0].0, "transforms.a.size");
        assert_eq!(prefixed[0].1.group, "Transforms: a");
    }
}
