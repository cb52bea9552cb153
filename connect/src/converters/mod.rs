//! Converters between Connect data and Kafka bytes: JsonConverter (with or without the
//! schema envelope), StringConverter, ByteArrayConverter.

pub mod json;
mod json_read;
mod json_write;

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

/// Builds a converter from its class name (Kafka's full names or short aliases) and the
/// properties under its prefix (`value.converter.schemas.enable` -> `schemas.enable`).
pub fn create(class: &str, props: &Config) -> Result<Box<dyn Converter>> {
    let short = class.rsplit('.').next().unwrap_or(class);
    match short {
        "JsonConverter" => {
            let schemas_enable = match props.get("schemas.enable").map(String::as_str) {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => {
                    return Err(Error::config(
                        "schemas.enable",
                        format!("expected true or false, got {other}"),
                    ))
                }
            };
            let cache_size = match props.get("schemas.cache.size") {
                None => 1000,
                Some(v) => v.trim().parse::<usize>().map_err(|_| {
                    Error::config("schemas.cache.size", format!("{v} is not a number"))
                })?,
            };
            Ok(Box::new(json::JsonConverter::new(
                schemas_enable,
                cache_size,
            )))
        }
        "StringConverter" => Ok(Box::new(StringConverter)),
        "ByteArrayConverter" => Ok(Box::new(ByteArrayConverter)),
        _ => Err(Error::config(
            "converter",
            format!("unknown converter class {class}"),
        )),
    }
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
    let dotted = format!("{prefix}.");
    let props: Config = source
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&dotted).map(|k| (k.to_string(), v.clone())))
        .collect();
    create(class, &props).map_err(|e| match e {
        Error::Config { field, reason } if field == "converter" => Error::config(prefix, reason),
        Error::Config { field, reason } => Error::config(&format!("{prefix}.{field}"), reason),
        other => other,
    })
}
