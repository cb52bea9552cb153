//! A decoded column value on its way into a row of `ScalarValue`s or straight into an
//! Arrow column builder: the common scalars as they are, strings borrowed from the
//! record's bytes when they hold no escapes, anything else as a `ScalarValue`.

use std::borrow::Cow;

use datafusion::common::ScalarValue;

use super::null_of;
use crate::parser::types::SqlType;

#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Int32(i32),
    Int64(i64),
    Float64(f64),
    Str(Cow<'a, str>),
    Scalar(ScalarValue),
}

impl Cell<'_> {
    /// The value as a `ScalarValue`; NULL typed as `t`.
    pub fn into_scalar(self, t: &SqlType) -> ScalarValue {
        match self {
            Cell::Null => null_of(t),
            other => other.into_untyped(),
        }
    }

    /// The value as a `ScalarValue`, NULL untyped.
    pub fn into_untyped(self) -> ScalarValue {
        match self {
            Cell::Null => ScalarValue::Null,
            Cell::Bool(b) => ScalarValue::Boolean(Some(b)),
            Cell::Int32(i) => ScalarValue::Int32(Some(i)),
            Cell::Int64(i) => ScalarValue::Int64(Some(i)),
            Cell::Float64(f) => ScalarValue::Float64(Some(f)),
            Cell::Str(s) => ScalarValue::Utf8(Some(s.into_owned())),
            Cell::Scalar(v) => v,
        }
    }
}

impl From<ScalarValue> for Cell<'_> {
    fn from(v: ScalarValue) -> Self {
        Cell::Scalar(v)
    }
}
