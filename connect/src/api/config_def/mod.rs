//! Kafka's `ConfigDef`: one typed definition per config key (name, type, default,
//! validator, importance, documentation, group) that drives parsing
//! ([`ConfigDef::parse`]), per-key validation for `PUT
//! /connector-plugins/{type}/config/validate` ([`ConfigDef::validate`]) and the
//! generated reference in the README. Every connector, transform, predicate, converter
//! and the worker declare their keys here and read them only through [`Values`].
//!
//! Layout: this file holds the definitions; `parse.rs` turns strings into typed
//! [`Values`] with Kafka's error messages.

mod parse;

use std::borrow::Cow;

pub use parse::{ConfigValue, Values};

/// A key's type, as Kafka's `ConfigDef.Type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Boolean,
    String,
    Int,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::Boolean => "BOOLEAN",
            Type::String => "STRING",
            Type::Int => "INT",
            Type::Long => "LONG",
            Type::Double => "DOUBLE",
            Type::List => "LIST",
            Type::Class => "CLASS",
            Type::Password => "PASSWORD",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    High,
    Medium,
    Low,
}

impl Importance {
    pub fn name(self) -> &'static str {
        match self {
            Importance::High => "HIGH",
            Importance::Medium => "MEDIUM",
            Importance::Low => "LOW",
        }
    }
}

/// What a key is when the config does not set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// Kafka's `NO_DEFAULT_VALUE`: the key must be set.
    Required,
    /// Unset means null (an optional key without a default).
    Null,
    /// This value, parsed as if the config had set it.
    Value(&'static str),
}

/// Checks on a parsed value, with the messages of Kafka's validators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validator {
    Any,
    /// `Range.atLeast`.
    AtLeast(i64),
    /// `Range.between`.
    Between(i64, i64),
    /// `CaseInsensitiveValidString.in`.
    OneOf(&'static [&'static str]),
    /// `NonEmptyString`.
    NonEmpty,
}

/// One key's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigKey {
    pub name: &'static str,
    pub ty: Type,
    pub default: Default,
    pub validator: Validator,
    pub importance: Importance,
    pub documentation: &'static str,
    /// Set by [`ConfigDef::group`]; empty for keys outside any group.
    pub group: Cow<'static, str>,
    /// Position within its group, from 1 (Kafka's `orderInGroup`); -1 outside any group.
    pub order: i32,
}

/// A key of type `ty`, optional (null when unset), medium importance.
pub fn key(name: &'static str, ty: Type, documentation: &'static str) -> ConfigKey {
    ConfigKey {
        name,
        ty,
        default: Default::Null,
        validator: Validator::Any,
        importance: Importance::Medium,
        documentation,
        group: Cow::Borrowed(""),
        order: -1,
    }
}

impl ConfigKey {
    pub fn default(mut self, value: &'static str) -> ConfigKey {
        self.default = Default::Value(value);
        self
    }
    pub fn required(mut self) -> ConfigKey {
        self.default = Default::Required;
        self
    }
    pub fn validator(mut self, validator: Validator) -> ConfigKey {
        self.validator = validator;
        self
    }
    pub fn importance(mut self, importance: Importance) -> ConfigKey {
        self.importance = importance;
        self
    }
    pub fn high(self) -> ConfigKey {
        self.importance(Importance::High)
    }
    pub fn medium(self) -> ConfigKey {
        self.importance(Importance::Medium)
    }
    pub fn low(self) -> ConfigKey {
        self.importance(Importance::Low)
    }

    /// The default as Kafka's REST API shows it (`default_value`).
    pub fn default_text(&self) -> Option<String> {
        match self.default {
            Default::Value(v) if self.ty == Type::Password && !v.is_empty() => {
                Some("[hidden]".into())
            }
            Default::Value(v) => Some(v.to_string()),
            _ => None,
        }
    }
}

/// The keys of one connector, transform, converter or worker, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigDef {
    keys: Vec<ConfigKey>,
}

impl ConfigDef {
    pub fn new() -> ConfigDef {
        ConfigDef::default()
    }

    /// Adds keys outside any group.
    pub fn define(mut self, keys: impl IntoIterator<Item = ConfigKey>) -> ConfigDef {
        for k in keys {
            self.insert(k);
        }
        self
    }

    /// Adds keys to `group`, numbered from 1 in the order given.
    pub fn group(
        mut self,
        group: &'static str,
        keys: impl IntoIterator<Item = ConfigKey>,
    ) -> ConfigDef {
        let mut order = self.keys.iter().filter(|k| k.group == group).count() as i32;
        for mut k in keys {
            order += 1;
            k.group = Cow::Borrowed(group);
            k.order = order;
            self.insert(k);
        }
        self
    }

    /// Another definition's keys after these (Kafka's `ConfigDef(base)` + defines); a
    /// key defined twice keeps its later definition.
    pub fn with(mut self, other: ConfigDef) -> ConfigDef {
        for k in other.keys {
            self.insert(k);
        }
        self
    }

    /// These keys with `prefix` before each name and `group` as their group, as Kafka
    /// Connect shows a transform's keys inside a connector's (`transforms.<alias>.`).
    pub fn prefixed(&self, prefix: &str, group: &str) -> Vec<(String, ConfigKey)> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut k = k.clone();
                k.group = Cow::Owned(group.to_string());
                k.order = i as i32 + 1;
                (format!("{prefix}{}", k.name), k)
            })
            .collect()
    }

    fn insert(&mut self, key: ConfigKey) {
        match self.keys.iter_mut().find(|k| k.name == key.name) {
            Some(old) => *old = key,
            None => self.keys.push(key),
        }
    }

    pub fn keys(&self) -> &[ConfigKey] {
        &self.keys
    }

    pub fn find(&self, name: &str) -> Option<&ConfigKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// Group names in the order their first key appears.
    pub fn groups(&self) -> Vec<String> {
        groups(self.keys.iter())
    }
}

/// Group names in the order their first key appears.
pub fn groups<'a>(keys: impl Iterator<Item = &'a ConfigKey>) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for k in keys {
        if !k.group.is_empty() && !groups.iter().any(|g| *g == k.group) {
            groups.push(k.group.to_string());
        }
    }
    groups
}
