//! `TIMESTAMP_FORMAT`: event time read from a STRING column with a Java
//! `DateTimeFormatter` pattern, as ksqlDB takes it (e.g. `yyyy-MM-dd HH:mm:ss`).

use crate::error::{Error, Result};

/// The pattern in chrono's strftime syntax; whether it carries a zone offset.
pub fn java_to_chrono(pattern: &str) -> Result<(String, bool)> {
    let mut out = String::new();
    let mut zoned = false;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // A quoted literal; '' is a quote.
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                out.push(chars[j]);
                j += 1;
            }
            if j == i + 1 && j < chars.len() {
                out.push('\'');
            }
            i = j + 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let spec = match (c, n) {
            ('y' | 'u', 2) => "%y",
            ('y' | 'u', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', _) => "%d",
            ('H', _) => "%H",
            ('h', _) => "%I",
            ('m', _) => "%M",
            ('s', _) => "%S",
            ('S', 3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            // Any other count of fraction digits after a '.': chrono's `%.f` reads
            // the dot and the digits as a fraction.
            ('S', _) if out.ends_with('.') => {
                out.pop();
                "%.f"
            }
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('X' | 'x', 1) | ('Z', 1..=3) => {
                zoned = true;
                "%z"
            }
            ('X' | 'x', _) => {
                zoned = true;
                "%:z"
            }
            (c, _) if c.is_ascii_alphabetic() => {
                return Err(Error::semantic(format!(
                    "TIMESTAMP_FORMAT '{pattern}': the pattern letter '{c}' is not supported"
                )))
            }
            (c, n) => {
                out.extend(std::iter::repeat_n(c, n));
                i += n;
                continue;
            }
        };
        out.push_str(spec);
        i += n;
    }
    Ok((out, zoned))
}

/// Milliseconds since the epoch of `text` in `pattern` (chrono syntax); a time
/// without a zone is UTC.
pub fn parse_millis(text: &str, pattern: &str, zoned: bool) -> Result<i64> {
    let bad = |e: chrono::ParseError| {
        Error::Serde(format!(
            "cannot read '{text}' as a timestamp in the format '{pattern}': {e}"
        ))
    };
    if zoned {
        return match chrono::DateTime::parse_from_str(text, pattern) {
            Ok(t) => Ok(t.timestamp_millis()),
            Err(e) => {
                // Java's `X` also reads `Z` (UTC) and an offset of hours only (`+01`),
                // which chrono's `%z` does not.
                let colon = pattern.contains("%:z");
                let full = if colon { ":00" } else { "00" };
                let fixed = match text.strip_suffix('Z') {
                    Some(rest) => format!("{rest}+00{full}"),
                    None => {
                        let tail = text.get(text.len().saturating_sub(3)..).unwrap_or("");
                        let hours_only = tail.len() == 3
                            && (tail.starts_with('+') || tail.starts_with('-'))
                            && tail[1..].bytes().all(|b| b.is_ascii_digit());
                        if !hours_only {
                            return Err(bad(e));
                        }
                        format!("{text}{full}")
                    }
                };
                chrono::DateTime::parse_from_str(&fixed, pattern)
                    .map(|t| t.timestamp_millis())
                    .map_err(|_| bad(e))
            }
        };
    }
    match chrono::NaiveDateTime::parse_from_str(text, pattern) {
        Ok(t) => Ok(t.and_utc().timestamp_millis()),
        Err(e) => match chrono::NaiveDate::parse_from_str(text, pattern) {
            Ok(d) => Ok(d
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_millis())
                .unwrap_or(0)),
            Err(_) => Err(bad(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_patterns_parse() {
        let (p, z) = java_to_chrono("yyyy-MM-dd'T'HH:mm:ss.SSSXXX").unwrap();
        assert_eq!(p, "%Y-%m-%dT%H:%M:%S.%3f%:z");
        assert_eq!(
            parse_millis("1970-01-01T00:00:01.500+00:00", &p, z).unwrap(),
            1500
        );
        let (p, z) = java_to_chrono("yyyy-MM-dd HH:mm:ss").unwrap();
        assert_eq!(
            parse_millis("2020-01-01 00:00:00", &p, z).unwrap(),
            1_577_836_800_000
        );
        let (p, z) = java_to_chrono("yyyy-MM-dd").unwrap();
        assert_eq!(parse_millis("1970-01-02", &p, z).unwrap(), 86_400_000);
        assert!(parse_millis("yesterday", &p, z).is_err());
        assert!(java_to_chrono("yyyy-QQ").is_err());
        // Java's X reads Z as UTC; one S after a dot is a fraction (QTT timestampformat).
        let (p, z) = java_to_chrono("yyyy-MM-dd'T'HH:mm:ssX").unwrap();
        assert_eq!(
            parse_millis("2018-05-11T21:58:33Z", &p, z).unwrap(),
            1_526_075_913_000
        );
        let (p, z) = java_to_chrono("yyyy-MM-dd'T'HH:mm:ss.SX").unwrap();
        assert_eq!(
            parse_millis("2019-08-27T13:31:09.2+0000", &p, z).unwrap(),
            1_566_912_669_200
        );
    }
}
