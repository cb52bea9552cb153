//! ksqlDB's column types and their Arrow equivalents.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SqlType {
    Boolean,
    Integer,
    Bigint,
    Double,
    Decimal(u8, i8),
    String,
    Bytes,
    Timestamp,
    Date,
    Time,
    Array(Box<SqlType>),
    Map(Box<SqlType>, Box<SqlType>),
    Struct(Vec<(String, SqlType)>),
}

impl SqlType {
    /// A type name as ksqlDB spells it (and its aliases); `None` if unknown.
    pub fn simple(name: &str) -> Option<SqlType> {
        Some(match name.to_ascii_uppercase().as_str() {
            "BOOLEAN" | "BOOL" => SqlType::Boolean,
            "INT" | "INTEGER" => SqlType::Integer,
            "BIGINT" => SqlType::Bigint,
            "DOUBLE" => SqlType::Double,
            "STRING" | "VARCHAR" => SqlType::String,
            "BYTES" => SqlType::Bytes,
            "TIMESTAMP" => SqlType::Timestamp,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            _ => return None,
        })
    }

    pub fn to_arrow(&self) -> DataType {
        match self {
            SqlType::Boolean => DataType::Boolean,
            SqlType::Integer => DataType::Int32,
            SqlType::Bigint => DataType::Int64,
            SqlType::Double => DataType::Float64,
            SqlType::Decimal(p, s) => DataType::Decimal128(*p, *s),
            SqlType::String => DataType::Utf8,
            SqlType::Bytes => DataType::Binary,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            SqlType::Date => DataType::Date32,
            SqlType::Time => DataType::Time32(TimeUnit::Millisecond),
            SqlType::Array(t) => DataType::List(Arc::new(Field::new("item", t.to_arrow(), true))),
            SqlType::Map(k, v) => DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", k.to_arrow(), false),
                        Field::new("value", v.to_arrow(), true),
                    ])),
                    false,
                )),
                false,
            ),
            SqlType::Struct(fields) => DataType::Struct(Fields::from(
                fields
                    .iter()
                    .map(|(n, t)| Field::new(n, t.to_arrow(), true))
                    .collect::<Vec<_>>(),
            )),
        }
    }

    /// The ksqlDB type of an Arrow type a query produced.
    pub fn from_arrow(t: &DataType) -> Option<SqlType> {
        Some(match t {
            DataType::Boolean => SqlType::Boolean,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16 => SqlType::Integer,
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => SqlType::Bigint,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => SqlType::Double,
            DataType::Decimal128(p, s) => SqlType::Decimal(*p, *s),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::String,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Bytes,
            DataType::Timestamp(_, _) => SqlType::Timestamp,
            DataType::Date32 | DataType::Date64 => SqlType::Date,
            DataType::Time32(_) | DataType::Time64(_) => SqlType::Time,
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                SqlType::Array(Box::new(SqlType::from_arrow(f.data_type())?))
            }
            DataType::Map(f, _) => match f.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => SqlType::Map(
                    Box::new(SqlType::from_arrow(kv[0].data_type())?),
                    Box::new(SqlType::from_arrow(kv[1].data_type())?),
                ),
                _ => return None,
            },
            DataType::Struct(fields) => SqlType::Struct(
                fields
                    .iter()
                    .map(|f| Some((f.name().clone(), SqlType::from_arrow(f.data_type())?)))
                    .collect::<Option<Vec<_>>>()?,
            ),
            DataType::Null => SqlType::String,
            _ => return None,
        })
    }
}

impl SqlType {
    /// ARRAY, MAP or STRUCT.
    pub fn is_nested(&self) -> bool {
        matches!(
            self,
            SqlType::Array(_) | SqlType::Map(_, _) | SqlType::Struct(_)
        )
    }

    /// The type's name without its parameters (`ARRAY`, `DECIMAL`), as ksqlDB's
    /// format errors name it.
    pub fn base_name(&self) -> String {
        let full = self.to_string();
        full.split(['<', '('])
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// Whether the type is or holds a MAP.
    pub fn contains_map(&self) -> bool {
        match self {
            SqlType::Map(_, _) => true,
            SqlType::Array(t) => t.contains_map(),
            SqlType::Struct(fields) => fields.iter().any(|(_, t)| t.contains_map()),
            _ => false,
        }
    }

    /// Whether the type holds a MAP whose keys are not STRING (JSON cannot).
    pub fn has_non_string_map_key(&self) -> bool {
        match self {
            SqlType::Map(k, v) => **k != SqlType::String || v.has_non_string_map_key(),
            SqlType::Array(t) => t.has_non_string_map_key(),
            SqlType::Struct(fields) => fields.iter().any(|(_, t)| t.has_non_string_map_key()),
            _ => false,
        }
    }

    /// Equal, comparing struct field names without regard to case.
    pub fn same_ignoring_field_case(&self, other: &SqlType) -> bool {
        match (self, other) {
            (SqlType::Array(a), SqlType::Array(b)) => a.same_ignoring_field_case(b),
            (SqlType::Map(ak, av), SqlType::Map(bk, bv)) => {
                ak.same_ignoring_field_case(bk) && av.same_ignoring_field_case(bv)
            }
            (SqlType::Struct(a), SqlType::Struct(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|((an, at), (bn, bt))| {
                        an.eq_ignore_ascii_case(bn) && at.same_ignoring_field_case(bt)
                    })
            }
            (a, b) => a == b,
        }
    }

    /// The type as ksqlDB's messages write it: struct fields in backticks.
    pub fn quoted(&self) -> String {
        match self {
            SqlType::Array(t) => format!("ARRAY<{}>", t.quoted()),
            SqlType::Map(k, v) => format!("MAP<{}, {}>", k.quoted(), v.quoted()),
            SqlType::Struct(fields) => format!(
                "STRUCT<{}>",
                fields
                    .iter()
                    .map(|(n, t)| format!("`{n}` {}", t.quoted()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => f.write_str("BOOLEAN"),
            SqlType::Integer => f.write_str("INTEGER"),
            SqlType::Bigint => f.write_str("BIGINT"),
            SqlType::Double => f.write_str("DOUBLE"),
            SqlType::Decimal(p, s) => write!(f, "DECIMAL({p}, {s})"),
            SqlType::String => f.write_str("STRING"),
            SqlType::Bytes => f.write_str("BYTES"),
            SqlType::Timestamp => f.write_str("TIMESTAMP"),
            SqlType::Date => f.write_str("DATE"),
            SqlType::Time => f.write_str("TIME"),
            SqlType::Array(t) => write!(f, "ARRAY<{t}>"),
            SqlType::Map(k, v) => write!(f, "MAP<{k}, {v}>"),
            SqlType::Struct(fields) => {
                f.write_str("STRUCT<")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n} {t}")?;
                }
                f.write_str(">")
            }
        }
    }
}
