//! Records as connectors see them: source records carry a source partition and offset;
//! sink records carry the Kafka coordinates they were read from.

use std::sync::Arc;

use serde_json::Map;

use super::data::{Schema, Value};

/// A JSON object, as Kafka Connect's source partitions and offsets are.
pub type JsonMap = Map<String, serde_json::Value>;

#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub key: String,
    pub schema: Option<Schema>,
    pub value: Value,
}

/// What a record is, beyond where it came from: shared by source and sink records.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key_schema: Option<Schema>,
    pub key: Value,
    pub value_schema: Option<Schema>,
    pub value: Value,
    pub timestamp: Option<i64>,
    pub headers: Vec<Header>,
}

impl ConnectRecord {
    /// A record with a schemaless or string value, for simple connectors.
    pub fn new(
        topic: impl Into<String>,
        value_schema: Option<Schema>,
        value: Value,
    ) -> ConnectRecord {
        ConnectRecord {
            topic: topic.into(),
            partition: None,
            key_schema: None,
            key: Value::Null,
            value_schema,
            value,
            timestamp: None,
            headers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// Shared: a source sends the same partition with many records (the runtime
    /// compares it by pointer first).
    pub source_partition: Arc<JsonMap>,
    pub source_offset: JsonMap,
    pub record: ConnectRecord,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    pub record: ConnectRecord,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
}
