//! Connect's data model: schemas (primitives, array, map, struct; optional; named) and
//! the values they describe, as Kafka Connect's `Schema` / `Struct`.

use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl SchemaType {
    /// The name Kafka Connect's JSON schemas use.
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    pub fn parse(name: &str) -> Option<SchemaType> {
        Some(match name {
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float" | "float32" => SchemaType::Float32,
            "double" | "float64" => SchemaType::Float64,
            "boolean" => SchemaType::Boolean,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub schema: Schema,
}

/// Cheap to clone: a record carries its schema, and a source sends the same one with
/// every record, so the fields are shared (and compared by pointer first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub ty: SchemaType,
    pub optional: bool,
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    pub parameters: Vec<(String, String)>,
    /// Struct fields, in order (`Arc::make_mut` to change them).
    pub fields: Arc<Vec<Field>>,
    /// Array elements, or map keys.
    pub key: Option<Box<Schema>>,
    /// Map values.
    pub value: Option<Box<Schema>>,
}

impl Schema {
    pub fn new(ty: SchemaType) -> Schema {
        Schema {
            ty,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: Vec::new(),
            fields: Arc::default(),
            key: None,
            value: None,
        }
    }
    pub fn optional(mut self) -> Schema {
        self.optional = true;
        self
    }
    pub fn named(mut self, name: impl Into<String>) -> Schema {
        self.name = Some(name.into());
        self
    }
    pub fn string() -> Schema {
        Schema::new(SchemaType::String)
    }
    pub fn optional_string() -> Schema {
        Schema::new(SchemaType::String).optional()
    }
    pub fn array(items: Schema) -> Schema {
        Schema {
            key: Some(Box::new(items)),
            ..Schema::new(SchemaType::Array)
        }
    }
    pub fn map(key: Schema, value: Schema) -> Schema {
        Schema {
            key: Some(Box::new(key)),
            value: Some(Box::new(value)),
            ..Schema::new(SchemaType::Map)
        }
    }
    pub fn structure(fields: Vec<Field>) -> Schema {
        Schema {
            fields: Arc::new(fields),
            ..Schema::new(SchemaType::Struct)
        }
    }
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A Connect value. Struct fields keep their schema's order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Struct(Vec<(String, Value)>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A struct field by name.
    pub fn get(&self, field: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == field).map(|(_, v)| v),
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::String(s) if s == field))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int8(v) => Some(*v as i64),
            Value::Int16(v) => Some(*v as i64),
            Value::Int32(v) => Some(*v as i64),
            Value::Int64(v) => Some(*v),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// The text form StringConverter writes: strings as they are, others like Java's toString.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Boolean(v) => write!(f, "{v}"),
            Value::Int8(v) => write!(f, "{v}"),
            Value::Int16(v) => write!(f, "{v}"),
            Value::Int32(v) => write!(f, "{v}"),
            Value::Int64(v) => write!(f, "{v}"),
            Value::Float32(v) => write!(f, "{v}"),
            Value::Float64(v) => write!(f, "{v}"),
            Value::String(v) => write!(f, "{v}"),
            Value::Bytes(v) => write!(f, "{}", String::from_utf8_lossy(v)),
            Value::Array(items) => {
                write!(f, "[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
            Value::Map(entries) => {
                write!(f, "{{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                write!(f, "}}")
            }
            Value::Struct(fields) => {
                write!(f, "Struct{{")?;
                let mut first = true;
                for (n, v) in fields.iter().filter(|(_, v)| !v.is_null()) {
                    if !first {
                        write!(f, ",")?;
                    }
                    first = false;
                    write!(f, "{n}={v}")?;
                }
                write!(f, "}}")
            }
        }
    }
}
