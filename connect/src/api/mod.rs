//! What connectors are written against: the data model, records and traits.

pub mod calendar;
pub mod config_def;
pub mod data;
pub mod record;
pub mod traits;

pub use data::{Field, Schema, SchemaType, Value};
pub use record::{ConnectRecord, Header, JsonMap, SinkRecord, SourceRecord};
pub use traits::{
    Config, ExactlyOnceSupport, OffsetReader, SinkConnector, SinkTask, SourceConnector, SourceTask,
};
