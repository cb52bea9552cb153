//! A scalar function written one row at a time over `ScalarValue`s: most of ksqlDB's
//! built-ins that DataFusion lacks are small rules about NULLs, nesting and text,
//! clearer written per value than per Arrow kernel. The function still runs inside
//! DataFusion's expressions (one call per batch, a loop over its rows).

use std::hash::{Hash, Hasher};

use datafusion::arrow::array::new_empty_array;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

/// The result type from the argument types; an `Err` is a planning error (a wrong
/// argument type), worded as ksqlDB words it.
pub type ReturnFn = Box<dyn Fn(&[DataType]) -> Result<DataType> + Send + Sync>;
/// One row: the arguments' values and the result type.
pub type EvalFn = fn(&[ScalarValue], &DataType) -> Result<ScalarValue>;

pub struct RowUdf {
    name: &'static str,
    signature: Signature,
    ret: ReturnFn,
    eval: EvalFn,
}

impl std::fmt::Debug for RowUdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowUdf").field("name", &self.name).finish()
    }
}

// Two functions are the same function when they have the same name: the registry
// holds one per name.
impl PartialEq for RowUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for RowUdf {}
impl Hash for RowUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

/// A function taking any of `arities` argument counts, of any types (the return
/// function checks them).
pub fn udf(
    name: &'static str,
    arities: &[usize],
    ret: impl Fn(&[DataType]) -> Result<DataType> + Send + Sync + 'static,
    eval: EvalFn,
) -> ScalarUDF {
    let signature = match arities {
        [n] => Signature::any(*n, Volatility::Immutable),
        many => Signature::one_of(
            many.iter()
                .map(|n| {
                    if *n == 0 {
                        TypeSignature::Nullary
                    } else {
                        TypeSignature::Any(*n)
                    }
                })
                .collect(),
            Volatility::Immutable,
        ),
    };
    ScalarUDF::from(RowUdf {
        name,
        signature,
        ret: Box::new(ret),
        eval,
    })
}

/// Like [`udf`] for any number of arguments (at least one).
pub fn variadic_udf(
    name: &'static str,
    ret: impl Fn(&[DataType]) -> Result<DataType> + Send + Sync + 'static,
    eval: EvalFn,
) -> ScalarUDF {
    ScalarUDF::from(RowUdf {
        name,
        signature: Signature::variadic_any(Volatility::Immutable),
        ret: Box::new(ret),
        eval,
    })
}

impl ScalarUDFImpl for RowUdf {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        (self.ret)(arg_types)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ret = args.return_field.data_type().clone();
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows);
        let mut row = Vec::with_capacity(arrays.len());
        for i in 0..rows {
            row.clear();
            for a in &arrays {
                row.push(ScalarValue::try_from_array(a, i)?);
            }
            let v = (self.eval)(&row, &ret)?;
            out.push(if v.is_null() && v.data_type() != ret {
                ScalarValue::try_from(&ret)?
            } else {
                v
            });
        }
        let array = if out.is_empty() {
            new_empty_array(&ret)
        } else {
            ScalarValue::iter_to_array(out)?
        };
        let array = if array.data_type() != &ret {
            cast(&array, &ret)?
        } else {
            array
        };
        Ok(if all_scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
        } else {
            ColumnarValue::Array(array)
        })
    }
}

/// A planning error for a function called with arguments it does not take.
pub fn no_signature<T>(name: &str, types: &[DataType]) -> Result<T> {
    let list: Vec<String> = types.iter().map(sql_type_name).collect();
    plan_err!(
        "Function '{name}' does not accept parameters ({}).",
        list.join(", ")
    )
}

/// ksqlDB's name for an Arrow type, for error messages.
pub fn sql_type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Int32 | DataType::Int16 | DataType::Int8 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float64 | DataType::Float32 => "DOUBLE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTES".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Date32 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(_, _) => "TIMESTAMP".into(),
        DataType::List(f) | DataType::LargeList(f) => {
            format!("ARRAY<{}>", sql_type_name(f.data_type()))
        }
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP<{}, {}>",
                sql_type_name(kv[0].data_type()),
                sql_type_name(kv[1].data_type())
            ),
            _ => "MAP".into(),
        },
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("`{}` {}", f.name(), sql_type_name(f.data_type())))
                .collect();
            format!("STRUCT<{}>", inner.join(", "))
        }
        DataType::Null => "NULL".into(),
        other => other.to_string(),
    }
}

/// An evaluation error (the row's result becomes NULL where the engine catches it).
pub fn eval_error<T>(name: &str, why: impl std::fmt::Display) -> Result<T> {
    exec_err!("{name}: {why}")
}

/// The elements of a list value (`None` for NULL).
pub fn list_items(v: &ScalarValue) -> Result<Option<Vec<ScalarValue>>> {
    let arr = match v {
        ScalarValue::List(l) => l.clone() as datafusion::arrow::array::ArrayRef,
        ScalarValue::LargeList(l) => l.clone() as datafusion::arrow::array::ArrayRef,
        ScalarValue::FixedSizeList(l) => l.clone() as datafusion::arrow::array::ArrayRef,
        ScalarValue::Null => return Ok(None),
        _ => return Ok(None),
    };
    if arr.is_null(0) {
        return Ok(None);
    }
    let inner = match v {
        ScalarValue::List(l) => l.value(0),
        ScalarValue::LargeList(l) => l.value(0),
        ScalarValue::FixedSizeList(l) => l.value(0),
        _ => unreachable!("matched above"),
    };
    (0..inner.len())
        .map(|i| ScalarValue::try_from_array(&inner, i))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// A list value of `items` whose element type is `item`.
pub fn list_value(items: &[ScalarValue], item: &DataType) -> ScalarValue {
    ScalarValue::List(ScalarValue::new_list_nullable(items, item))
}

/// The list type of `item`.
pub fn list_type(item: &DataType) -> DataType {
    DataType::List(std::sync::Arc::new(
        datafusion::arrow::datatypes::Field::new("item", item.clone(), true),
    ))
}

/// The element type of a list type.
pub fn item_type(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Some(f.data_type())
        }
        _ => None,
    }
}

/// A text argument (`None` for NULL or a non-text value).
pub fn text(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s.as_deref(),
        _ => None,
    }
}

/// A whole-number argument (`None` for NULL or a non-integer value).
pub fn int(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int8(x) => x.map(i64::from),
        ScalarValue::Int16(x) => x.map(i64::from),
        ScalarValue::Int32(x) => x.map(i64::from),
        ScalarValue::Int64(x) => *x,
        ScalarValue::UInt8(x) => x.map(i64::from),
        ScalarValue::UInt16(x) => x.map(i64::from),
        ScalarValue::UInt32(x) => x.map(i64::from),
        ScalarValue::UInt64(x) => x.and_then(|x| i64::try_from(x).ok()),
        _ => None,
    }
}

pub fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

pub fn is_int(t: &DataType) -> bool {
    t.is_integer()
}

/// A return-type function for a function whose arguments are all text (or NULL).
pub fn text_args(
    name: &'static str,
    ret: DataType,
) -> impl Fn(&[DataType]) -> Result<DataType> + Send + Sync + 'static {
    move |t: &[DataType]| {
        if t.iter().all(|x| is_text(x) || x == &DataType::Null) {
            Ok(ret.clone())
        } else {
            no_signature(name, t)
        }
    }
}
