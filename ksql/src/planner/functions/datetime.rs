//! ksqlDB's date and time functions over Java `DateTimeFormatter` patterns (read by
//! `format::timestamp::java_to_chrono`) and IANA zone names: STRINGTOTIMESTAMP and
//! TIMESTAMPTOSTRING (BIGINT milliseconds), PARSE_TIMESTAMP and FORMAT_TIMESTAMP
//! (TIMESTAMP), STRINGTODATE and DATETOSTRING (INT days), PARSE_DATE and FORMAT_DATE
//! (DATE), FROM_UNIXTIME. Text that does not match its pattern is an error (NULL).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::ScalarUDF;

use super::row::{eval_error, int, no_signature, text, text_args, udf};
use crate::format::timestamp::java_to_chrono;

const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

pub fn all() -> Vec<ScalarUDF> {
    vec![
        udf(
            "stringtotimestamp",
            &[2, 3],
            text_args("STRINGTOTIMESTAMP", DataType::Int64),
            |a, _| Ok(ScalarValue::Int64(parse_args(a)?)),
        ),
        udf(
            "parse_timestamp",
            &[2, 3],
            text_args("PARSE_TIMESTAMP", TIMESTAMP),
            |a, _| Ok(ScalarValue::TimestampMillisecond(parse_args(a)?, None)),
        ),
        udf(
            "timestamptostring",
            &[2, 3],
            |t| match t.first() {
                Some(x) if x.is_integer() || matches!(x, DataType::Timestamp(..)) => {
                    Ok(DataType::Utf8)
                }
                _ => no_signature("TIMESTAMPTOSTRING", t),
            },
            |a, _| Ok(ScalarValue::Utf8(format_args(a)?)),
        ),
        udf(
            "format_timestamp",
            &[2, 3],
            |t| match t.first() {
                Some(DataType::Timestamp(..)) | Some(DataType::Null) => Ok(DataType::Utf8),
                _ => no_signature("FORMAT_TIMESTAMP", t),
            },
            |a, _| Ok(ScalarValue::Utf8(format_args(a)?)),
        ),
        udf(
            "stringtodate",
            &[2],
            text_args("STRINGTODATE", DataType::Int32),
            |a, _| Ok(ScalarValue::Int32(parse_date(a)?)),
        ),
        udf(
            "parse_date",
            &[2],
            text_args("PARSE_DATE", DataType::Date32),
            |a, _| Ok(ScalarValue::Date32(parse_date(a)?)),
        ),
        udf(
            "datetostring",
            &[2],
            |t| match t.first() {
                Some(x) if x.is_integer() => Ok(DataType::Utf8),
                _ => no_signature("DATETOSTRING", t),
            },
            |a, _| Ok(ScalarValue::Utf8(format_date(a)?)),
        ),
        udf(
            "format_date",
            &[2],
            |t| match t.first() {
                Some(DataType::Date32) | Some(DataType::Null) => Ok(DataType::Utf8),
                _ => no_signature("FORMAT_DATE", t),
            },
            |a, _| Ok(ScalarValue::Utf8(format_date(a)?)),
        ),
        udf(
            "from_unixtime",
            &[1],
            |t| match t.first() {
                Some(x) if x.is_integer() => Ok(TIMESTAMP),
                _ => no_signature("FROM_UNIXTIME", t),
            },
            |a, _| Ok(ScalarValue::TimestampMillisecond(millis(&a[0]), None)),
        ),
    ]
}

fn millis(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampMillisecond(t, _) => *t,
        ScalarValue::TimestampSecond(t, _) => t.map(|t| t * 1000),
        ScalarValue::TimestampMicrosecond(t, _) => t.map(|t| t / 1000),
        ScalarValue::TimestampNanosecond(t, _) => t.map(|t| t / 1_000_000),
        other => int(other),
    }
}

fn zone(name: &str) -> Result<chrono_tz::Tz> {
    name.parse::<chrono_tz::Tz>()
        .or_else(|_| eval_error("time zone", format!("Unknown time zone: {name}")))
}

/// (text, pattern[, zone]) -> milliseconds since the epoch.
fn parse_args(a: &[ScalarValue]) -> Result<Option<i64>> {
    let (Some(s), Some(p)) = (text(&a[0]), text(&a[1])) else {
        return Ok(None);
    };
    let (pattern, zoned) = java_to_chrono(p).or_else(|e| eval_error("timestamp pattern", e))?;
    if zoned {
        return match crate::format::timestamp::parse_millis(s, &pattern, true) {
            Ok(t) => Ok(Some(t)),
            Err(e) => eval_error("timestamp", format!("cannot parse '{s}' as '{p}': {e}")),
        };
    }
    let local = match NaiveDateTime::parse_from_str(s, &pattern) {
        Ok(t) => t,
        Err(e) => match NaiveDate::parse_from_str(s, &pattern) {
            Ok(d) => d.and_hms_opt(0, 0, 0).unwrap_or_default(),
            Err(_) => return eval_error("timestamp", format!("cannot parse '{s}' as '{p}': {e}")),
        },
    };
    match a.get(2).map(text) {
        Some(Some(z)) => match zone(z)?.from_local_datetime(&local).earliest() {
            Some(t) => Ok(Some(t.timestamp_millis())),
            None => eval_error("timestamp", format!("'{s}' does not exist in {z}")),
        },
        Some(None) => Ok(None),
        None => Ok(Some(local.and_utc().timestamp_millis())),
    }
}

/// (milliseconds or TIMESTAMP, pattern[, zone]) -> text.
fn format_args(a: &[ScalarValue]) -> Result<Option<String>> {
    let (Some(ms), Some(p)) = (millis(&a[0]), text(&a[1])) else {
        return Ok(None);
    };
    let (pattern, _) = java_to_chrono(p).or_else(|e| eval_error("timestamp pattern", e))?;
    let Some(t) = DateTime::<Utc>::from_timestamp_millis(ms) else {
        return eval_error("timestamp", format!("{ms} is out of range"));
    };
    Ok(match a.get(2).map(text) {
        Some(Some(z)) => Some(t.with_timezone(&zone(z)?).format(&pattern).to_string()),
        Some(None) => None,
        None => Some(t.format(&pattern).to_string()),
    })
}

fn parse_date(a: &[ScalarValue]) -> Result<Option<i32>> {
    let Some(ms) = parse_args(a)? else {
        return Ok(None);
    };
    Ok(Some(ms.div_euclid(86_400_000) as i32))
}

fn format_date(a: &[ScalarValue]) -> Result<Option<String>> {
    let days = match &a[0] {
        ScalarValue::Date32(d) => d.map(i64::from),
        other => int(other),
    };
    let (Some(days), Some(p)) = (days, text(&a[1])) else {
        return Ok(None);
    };
    let (pattern, _) = java_to_chrono(p).or_else(|e| eval_error("date pattern", e))?;
    let Some(t) = DateTime::<Utc>::from_timestamp_millis(days * 86_400_000) else {
        return eval_error("date", format!("{days} is out of range"));
    };
    Ok(Some(t.format(&pattern).to_string()))
}
