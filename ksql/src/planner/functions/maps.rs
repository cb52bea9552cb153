//! Map functions as ksqlDB has them: MAP_KEYS, MAP_VALUES, MAP_UNION (the second
//! map's entries win), AS_MAP(keys, values) and ENTRIES(map, sorted).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, MapArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::ScalarUDF;

use super::row::{item_type, list_items, list_type, list_value, no_signature, udf};

pub fn all() -> Vec<ScalarUDF> {
    vec![
        udf(
            "map_keys",
            &[1],
            |t| match map_types(&t[0]) {
                Some((k, _)) => Ok(list_type(&k)),
                None => no_signature("MAP_KEYS", t),
            },
            |a, r| {
                Ok(match map_entries(&a[0])? {
                    Some(e) => {
                        list_value(&e.into_iter().map(|(k, _)| k).collect::<Vec<_>>(), item(r))
                    }
                    None => ScalarValue::try_from(r)?,
                })
            },
        ),
        udf(
            "map_values",
            &[1],
            |t| match map_types(&t[0]) {
                Some((_, v)) => Ok(list_type(&v)),
                None => no_signature("MAP_VALUES", t),
            },
            |a, r| {
                Ok(match map_entries(&a[0])? {
                    Some(e) => {
                        list_value(&e.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), item(r))
                    }
                    None => ScalarValue::try_from(r)?,
                })
            },
        ),
        udf(
            "map_union",
            &[2],
            |t| match (map_types(&t[0]), map_types(&t[1])) {
                (Some(_), _) => Ok(t[0].clone()),
                (None, Some(_)) => Ok(t[1].clone()),
                _ => no_signature("MAP_UNION", t),
            },
            |a, r| {
                let (x, y) = (map_entries(&a[0])?, map_entries(&a[1])?);
                if x.is_none() && y.is_none() {
                    return ScalarValue::try_from(r);
                }
                let mut out: Vec<(ScalarValue, ScalarValue)> = x.unwrap_or_default();
                for (k, v) in y.unwrap_or_default() {
                    match out.iter_mut().find(|(ok, _)| *ok == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
                map_value(&out, r)
            },
        ),
        udf(
            "as_map",
            &[2],
            |t| match (item_type(&t[0]), item_type(&t[1])) {
                (Some(k), Some(v)) => Ok(map_type(k, v)),
                _ => no_signature("AS_MAP", t),
            },
            |a, r| {
                let (Some(keys), Some(values)) = (list_items(&a[0])?, list_items(&a[1])?) else {
                    return ScalarValue::try_from(r);
                };
                let mut out: Vec<(ScalarValue, ScalarValue)> = Vec::new();
                for (k, v) in keys.into_iter().zip(values) {
                    if k.is_null() {
                        continue;
                    }
                    match out.iter_mut().find(|(ok, _)| *ok == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
                map_value(&out, r)
            },
        ),
        udf(
            "entries",
            &[2],
            |t| match map_types(&t[0]) {
                Some((k, v)) => Ok(list_type(&DataType::Struct(entry_fields(&k, &v)))),
                None => no_signature("ENTRIES", t),
            },
            |a, r| {
                let Some(mut e) = map_entries(&a[0])? else {
                    return ScalarValue::try_from(r);
                };
                if matches!(a[1], ScalarValue::Boolean(Some(true))) {
                    e.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal));
                }
                let DataType::Struct(fields) = item(r).clone() else {
                    return ScalarValue::try_from(r);
                };
                let items = e
                    .into_iter()
                    .map(|(k, v)| {
                        let cols: Vec<ArrayRef> = vec![k.to_array()?, v.to_array()?];
                        let s = StructArray::try_new(fields.clone(), cols, None)?;
                        Ok(ScalarValue::Struct(Arc::new(s)))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(list_value(&items, item(r)))
            },
        ),
    ]
}

fn item(r: &DataType) -> &DataType {
    item_type(r).unwrap_or(&DataType::Null)
}

fn entry_fields(k: &DataType, v: &DataType) -> Fields {
    Fields::from(vec![
        Field::new("K", k.clone(), true),
        Field::new("V", v.clone(), true),
    ])
}

/// The key and value types of a map type.
pub fn map_types(t: &DataType) -> Option<(DataType, DataType)> {
    match t {
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                Some((kv[0].data_type().clone(), kv[1].data_type().clone()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The map type ksql columns have (see `SqlType::to_arrow`).
pub fn map_type(k: &DataType, v: &DataType) -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", k.clone(), false),
                Field::new("value", v.clone(), true),
            ])),
            false,
        )),
        false,
    )
}

/// A map value's entries in order (`None` for NULL).
pub fn map_entries(v: &ScalarValue) -> Result<Option<Vec<(ScalarValue, ScalarValue)>>> {
    let ScalarValue::Map(m) = v else {
        return Ok(None);
    };
    if m.is_empty() || m.is_null(0) {
        return Ok(None);
    }
    let e = m.value(0);
    (0..e.len())
        .map(|i| {
            Ok((
                ScalarValue::try_from_array(e.column(0), i)?,
                ScalarValue::try_from_array(e.column(1), i)?,
            ))
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// A map value of type `t` holding `entries`.
pub fn map_value(entries: &[(ScalarValue, ScalarValue)], t: &DataType) -> Result<ScalarValue> {
    let DataType::Map(field, sorted) = t else {
        return ScalarValue::try_from(t);
    };
    let DataType::Struct(fields) = field.data_type() else {
        return ScalarValue::try_from(t);
    };
    let column = |vals: Vec<ScalarValue>, dt: &DataType| -> Result<ArrayRef> {
        let a = if vals.is_empty() {
            datafusion::arrow::array::new_empty_array(dt)
        } else {
            ScalarValue::iter_to_array(vals)?
        };
        Ok(if a.data_type() != dt {
            datafusion::arrow::compute::cast(&a, dt)?
        } else {
            a
        })
    };
    let keys = column(
        entries.iter().map(|(k, _)| k.clone()).collect(),
        fields[0].data_type(),
    )?;
    let values = column(
        entries.iter().map(|(_, v)| v.clone()).collect(),
        fields[1].data_type(),
    )?;
    let s = StructArray::try_new(fields.clone(), vec![keys, values], None)?;
    let offsets = OffsetBuffer::from_lengths([entries.len()]);
    let m = MapArray::try_new(field.clone(), offsets, s, None, *sorted)?;
    Ok(ScalarValue::Map(Arc::new(m)))
}
