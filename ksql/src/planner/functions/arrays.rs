//! Array functions with ksqlDB's semantics (ksqlDB's `ksqldb-engine/.../function/udf/array`):
//! set operations keep first-occurrence order and treat NULL as a value, sorting puts
//! NULLs last in both directions, MIN/MAX skip NULLs, ARRAY_JOIN writes NULL as "null".

use std::cmp::Ordering;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::ScalarUDF;

use super::row::{int, item_type, list_items, list_value, no_signature, text, udf};

pub fn all() -> Vec<ScalarUDF> {
    vec![
        udf("array_max", &[1], item_of_first, |a, r| {
            Ok(extreme(a, r, Ordering::Greater))
        }),
        udf("array_min", &[1], item_of_first, |a, r| {
            Ok(extreme(a, r, Ordering::Less))
        }),
        udf("array_sort", &[1, 2], same_as_first, sort),
        udf("array_distinct", &[1], same_as_first, |a, r| {
            Ok(map_items(&a[0], r, |items| Some(distinct(items))))
        }),
        udf("array_remove", &[2], same_as_first, |a, r| {
            let v = &a[1];
            Ok(map_items(&a[0], r, |items| {
                Some(items.into_iter().filter(|x| !same(x, v)).collect())
            }))
        }),
        udf("array_except", &[2], two_lists, |a, r| {
            Ok(set_op(a, r, |x, other| !other.iter().any(|y| same(x, y))))
        }),
        udf("array_intersect", &[2], two_lists, |a, r| {
            Ok(set_op(a, r, |x, other| other.iter().any(|y| same(x, y))))
        }),
        udf("array_union", &[2], two_lists, |a, r| {
            let (Some(x), Some(y)) = (list_items(&a[0])?, list_items(&a[1])?) else {
                return null_list(r);
            };
            Ok(list_value(
                &distinct(x.into_iter().chain(y).collect()),
                item(r),
            ))
        }),
        udf("array_concat", &[2], two_lists, |a, r| {
            Ok(match (list_items(&a[0])?, list_items(&a[1])?) {
                (None, None) => return null_list(r),
                (x, y) => list_value(
                    &x.into_iter()
                        .flatten()
                        .chain(y.into_iter().flatten())
                        .collect::<Vec<_>>(),
                    item(r),
                ),
            })
        }),
        udf(
            "array_contains",
            &[2],
            |t| match t {
                [l, _] if item_type(l).is_some() || l == &DataType::Null => Ok(DataType::Boolean),
                _ => no_signature("ARRAY_CONTAINS", t),
            },
            |a, _| {
                Ok(ScalarValue::Boolean(Some(list_items(&a[0])?.is_some_and(
                    |items| items.iter().any(|x| same(x, &a[1])),
                ))))
            },
        ),
        udf(
            "array_join",
            &[1, 2],
            |t| match t.first().and_then(item_type) {
                Some(_) => Ok(DataType::Utf8),
                None => no_signature("ARRAY_JOIN", t),
            },
            |a, _| {
                let Some(items) = list_items(&a[0])? else {
                    return Ok(ScalarValue::Utf8(None));
                };
                let sep = match a.get(1) {
                    Some(v) => text(v).unwrap_or(""),
                    None => ",",
                };
                let parts: Vec<String> = items.iter().map(display).collect();
                Ok(ScalarValue::Utf8(Some(parts.join(sep))))
            },
        ),
        udf("slice", &[3], same_as_first, |a, r| {
            let (Some(from), Some(to)) = (int(&a[1]), int(&a[2])) else {
                return null_list(r);
            };
            Ok(map_items(&a[0], r, |items| {
                // ksqlDB's SLICE: 1-based, both ends included, cut to the list.
                let n = items.len() as i64;
                let (from, to) = ((from - 1).clamp(0, n), to.clamp(0, n));
                Some(if from >= to {
                    Vec::new()
                } else {
                    items[from as usize..to as usize].to_vec()
                })
            }))
        }),
        udf("generate_series", &[2, 3], series_type, series),
        // The combinations CUBE_EXPLODE hands out (see `rewrite::ksql_forms`): for n
        // values, 2^n lists where value j is kept when bit n-1-j of the index is set,
        // without repeating one a NULL made equal to an earlier one.
        udf(
            "ksql_cube",
            &[1],
            |t| match t.first() {
                Some(l) if item_type(l).is_some() => Ok(super::row::list_type(l)),
                _ => no_signature("CUBE_EXPLODE", t),
            },
            |a, r| {
                let Some(items) = list_items(&a[0])? else {
                    return null_list(r);
                };
                let n = items.len().min(16);
                let it = item(r).clone();
                let inner = item_type(&it).cloned().unwrap_or(DataType::Null);
                let mut seen: Vec<Vec<ScalarValue>> = Vec::new();
                for i in 0..(1usize << n) {
                    let combo: Vec<ScalarValue> = (0..n)
                        .map(|j| {
                            if i & (1 << (n - 1 - j)) != 0 {
                                items[j].clone()
                            } else {
                                ScalarValue::try_from(&inner).unwrap_or(ScalarValue::Null)
                            }
                        })
                        .collect();
                    if !seen.contains(&combo) {
                        seen.push(combo);
                    }
                }
                let lists: Vec<ScalarValue> = seen.iter().map(|c| list_value(c, &inner)).collect();
                Ok(list_value(&lists, &it))
            },
        ),
    ]
}

fn item(r: &DataType) -> &DataType {
    item_type(r).unwrap_or(&DataType::Null)
}

fn null_list(r: &DataType) -> Result<ScalarValue> {
    ScalarValue::try_from(r)
}

fn item_of_first(t: &[DataType]) -> Result<DataType> {
    match t.first().and_then(item_type) {
        Some(i) => Ok(i.clone()),
        None => no_signature("ARRAY_MAX", t),
    }
}

fn same_as_first(t: &[DataType]) -> Result<DataType> {
    match t.first() {
        Some(l) if item_type(l).is_some() => Ok(l.clone()),
        _ => no_signature("ARRAY function", t),
    }
}

fn two_lists(t: &[DataType]) -> Result<DataType> {
    match t {
        [a, b] if item_type(a).is_some() && (item_type(b).is_some() || b == &DataType::Null) => {
            Ok(a.clone())
        }
        [DataType::Null, b] if item_type(b).is_some() => Ok(b.clone()),
        _ => no_signature("ARRAY function", t),
    }
}

/// Equality as ksqlDB's `Objects.equals`: NULL equals NULL.
fn same(a: &ScalarValue, b: &ScalarValue) -> bool {
    match (a.is_null(), b.is_null()) {
        (true, true) => true,
        (false, false) => a == b || a.partial_cmp(b) == Some(Ordering::Equal),
        _ => false,
    }
}

fn distinct(items: Vec<ScalarValue>) -> Vec<ScalarValue> {
    let mut out: Vec<ScalarValue> = Vec::with_capacity(items.len());
    for x in items {
        if !out.iter().any(|y| same(&x, y)) {
            out.push(x);
        }
    }
    out
}

fn map_items(
    list: &ScalarValue,
    r: &DataType,
    f: impl FnOnce(Vec<ScalarValue>) -> Option<Vec<ScalarValue>>,
) -> ScalarValue {
    match list_items(list).ok().flatten().and_then(f) {
        Some(items) => list_value(&items, item(r)),
        None => ScalarValue::try_from(r).unwrap_or(ScalarValue::Null),
    }
}

/// The distinct elements of the first list that `keep` accepts given the second.
fn set_op(
    a: &[ScalarValue],
    r: &DataType,
    keep: impl Fn(&ScalarValue, &[ScalarValue]) -> bool,
) -> ScalarValue {
    let (Ok(Some(x)), Ok(Some(y))) = (list_items(&a[0]), list_items(&a[1])) else {
        return ScalarValue::try_from(r).unwrap_or(ScalarValue::Null);
    };
    let kept: Vec<ScalarValue> = x.into_iter().filter(|v| keep(v, &y)).collect();
    list_value(&distinct(kept), item(r))
}

fn extreme(a: &[ScalarValue], r: &DataType, want: Ordering) -> ScalarValue {
    let best = list_items(&a[0]).ok().flatten().and_then(|items| {
        items
            .into_iter()
            .filter(|x| !x.is_null())
            .reduce(|best, x| {
                if x.partial_cmp(&best) == Some(want) {
                    x
                } else {
                    best
                }
            })
    });
    best.unwrap_or_else(|| ScalarValue::try_from(r).unwrap_or(ScalarValue::Null))
}

fn sort(a: &[ScalarValue], r: &DataType) -> Result<ScalarValue> {
    let descending = match a.get(1) {
        None => false,
        Some(v) => match text(v) {
            Some(d) if d.eq_ignore_ascii_case("desc") => true,
            Some(d) if d.eq_ignore_ascii_case("asc") => false,
            // ksqlDB returns NULL for an unknown direction.
            _ => return null_list(r),
        },
    };
    Ok(map_items(&a[0], r, |mut items| {
        items.sort_by(|x, y| match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => {
                let o = x.partial_cmp(y).unwrap_or(Ordering::Equal);
                if descending {
                    o.reverse()
                } else {
                    o
                }
            }
        });
        Some(items)
    }))
}

/// An element as ARRAY_JOIN writes it (Java's `String.valueOf`).
fn display(v: &ScalarValue) -> String {
    if v.is_null() {
        return "null".into();
    }
    match v {
        ScalarValue::Float64(Some(f)) => crate::format::java_double(*f),
        ScalarValue::Float32(Some(f)) => crate::format::java_double(*f as f64),
        ScalarValue::Decimal128(Some(x), _, s) => crate::format::decimal_text(*x, *s),
        ScalarValue::Utf8(Some(s)) => s.clone(),
        other => other.to_string(),
    }
}

fn series_type(t: &[DataType]) -> Result<DataType> {
    let all_int = t.iter().all(|x| x.is_integer());
    match t.first() {
        Some(DataType::Int64) if all_int => Ok(super::row::list_type(&DataType::Int64)),
        Some(x) if all_int && t.iter().all(|y| y == x || y == &DataType::Int32) => {
            Ok(super::row::list_type(&DataType::Int32))
        }
        Some(_) if all_int => Ok(super::row::list_type(&DataType::Int64)),
        _ => no_signature("GENERATE_SERIES", t),
    }
}

/// GENERATE_SERIES(start, end[, step]): both ends included; the step's sign must
/// lead from start to end (ksqlDB fails the row otherwise); step 0 is an error.
fn series(a: &[ScalarValue], r: &DataType) -> Result<ScalarValue> {
    let (Some(start), Some(end)) = (int(&a[0]), int(&a[1])) else {
        return null_list(r);
    };
    let step = match a.get(2) {
        Some(s) => match int(s) {
            Some(s) => s,
            None => return null_list(r),
        },
        None if end >= start => 1,
        None => -1,
    };
    if step == 0 {
        return super::row::eval_error("GENERATE_SERIES", "GENERATE_SERIES step cannot be zero");
    }
    if (end - start).signum() * step.signum() < 0 {
        return super::row::eval_error(
            "GENERATE_SERIES",
            "GENERATE_SERIES has invalid step: the step must go from start to end",
        );
    }
    let count = (end - start) / step + 1;
    if count > 1_000_000 {
        return super::row::eval_error("GENERATE_SERIES", "the series is too long");
    }
    let it = item(r).clone();
    let items: Vec<ScalarValue> = (0..count)
        .map(|i| start + i * step)
        .map(|v| {
            if it == DataType::Int32 {
                ScalarValue::Int32(Some(v as i32))
            } else {
                ScalarValue::Int64(Some(v))
            }
        })
        .collect();
    Ok(list_value(&items, &it))
}
