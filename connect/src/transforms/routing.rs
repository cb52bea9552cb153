//! Transforms that route or retime records: RegexRouter, TimestampRouter and
//! TimestampConverter (with Java SimpleDateFormat's common letters, in UTC).

use super::{side, RecordContext, Side, Transform};
use crate::api::calendar::{civil, days_from_civil};
use crate::api::config_def::{key, ConfigDef, Type, Validator, Values};
use crate::api::{ConnectRecord, Schema, SchemaType, Value};
use crate::error::{Error, Result};

/// The keys of these transforms, as Kafka defines them.
pub(super) fn definition(base: &str) -> Option<ConfigDef> {
    let required = |name, doc| key(name, Type::String, doc).required().high();
    let keys = match base {
        "RegexRouter" => vec![
            required("regex", "Regular expression to match the topic name against."),
            required("replacement", "The new topic name; $1, $2 ... are the expression's groups."),
        ],
        "TimestampRouter" => vec![
            key(
                "topic.format",
                Type::String,
                "The new topic name; ${topic} and ${timestamp} stand for the topic and the formatted timestamp.",
            )
            .default("${topic}-${timestamp}")
            .high(),
            key(
                "timestamp.format",
                Type::String,
                "The timestamp's format, as java.text.SimpleDateFormat writes it.",
            )
            .default("yyyyMMdd")
            .high(),
        ],
        "TimestampConverter" => vec![
            key(
                "field",
                Type::String,
                "The field holding the timestamp; empty: the whole value.",
            )
            .default("")
            .high(),
            key(
                "target.type",
                Type::String,
                "The type to convert to: string, unix, Date, Time or Timestamp.",
            )
            .required()
            .validator(Validator::OneOf(&TARGET_TYPES))
            .high(),
            key(
                "format",
                Type::String,
                "A java.text.SimpleDateFormat pattern, for converting to or from strings.",
            )
            .default("")
            .medium(),
        ],
        _ => return None,
    };
    Some(ConfigDef::new().define(keys))
}

const TARGET_TYPES: [&str; 5] = ["string", "unix", "Date", "Time", "Timestamp"];

pub(super) fn build(base: &str, v: &Values) -> Option<Result<Box<dyn Transform>>> {
    let text = |k: &str| v.string(k).unwrap_or_default().to_string();
    let t: Result<Box<dyn Transform>> = match base {
        "RegexRouter" => regex::Regex::new(&format!("^(?:{})$", text("regex")))
            .map_err(|e| Error::config("regex", e.to_string()))
            .map(|regex| -> Box<dyn Transform> {
                Box::new(RegexRouter {
                    regex,
                    replacement: text("replacement"),
                })
            }),
        "TimestampRouter" => Ok(Box::new(TimestampRouter {
            topic_format: text("topic.format"),
            timestamp_format: text("timestamp.format"),
        })),
        "TimestampConverter" => {
            // The validator accepts any case; the converter works with Kafka's spelling.
            let given = text("target.type");
            let target = TARGET_TYPES
                .iter()
                .find(|t| t.eq_ignore_ascii_case(&given))
                .map_or(given, |t| t.to_string());
            if target == "string" && text("format").is_empty() {
                Err(Error::config(
                    "format",
                    "is required to convert to a string",
                ))
            } else {
                Ok(Box::new(TimestampConverter {
                    side: Side::Value,
                    field: v.non_empty("field").map(str::to_string),
                    target,
                    format: text("format"),
                }))
            }
        }
        _ => return None,
    };
    Some(t)
}

struct RegexRouter {
    regex: regex::Regex,
    replacement: String,
}

impl Transform for RegexRouter {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        if self.regex.is_match(&r.topic) {
            r.topic = self
                .regex
                .replace(&r.topic, self.replacement.as_str())
                .into_owned();
        }
        Ok(Some(r))
    }
}

/// The Java date-format tokens this supports, longest first.
const TOKENS: &[&str] = &["yyyy", "SSS", "MM", "dd", "HH", "mm", "ss", "yy"];

/// Formats epoch millis (UTC) with SimpleDateFormat's y, M, d, H, m, s, S letters and
/// single-quoted literals.
pub fn format_millis(ms: i64, pattern: &str) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let mut out = String::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        if let Some(stripped) = rest.strip_prefix('\'') {
            let end = stripped.find('\'').unwrap_or(stripped.len());
            out.push_str(&stripped[..end]);
            rest = stripped.get(end + 1..).unwrap_or("");
            continue;
        }
        if let Some(tok) = TOKENS.iter().find(|t| rest.starts_with(**t)) {
            out.push_str(&match *tok {
                "yyyy" => format!("{y:04}"),
                "yy" => format!("{:02}", y % 100),
                "MM" => format!("{mo:02}"),
                "dd" => format!("{d:02}"),
                "HH" => format!("{h:02}"),
                "mm" => format!("{mi:02}"),
                "ss" => format!("{s:02}"),
                _ => format!("{milli:03}"),
            });
            rest = &rest[tok.len()..];
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Parses text written with `pattern` back to epoch millis (UTC).
pub fn parse_millis(text: &str, pattern: &str) -> Option<i64> {
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ms) =
        (1970i64, 1u32, 1u32, 0i64, 0i64, 0i64, 0i64);
    let (mut rest, mut pat) = (text, pattern);
    while !pat.is_empty() {
        if let Some(stripped) = pat.strip_prefix('\'') {
            let end = stripped.find('\'').unwrap_or(stripped.len());
            rest = rest.strip_prefix(&stripped[..end])?;
            pat = stripped.get(end + 1..).unwrap_or("");
            continue;
        }
        if let Some(tok) = TOKENS.iter().find(|t| pat.starts_with(**t)) {
            let n = tok.len();
            let v: i64 = rest.get(..n)?.parse().ok()?;
            match *tok {
                "yyyy" => y = v,
                "yy" => y = 2000 + v,
                "MM" => mo = v as u32,
                "dd" => d = v as u32,
                "HH" => h = v,
                "mm" => mi = v,
                "ss" => s = v,
                _ => ms = v,
            }
            rest = &rest[n..];
            pat = &pat[n..];
            continue;
        }
        let c = pat.chars().next()?;
        rest = rest.strip_prefix(c)?;
        pat = &pat[c.len_utf8()..];
    }
    rest.is_empty()
        .then(|| days_from_civil(y, mo, d) * 86_400_000 + ((h * 60 + mi) * 60 + s) * 1000 + ms)
}

struct TimestampRouter {
    topic_format: String,
    timestamp_format: String,
}

impl Transform for TimestampRouter {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        let ts = r
            .timestamp
            .ok_or_else(|| Error::Transform(format!("record on {} has no timestamp", r.topic)))?;
        r.topic = self
            .topic_format
            .replace("${topic}", &r.topic)
            .replace("${timestamp}", &format_millis(ts, &self.timestamp_format));
        Ok(Some(r))
    }
}

struct TimestampConverter {
    side: Side,
    field: Option<String>,
    target: String,
    format: String,
}

impl TimestampConverter {
    fn millis(&self, v: &Value) -> Result<i64> {
        match v {
            Value::String(s) => parse_millis(s, &self.format).ok_or_else(|| {
                Error::Transform(format!("{s:?} does not match the format {:?}", self.format))
            }),
            other => other
                .as_i64()
                .ok_or_else(|| Error::Transform(format!("{other:?} is not a timestamp"))),
        }
    }

    fn convert(&self, v: &Value) -> Result<(Schema, Value)> {
        if v.is_null() {
            return Ok((Schema::new(SchemaType::Int64).optional(), Value::Null));
        }
        let ms = self.millis(v)?;
        Ok(match self.target.as_str() {
            "string" => (
                Schema::string(),
                Value::String(format_millis(ms, &self.format)),
            ),
            "unix" => (Schema::new(SchemaType::Int64), Value::Int64(ms)),
            "Date" => (
                Schema::new(SchemaType::Int32).named("org.apache.kafka.connect.data.Date"),
                Value::Int32(ms.div_euclid(86_400_000) as i32),
            ),
            "Time" => (
                Schema::new(SchemaType::Int32).named("org.apache.kafka.connect.data.Time"),
                Value::Int32(ms.rem_euclid(86_400_000) as i32),
            ),
            _ => (
                Schema::new(SchemaType::Int64).named("org.apache.kafka.connect.data.Timestamp"),
                Value::Int64(ms),
            ),
        })
    }
}

impl Transform for TimestampConverter {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        let (schema, value) = side(&mut r, self.side);
        match &self.field {
            None => {
                let (s, v) = self.convert(value)?;
                *schema = schema.as_ref().map(|_| s);
                *value = v;
            }
            Some(field) => {
                let Some(current) = value.get(field).cloned() else {
                    return Ok(Some(r));
                };
                let (s, v) = self.convert(&current)?;
                match value {
                    Value::Struct(fields) => {
                        for (n, fv) in fields.iter_mut() {
                            if n == field {
                                *fv = v.clone();
                            }
                        }
                        if let Some(sc) = schema.as_mut() {
                            for f in std::sync::Arc::make_mut(&mut sc.fields)
                                .iter_mut()
                                .filter(|f| &f.name == field)
                            {
                                f.schema = s.clone();
                            }
                        }
                    }
                    Value::Map(entries) => {
                        for (k, fv) in entries.iter_mut() {
                            if k.as_str() == Some(field) {
                                *fv = v.clone();
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        // 2024-02-29T13:45:07.123Z
        let ms = 1_709_214_307_123;
        assert_eq!(
            format_millis(ms, "yyyy-MM-dd'T'HH:mm:ss.SSS"),
            "2024-02-29T13:45:07.123"
        );
        assert_eq!(format_millis(ms, "yyyyMMdd"), "20240229");
        assert_eq!(
            parse_millis("2024-02-29T13:45:07.123", "yyyy-MM-dd'T'HH:mm:ss.SSS"),
            Some(ms)
        );
        assert_eq!(parse_millis("1969-12-31", "yyyy-MM-dd"), Some(-86_400_000));
        assert_eq!(parse_millis("nope", "yyyy"), None);
    }
}
