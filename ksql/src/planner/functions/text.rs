//! Splitting and pattern functions with ksqlDB's results: SPLIT (strings and bytes;
//! an empty delimiter splits every character), SPLIT_TO_MAP, REGEXP_EXTRACT,
//! REGEXP_EXTRACT_ALL, REGEXP_SPLIT_TO_ARRAY — and GEO_DISTANCE, the one geography
//! function.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::ScalarUDF;
use regex::Regex;

use super::maps::{map_type, map_value};
use super::row::{
    eval_error, int, is_int, is_text, list_type, list_value, no_signature, text, udf,
};

pub fn all() -> Vec<ScalarUDF> {
    vec![
        udf(
            "split",
            &[2],
            |t| match t {
                [s, _] if is_bytes(s) => Ok(list_type(&DataType::Binary)),
                [s, _] if is_text(s) || s == &DataType::Null => Ok(list_type(&DataType::Utf8)),
                _ => no_signature("SPLIT", t),
            },
            split,
        ),
        udf(
            "split_to_map",
            &[3],
            |t| {
                if t.iter().all(|x| is_text(x) || x == &DataType::Null) {
                    Ok(map_type(&DataType::Utf8, &DataType::Utf8))
                } else {
                    no_signature("SPLIT_TO_MAP", t)
                }
            },
            |a, r| {
                let (Some(s), Some(entry), Some(kv)) = (text(&a[0]), text(&a[1]), text(&a[2]))
                else {
                    return ScalarValue::try_from(r);
                };
                if entry.is_empty() || kv.is_empty() {
                    return ScalarValue::try_from(r);
                }
                let mut entries: Vec<(ScalarValue, ScalarValue)> = Vec::new();
                for e in s.split(entry).filter(|e| !e.is_empty()) {
                    let parts: Vec<&str> = e.split(kv).collect();
                    if parts.len() < 2 {
                        continue;
                    }
                    let (k, v) = (
                        ScalarValue::Utf8(Some(parts[0].to_string())),
                        ScalarValue::Utf8(Some(parts[1].to_string())),
                    );
                    match entries.iter_mut().find(|(x, _)| *x == k) {
                        Some(slot) => slot.1 = v,
                        None => entries.push((k, v)),
                    }
                }
                map_value(&entries, r)
            },
        ),
        udf(
            "regexp_extract",
            &[2, 3],
            regex_type(DataType::Utf8),
            |a, _| {
                let Some((re, s, group)) = regex_args(a)? else {
                    return Ok(ScalarValue::Utf8(None));
                };
                Ok(ScalarValue::Utf8(
                    re.captures(s)
                        .and_then(|c| c.get(group))
                        .map(|m| m.as_str().to_string()),
                ))
            },
        ),
        udf(
            "regexp_extract_all",
            &[2, 3],
            regex_type(list_type(&DataType::Utf8)),
            |a, r| {
                let Some((re, s, group)) = regex_args(a)? else {
                    return ScalarValue::try_from(r);
                };
                let items: Vec<ScalarValue> = re
                    .captures_iter(s)
                    .map(|c| ScalarValue::Utf8(c.get(group).map(|m| m.as_str().to_string())))
                    .collect();
                Ok(list_value(&items, &DataType::Utf8))
            },
        ),
        udf(
            "regexp_split_to_array",
            &[2],
            regex_type(list_type(&DataType::Utf8)),
            |a, r| {
                let (Some(s), Some(p)) = (text(&a[0]), text(&a[1])) else {
                    return ScalarValue::try_from(r);
                };
                let re = compile(p)?;
                let items: Vec<ScalarValue> = re
                    .split(s)
                    .map(|x| ScalarValue::Utf8(Some(x.to_string())))
                    .collect();
                Ok(list_value(&items, &DataType::Utf8))
            },
        ),
        udf(
            "geo_distance",
            &[4, 5],
            |t| {
                let nums = t[..4]
                    .iter()
                    .all(|x| x.is_numeric() || x == &DataType::Null);
                let unit = t.get(4).is_none_or(|x| is_text(x) || x == &DataType::Null);
                if nums && unit {
                    Ok(DataType::Float64)
                } else {
                    no_signature("GEO_DISTANCE", t)
                }
            },
            |a, _| geo_distance(a),
        ),
    ]
}

fn is_bytes(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

fn bytes(v: &ScalarValue) -> Option<&[u8]> {
    match v {
        ScalarValue::Binary(b) | ScalarValue::LargeBinary(b) | ScalarValue::BinaryView(b) => {
            b.as_deref()
        }
        _ => None,
    }
}

/// ksqlDB's SPLIT: every part, empty ones included; an empty delimiter gives each
/// character (byte); NULL for a NULL argument.
fn split(a: &[ScalarValue], r: &DataType) -> Result<ScalarValue> {
    if let (Some(s), Some(d)) = (text(&a[0]), text(&a[1])) {
        let parts: Vec<ScalarValue> = if s.is_empty() {
            vec![ScalarValue::Utf8(Some(String::new()))]
        } else if d.is_empty() {
            s.chars()
                .map(|c| ScalarValue::Utf8(Some(c.to_string())))
                .collect()
        } else {
            s.split(d)
                .map(|p| ScalarValue::Utf8(Some(p.to_string())))
                .collect()
        };
        return Ok(list_value(&parts, &DataType::Utf8));
    }
    if let (Some(s), Some(d)) = (bytes(&a[0]), bytes(&a[1])) {
        let parts: Vec<ScalarValue> = if s.is_empty() {
            vec![ScalarValue::Binary(Some(Vec::new()))]
        } else if d.is_empty() {
            s.iter()
                .map(|b| ScalarValue::Binary(Some(vec![*b])))
                .collect()
        } else {
            let mut out = Vec::new();
            let mut start = 0;
            let mut i = 0;
            while i + d.len() <= s.len() {
                if &s[i..i + d.len()] == d {
                    out.push(ScalarValue::Binary(Some(s[start..i].to_vec())));
                    i += d.len();
                    start = i;
                } else {
                    i += 1;
                }
            }
            out.push(ScalarValue::Binary(Some(s[start..].to_vec())));
            out
        };
        return Ok(list_value(&parts, &DataType::Binary));
    }
    ScalarValue::try_from(r)
}

fn regex_type(ret: DataType) -> impl Fn(&[DataType]) -> Result<DataType> {
    move |t: &[DataType]| {
        let ok = t.len() >= 2
            && t[..2].iter().all(|x| is_text(x) || x == &DataType::Null)
            && t[2..].iter().all(|x| is_int(x) || x == &DataType::Null);
        if ok {
            Ok(ret.clone())
        } else {
            no_signature("REGEXP_EXTRACT", t)
        }
    }
}

fn compile(pattern: &str) -> Result<Regex> {
    Regex::new(pattern).or_else(|e| eval_error("regular expression", e))
}

/// (pattern, input, group) of REGEXP_EXTRACT(pattern, input[, group]).
fn regex_args(a: &[ScalarValue]) -> Result<Option<(Regex, &str, usize)>> {
    let (Some(p), Some(s)) = (text(&a[0]), text(&a[1])) else {
        return Ok(None);
    };
    let group = match a.get(2) {
        Some(g) => match int(g) {
            Some(g) if g >= 0 => g as usize,
            _ => return Ok(None),
        },
        None => 0,
    };
    Ok(Some((compile(p)?, s, group)))
}

fn number(v: &ScalarValue) -> Option<f64> {
    match v {
        ScalarValue::Float64(x) => *x,
        ScalarValue::Float32(x) => x.map(f64::from),
        ScalarValue::Decimal128(Some(x), _, s) => Some(*x as f64 / 10f64.powi(*s as i32)),
        other => int(other).map(|i| i as f64),
    }
}

/// ksqlDB's GEO_DISTANCE: the haversine great-circle distance in km (or `'MI'`),
/// with Java's `Math.toRadians` rounding (`deg / 180 * PI`) so results match to the
/// last digit.
fn geo_distance(a: &[ScalarValue]) -> Result<ScalarValue> {
    let coords = a[..4].iter().map(number).collect::<Option<Vec<f64>>>();
    let Some(c) = coords else {
        return Ok(ScalarValue::Float64(None));
    };
    let radius = match a.get(4).map(text) {
        None | Some(None) => 6371.0,
        Some(Some(u)) => match u.to_ascii_uppercase().as_str() {
            "KM" | "KILOMETER" | "KILOMETERS" | "KILOMETRE" | "KILOMETRES" => 6371.0,
            "MI" | "MILE" | "MILES" => 3959.0,
            other => {
                return eval_error(
                    "GEO_DISTANCE",
                    format!("unknown unit {other}, use KM or MI"),
                )
            }
        },
    };
    let (lat1, lon1, lat2, lon2) = (c[0], c[1], c[2], c[3]);
    if !(-90.0..=90.0).contains(&lat1) || !(-90.0..=90.0).contains(&lat2) {
        return eval_error("GEO_DISTANCE", "valid latitude values are -90 to 90");
    }
    if !(-180.0..=180.0).contains(&lon1) || !(-180.0..=180.0).contains(&lon2) {
        return eval_error("GEO_DISTANCE", "valid longitude values are -180 to 180");
    }
    let rad = |d: f64| d / 180.0 * std::f64::consts::PI;
    let (dlat, dlon) = (rad(lat2 - lat1), rad(lon2 - lon1));
    let h =
        (dlat / 2.0).sin().powi(2) + rad(lat1).cos() * rad(lat2).cos() * (dlon / 2.0).sin().powi(2);
    Ok(ScalarValue::Float64(Some(2.0 * h.sqrt().asin() * radius)))
}
