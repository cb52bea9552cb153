//! ISO-8601 datestrings compared with WINDOWSTART, WINDOWEND or ROWTIME, as ksqlDB's
//! pull queries take them (ksqlDB docs, "SELECT (Pull Query)": `WINDOWSTART >=
//! '2019-10-02T21:31:16'`): the string becomes its epoch milliseconds. Missing parts
//! are the smallest (`'2019-10'` is 2019-10-01T00:00:00.000), a string without a zone
//! is UTC, and a zone is `Z`, `±hh`, `±hhmm` or `±hh:mm`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, Expr, Ident, Select, Value,
};

use crate::catalog::{ROWTIME, WINDOWEND, WINDOWSTART};
use crate::error::{Error, Result};

/// Replaces the datestrings compared with the time columns in `select`'s WHERE.
pub fn rewrite(select: &mut Select) -> Result<()> {
    let Some(selection) = select.selection.as_mut() else {
        return Ok(());
    };
    let mut failed = None;
    let _ = visit_expressions_mut(selection, |e| {
        match e {
            Expr::BinaryOp { left, op, right } if is_comparison(op) => {
                if is_time_column(left) {
                    replace(right, &mut failed);
                } else if is_time_column(right) {
                    replace(left, &mut failed);
                }
            }
            Expr::Between {
                expr, low, high, ..
            } if is_time_column(expr) => {
                replace(low, &mut failed);
                replace(high, &mut failed);
            }
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    failed.map_or(Ok(()), Err)
}

fn is_comparison(op: &BinaryOperator) -> bool {
    use BinaryOperator::*;
    matches!(op, Eq | NotEq | Lt | LtEq | Gt | GtEq)
}

fn is_time_column(e: &Expr) -> bool {
    let time = |i: &Ident| {
        i.quote_style.is_none()
            && [WINDOWSTART, WINDOWEND, ROWTIME]
                .iter()
                .any(|c| i.value.eq_ignore_ascii_case(c))
    };
    match e {
        Expr::Identifier(i) => time(i),
        Expr::CompoundIdentifier(parts) => parts.last().is_some_and(time),
        Expr::Nested(inner) => is_time_column(inner),
        _ => false,
    }
}

fn replace(e: &mut Expr, failed: &mut Option<Error>) {
    let Expr::Value(v) = e else { return };
    let Value::SingleQuotedString(s) = &v.value else {
        return;
    };
    match parse(s) {
        Some(ms) => *e = Expr::Value(Value::Number(ms.to_string(), false).into()),
        None => {
            failed.get_or_insert_with(|| {
                Error::semantic(format!(
                    "Failed to parse timestamp '{s}': expected an ISO-8601 datestring such as '2019-10-02T21:31:16' or '2019-10-02T21:31:16.000-0330'"
                ))
            });
        }
    }
}

/// A datestring's epoch milliseconds.
pub fn parse(s: &str) -> Option<i64> {
    let (date, rest) = match s.split_once('T') {
        Some((d, r)) => (d, Some(r)),
        None => (s, None),
    };
    let (time, offset_ms) = match rest {
        Some(r) => {
            let (time, zone) = split_zone(r)?;
            (time, zone)
        }
        // A date alone may still end in `Z`.
        None => ("", if date.ends_with('Z') { Some(0) } else { None }),
    };
    let date = date.trim_end_matches('Z');
    let mut d = date.split('-');
    let year: i32 = d.next().filter(|y| y.len() == 4)?.parse().ok()?;
    let month: u32 = part(d.next(), 1)?;
    let day: u32 = part(d.next(), 1)?;
    if d.next().is_some() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (time, None),
    };
    let mut t = hms.split(':').filter(|p| !p.is_empty());
    let hour: u32 = part(t.next(), 0)?;
    let minute: u32 = part(t.next(), 0)?;
    let second: u32 = part(t.next(), 0)?;
    if t.next().is_some() {
        return None;
    }
    let millis: u32 = match fraction {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<3}")[..3].parse().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let time = NaiveTime::from_hms_milli_opt(hour, minute, second, millis)?;
    let utc = NaiveDateTime::new(date, time).and_utc().timestamp_millis();
    Some(utc - offset_ms.unwrap_or(0))
}

/// A two-digit part, or `default` when absent.
fn part(p: Option<&str>, default: u32) -> Option<u32> {
    match p {
        None => Some(default),
        Some(p) if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok(),
        Some(_) => None,
    }
}

/// The time of day and the zone's offset from UTC in milliseconds (`None`: no zone).
fn split_zone(r: &str) -> Option<(&str, Option<i64>)> {
    if let Some(time) = r.strip_suffix('Z') {
        return Some((time, Some(0)));
    }
    let Some(at) = r.find(['+', '-']) else {
        return Some((r, None));
    };
    let (time, zone) = r.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if !(digits.len() == 2 || digits.len() == 4) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    Some((time, Some(sign * (hours * 3_600_000 + minutes * 60_000))))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn datestrings_as_ksqldb_reads_them() {
        // The pair of bounds in ksqlDB's pull-query documentation.
        assert_eq!(parse("2019-10-02T21:31:16"), Some(1_570_051_876_000));
        assert_eq!(parse("2019-10-03T21:31:16"), Some(1_570_138_276_000));
        assert_eq!(parse("2019-10-02T21:31:16Z"), Some(1_570_051_876_000));
        assert_eq!(parse("2019-10-02T21:31:16.250"), Some(1_570_051_876_250));
        assert_eq!(parse("2019-10-02T21:31:16.5"), Some(1_570_051_876_500));
        // Missing parts are the smallest.
        assert_eq!(parse("2019-10-02T21:31"), Some(1_570_051_860_000));
        assert_eq!(parse("2019-10-02"), Some(1_569_974_400_000));
        assert_eq!(parse("2019-10"), Some(1_569_888_000_000));
        assert_eq!(parse("2019"), Some(1_546_300_800_000));
        // Zones: Newfoundland is 3.5 hours behind UTC.
        let utc = 1_510_894_425_000; // 2017-11-17T04:53:45Z
        assert_eq!(parse("2017-11-17T04:53:45"), Some(utc));
        assert_eq!(parse("2017-11-17T04:53:45-0330"), Some(utc + 12_600_000));
        assert_eq!(parse("2017-11-17T04:53:45-03:30"), Some(utc + 12_600_000));
        assert_eq!(parse("2017-11-17T04:53:45+02"), Some(utc - 7_200_000));
        for bad in [
            "",
            "yesterday",
            "2019-13-01",
            "2019-10-02T25:00",
            "19-10-02",
            "2019-10-02T21:31:16+5",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
