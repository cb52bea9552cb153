//! String and bytes functions with ksqlDB's rules where DataFusion's differ: LPAD and
//! RPAD (also over BYTES; a negative length or an empty pad is NULL), INSTR with a
//! start position and an occurrence, ENCODE between hex/utf8/ascii/base64, TO_BYTES
//! and FROM_BYTES, the *_FROM_BYTES decoders, and SUBSTRING's 1-based and negative
//! positions.

use base64::Engine as _;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::ScalarUDF;

use super::row::{int, is_int, is_text, no_signature, text, udf};

pub fn all() -> Vec<ScalarUDF> {
    vec![
        udf(
            "ksql_like_escape",
            &[2],
            |_| Ok(DataType::Utf8),
            |a, _| Ok(ScalarValue::Utf8(like_escape(a))),
        ),
        udf("lpad", &[3], pad_type, |a, _| Ok(pad(a, true))),
        udf("rpad", &[3], pad_type, |a, _| Ok(pad(a, false))),
        udf("instr", &[2, 3, 4], instr_type, |a, _| {
            Ok(ScalarValue::Int32(instr(a)))
        }),
        udf("encode", &[3], encode_type, |a, _| {
            Ok(ScalarValue::Utf8(encode(a)))
        }),
        udf("to_bytes", &[2], to_bytes_type, |a, _| {
            Ok(ScalarValue::Binary(to_bytes(a)?))
        }),
        udf("from_bytes", &[2], from_bytes_type, |a, _| {
            Ok(ScalarValue::Utf8(from_bytes(a)?))
        }),
        udf(
            "int_from_bytes",
            &[1, 2],
            |_| Ok(DataType::Int32),
            |a, _| {
                Ok(ScalarValue::Int32(
                    number_from_bytes::<4>(a)?.map(i32::from_be_bytes),
                ))
            },
        ),
        udf(
            "bigint_from_bytes",
            &[1, 2],
            |_| Ok(DataType::Int64),
            |a, _| {
                Ok(ScalarValue::Int64(
                    number_from_bytes::<8>(a)?.map(i64::from_be_bytes),
                ))
            },
        ),
        udf(
            "double_from_bytes",
            &[1, 2],
            |_| Ok(DataType::Float64),
            |a, _| {
                Ok(ScalarValue::Float64(
                    number_from_bytes::<8>(a)?.map(f64::from_be_bytes),
                ))
            },
        ),
        // SUBSTRING(...) reaches DataFusion as `ksql_substring` (its parser reads
        // `substr(...)` as the SQL-standard SUBSTRING syntax).
        udf("ksql_substring", &[2, 3], substring_type, |a, _| {
            Ok(substring(a))
        })
        .with_aliases(["substring"]),
    ]
}

fn bytes(v: &ScalarValue) -> Option<&[u8]> {
    match v {
        ScalarValue::Binary(b) | ScalarValue::LargeBinary(b) | ScalarValue::BinaryView(b) => {
            b.as_deref()
        }
        _ => None,
    }
}

fn is_bytes(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

fn pad_type(t: &[DataType]) -> Result<DataType> {
    let null_or = |x: &DataType, f: fn(&DataType) -> bool| x == &DataType::Null || f(x);
    match t {
        [s, n, p] if null_or(s, is_text) && null_or(n, is_int) && null_or(p, is_text) => {
            Ok(DataType::Utf8)
        }
        [s, n, p] if null_or(s, is_bytes) && null_or(n, is_int) && null_or(p, is_bytes) => {
            Ok(DataType::Binary)
        }
        _ => no_signature("LPAD", t),
    }
}

/// ksqlDB's LPAD/RPAD: the input cut or padded to `length` units (characters of a
/// string, bytes of BYTES) with the pad repeated; NULL for a NULL argument, a
/// negative length or an empty pad.
fn pad(a: &[ScalarValue], left: bool) -> ScalarValue {
    let Some(len) = int(&a[1]).filter(|n| *n >= 0).map(|n| n as usize) else {
        return null_like(&a[0]);
    };
    if let (Some(s), Some(p)) = (text(&a[0]), text(&a[2])) {
        if p.is_empty() {
            return ScalarValue::Utf8(None);
        }
        let s: Vec<char> = s.chars().collect();
        let p: Vec<char> = p.chars().collect();
        return ScalarValue::Utf8(Some(padded(&s, &p, len, left).into_iter().collect()));
    }
    if let (Some(s), Some(p)) = (bytes(&a[0]), bytes(&a[2])) {
        if p.is_empty() {
            return ScalarValue::Binary(None);
        }
        return ScalarValue::Binary(Some(padded(s, p, len, left)));
    }
    null_like(&a[0])
}

fn padded<T: Clone>(s: &[T], pad: &[T], len: usize, left: bool) -> Vec<T> {
    if s.len() >= len {
        return s[..len].to_vec();
    }
    let fill = pad.iter().cycle().take(len - s.len()).cloned();
    if left {
        fill.chain(s.iter().cloned()).collect()
    } else {
        s.iter().cloned().chain(fill).collect()
    }
}

fn null_like(v: &ScalarValue) -> ScalarValue {
    if bytes(v).is_some() || matches!(v, ScalarValue::Binary(None)) {
        ScalarValue::Binary(None)
    } else {
        ScalarValue::Utf8(None)
    }
}

fn instr_type(t: &[DataType]) -> Result<DataType> {
    let ok = t.len() >= 2
        && t[..2].iter().all(|x| is_text(x) || x == &DataType::Null)
        && t[2..].iter().all(|x| is_int(x) || x == &DataType::Null);
    if ok {
        Ok(DataType::Int32)
    } else {
        no_signature("INSTR", t)
    }
}

/// ksqlDB's INSTR(string, substring[, position[, occurrence]]): the 1-based
/// character position of the occurrence-th match searching from `position` (from
/// the end, backwards, when negative); 0 when not found.
fn instr(a: &[ScalarValue]) -> Option<i32> {
    let s: Vec<char> = text(&a[0])?.chars().collect();
    let sub: Vec<char> = text(&a[1])?.chars().collect();
    let position = match a.get(2) {
        Some(v) => int(v)?,
        None => 1,
    };
    let occurrence = match a.get(3) {
        Some(v) => int(v)?,
        None => 1,
    };
    if occurrence <= 0 || position == 0 {
        return Some(0);
    }
    let n = s.len() as i64;
    let matches_at = |i: i64| -> bool {
        i >= 0 && (i as usize) + sub.len() <= s.len() && s[i as usize..][..sub.len()] == sub[..]
    };
    let mut found = 0;
    if position > 0 {
        let mut i = position - 1;
        while i <= n - sub.len() as i64 {
            if matches_at(i) {
                found += 1;
                if found == occurrence {
                    return Some((i + 1) as i32);
                }
            }
            i += 1;
        }
    } else {
        let mut i = (n + position).min(n - sub.len() as i64);
        while i >= 0 {
            if matches_at(i) {
                found += 1;
                if found == occurrence {
                    return Some((i + 1) as i32);
                }
            }
            i -= 1;
        }
    }
    Some(0)
}

fn encode_type(t: &[DataType]) -> Result<DataType> {
    if t.iter().all(|x| is_text(x) || x == &DataType::Null) {
        Ok(DataType::Utf8)
    } else {
        no_signature("ENCODE", t)
    }
}

/// ENCODE(string, input encoding, output encoding) over hex, utf8, ascii and
/// base64; NULL when the input is not valid in its encoding.
fn encode(a: &[ScalarValue]) -> Option<String> {
    let raw = decode_text(text(&a[0])?, &text(&a[1])?.to_ascii_lowercase())?;
    encode_text(&raw, &text(&a[2])?.to_ascii_lowercase())
}

fn decode_text(s: &str, encoding: &str) -> Option<Vec<u8>> {
    match encoding {
        "hex" => {
            // ksqlDB accepts 0x... and X'...' as hex literals.
            let s = s
                .strip_prefix("0x")
                .or_else(|| s.strip_prefix("X'").and_then(|x| x.strip_suffix('\'')))
                .or_else(|| s.strip_prefix("x'").and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(s);
            hex_decode(s)
        }
        "utf8" => Some(s.as_bytes().to_vec()),
        // Java's US-ASCII encoder writes '?' for what ASCII cannot hold.
        "ascii" => Some(
            s.chars()
                .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
                .collect(),
        ),
        "base64" => base64::engine::general_purpose::STANDARD.decode(s).ok(),
        _ => None,
    }
}

fn encode_text(b: &[u8], encoding: &str) -> Option<String> {
    match encoding {
        "hex" => Some(hex_encode(b)),
        "utf8" => Some(String::from_utf8_lossy(b).into_owned()),
        // Java's US-ASCII decoder writes U+FFFD for each byte above 127.
        "ascii" => Some(
            b.iter()
                .map(|x| if x.is_ascii() { *x as char } else { '\u{FFFD}' })
                .collect(),
        ),
        "base64" => Some(base64::engine::general_purpose::STANDARD.encode(b)),
        _ => None,
    }
}

pub fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    // An odd number of digits has an implied leading zero, as Java's BigInteger reads.
    let padded;
    let s = if s.len() % 2 == 1 {
        padded = format!("0{s}");
        padded.as_str()
    } else {
        s
    };
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn to_bytes_type(t: &[DataType]) -> Result<DataType> {
    match t {
        [s, e] if (is_text(s) || s == &DataType::Null) && is_text(e) => Ok(DataType::Binary),
        _ => no_signature("TO_BYTES", t),
    }
}

fn from_bytes_type(t: &[DataType]) -> Result<DataType> {
    match t {
        [b, e] if (is_bytes(b) || b == &DataType::Null) && is_text(e) => Ok(DataType::Utf8),
        _ => no_signature("FROM_BYTES", t),
    }
}

fn known_encoding(e: &str) -> Result<String> {
    let e = e.to_ascii_lowercase();
    match e.as_str() {
        "hex" | "utf8" | "ascii" | "base64" => Ok(e),
        _ => plan_err!("Supported input encodings are: hex, utf8, ascii and base64, but got {e}"),
    }
}

fn to_bytes(a: &[ScalarValue]) -> Result<Option<Vec<u8>>> {
    let (Some(s), Some(e)) = (text(&a[0]), text(&a[1])) else {
        return Ok(None);
    };
    let e = known_encoding(e)?;
    match decode_text(s, &e) {
        Some(b) => Ok(Some(b)),
        None => datafusion::common::exec_err!("TO_BYTES: '{s}' is not valid {e}"),
    }
}

fn from_bytes(a: &[ScalarValue]) -> Result<Option<String>> {
    let (Some(b), Some(e)) = (bytes(&a[0]), text(&a[1])) else {
        return Ok(None);
    };
    let e = known_encoding(e)?;
    // ksqlDB's FROM_BYTES writes hex in upper case (ENCODE in lower case).
    Ok(encode_text(b, &e).map(|t| {
        if e == "hex" {
            t.to_ascii_uppercase()
        } else {
            t
        }
    }))
}

/// INT/BIGINT/DOUBLE_FROM_BYTES(bytes[, 'BIG_ENDIAN'|'LITTLE_ENDIAN']): exactly N
/// bytes, else an error (NULL).
fn number_from_bytes<const N: usize>(a: &[ScalarValue]) -> Result<Option<[u8; N]>> {
    let Some(b) = bytes(&a[0]) else {
        return Ok(None);
    };
    let little = match a.get(1).map(text) {
        Some(Some(o)) if o.eq_ignore_ascii_case("LITTLE_ENDIAN") => true,
        Some(Some(o)) if o.eq_ignore_ascii_case("BIG_ENDIAN") => false,
        Some(Some(o)) => {
            return datafusion::common::exec_err!(
                "byte order must be BIG_ENDIAN or LITTLE_ENDIAN, not {o}"
            )
        }
        Some(None) => return Ok(None),
        None => false,
    };
    let Ok(mut arr) = <[u8; N]>::try_from(b) else {
        return datafusion::common::exec_err!(
            "Number of bytes must be equal to {N}, but found {}",
            b.len()
        );
    };
    if little {
        arr.reverse();
    }
    Ok(Some(arr))
}

fn substring_type(t: &[DataType]) -> Result<DataType> {
    let ints = t[1..].iter().all(|x| is_int(x) || x == &DataType::Null);
    match t.first() {
        Some(s) if is_text(s) && ints => Ok(DataType::Utf8),
        Some(s) if is_bytes(s) && ints => Ok(DataType::Binary),
        Some(DataType::Null) if ints => Ok(DataType::Utf8),
        _ => no_signature("SUBSTRING", t),
    }
}

/// A LIKE pattern whose escape character is `a[1]`, rewritten with backslash escapes
/// (DataFusion's only escape character): `!%` becomes `\%`, a backslash `\\`.
fn like_escape(a: &[ScalarValue]) -> Option<String> {
    let pattern = text(&a[0])?;
    let escape = text(&a[1])?.chars().next()?;
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            out.push('\\');
            out.extend(chars.next());
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// ksqlDB's SUBSTRING(str, pos[, len]): 1-based; a negative position counts from the
/// end; a range past either end is cut to the string.
fn substring(a: &[ScalarValue]) -> ScalarValue {
    fn cut<T: Clone>(s: &[T], pos: i64, len: Option<i64>) -> Vec<T> {
        let n = s.len() as i64;
        let start = if pos > 0 {
            pos - 1
        } else if pos < 0 {
            n + pos
        } else {
            0
        };
        let end = match len {
            Some(l) => start.saturating_add(l.max(0)),
            None => n,
        };
        let (start, end) = (start.clamp(0, n), end.clamp(0, n));
        if start >= end {
            return Vec::new();
        }
        s[start as usize..end as usize].to_vec()
    }
    let Some(pos) = int(&a[1]) else {
        return null_like(&a[0]);
    };
    let len = match a.get(2) {
        Some(v) => match int(v) {
            Some(l) => Some(l),
            None => return null_like(&a[0]),
        },
        None => None,
    };
    if let Some(s) = text(&a[0]) {
        let chars: Vec<char> = s.chars().collect();
        return ScalarValue::Utf8(Some(cut(&chars, pos, len).into_iter().collect()));
    }
    if let Some(b) = bytes(&a[0]) {
        return ScalarValue::Binary(Some(cut(b, pos, len)));
    }
    null_like(&a[0])
}
