//! Converters between Connect data and Kafka bytes: JsonConverter (with or without the
//! schema envelope), StringConverter, ByteArrayConverter.

pub mod json;
mod json_read;
mod json_write;

use crate::api::config_def::{key, ConfigDef, Type, Validator};
use crate::api::{Config, Schema, SchemaType, Value};
use crate::error::{Error, Result};

pub trait Converter: Send + Sync {
    /// `&mut`: a converter may keep per-task caches (JsonConverter's schema cache).
    fn to_bytes(
        &mut self,
        topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>>;
    fn to_connect(&mut self, topic: &str, data: Option<&[u8]>) -> Result<(Option<Schema>, Value)>;
}

pub struct StringConverter;

impl Converter for StringConverter {
    fn to_bytes(
        &mut self,
        _topic: &str,
        _schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>> {
        Ok(match value {
            Value::Null => None,
            Value::Bytes(b) => Some(b.clone()),
            v => Some(v.to_string().into_bytes()),
        })
    }
    fn to_connect(&mut self, _topic: &str, data: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let value = match data {
            None => Value::Null,
            Some(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        };
        Ok((Some(Schema::optional_string()), value))
    }
}

pub struct ByteArrayConverter;

impl Converter for ByteArrayConverter {
    fn to_bytes(
        &mut self,
        topic: &str,
        _schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>> {
        match value {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(b.clone())),
            other => Err(Error::Conversion(format!("ByteArrayConverter is not compatible with objects of type {other:?} (topic {topic})"))),
        }
    }
    fn to_connect(&mut self, _topic: &str, data: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        Ok((
            Some(Schema::new(SchemaType::Bytes).optional()),
            data.map_or(Value::Null, |b| Value::Bytes(b.to_vec())),
        ))
    }
}

/// The converter classes Runnel has.
pub const CONVERTER_CLASSES: &[&str] = &[
    "org.apache.kafka.connect.converters.ByteArrayConverter",
    "org.apache.kafka.connect.json.JsonConverter",
    "org.apache.kafka.connect.storage.StringConverter",
];

/// A converter class's keys (under `key.converter.` / `value.converter.` in a
/// config); `None` for a class Runnel does not have.
pub fn definition(class: &str) -> Option<ConfigDef> {
    match class.rsplit('.').next().unwrap_or(class) {
        "JsonConverter" => Some(
            ConfigDef::new().define([
                key(
                    "schemas.enable",
                    Type::Boolean,
                    "Whether values carry their schema: {\"schema\": ..., \"payload\": ...}.",
                )
                .default("true")
                .high(),
                key(
                    "schemas.cache.size",
                    Type::Int,
                    "How many schemas to keep converted in each direction.",
                )
                .default("1000")
                .validator(Validator::AtLeast(0)),
            ]),
        ),
        "StringConverter" | "ByteArrayConverter" => Some(ConfigDef::new()),
        _ => None,
    }
}

/// Builds a converter from its class name (Kafka's full names or short aliases) and the
/// properties under its prefix (`value.converter.schemas.enable` -> `schemas.enable`).
pub fn create(class: &str, props: &Config) -> Result<Box<dyn Converter>> {
    let def = definition(class)
        .ok_or_else(|| Error::config("converter", format!("unknown converter class {class}")))?;
    let values = def.parse(props)?;
    Ok(match class.rsplit('.').next().unwrap_or(class) {
        "JsonConverter" => Box::new(json::JsonConverter::new(
            values.boolean("schemas.enable"),
            values.number("schemas.cache.size")?,
        )),
        "StringConverter" => Box::new(StringConverter),
        _ => Box::new(ByteArrayConverter),
    })
}

/// The converter for `prefix` (`key.converter` or `value.converter`): the connector's
/// setting wins over the worker's.
pub fn for_prefix(prefix: &str, connector: &Config, worker: &Config) -> Result<Box<dyn Converter>> {
    let source = if connector.contains_key(prefix) {
        connector
    } else {
        worker
    };
    let class = source
        .get(prefix)
        .map(String::as_str)
        .unwrap_or("org.apache.kafka.connect.json.JsonConverter");
    let props = crate::runtime::config::with_prefix(source, &format!("{prefix}."));
    create(class, &props).map_err(|e| match e {
        Error::Config { field, reason } if field == "converter" => Error::config(prefix, reason),
        other => other.under(&format!("{prefix}.")),
    })
}
