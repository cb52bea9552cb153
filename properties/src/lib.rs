//! runnel-properties: Java `.properties` text as `java.util.Properties.load` reads it,
//! which is how Kafka reads `server.properties`, a Connect worker's and a connector's
//! config files: the broker and Connect both read theirs through it.
//!
//! Comment lines start with `#` or `!`; a key ends at the first unescaped `=`, `:` or
//! whitespace; a line ending in an odd number of backslashes continues on the next
//! (whose leading whitespace is skipped); `\t`, `\n`, `\r`, `\f`, `\uXXXX` and `\x`
//! (any other character: itself) are escapes. Values are trimmed at the end too, as
//! Kafka's `ConfigDef` trims what it parses. A later key replaces an earlier one.

/// The key-value pairs of `.properties` text, in file order.
pub fn parse(text: &str) -> Vec<(String, String)> {
    logical_lines(text)
        .into_iter()
        .filter_map(|line| split_entry(&line))
        .collect()
}

/// Natural lines joined where a line ends in an unescaped backslash; comment and
/// blank lines dropped.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim_start();
        if current.is_none() && (line.is_empty() || line.starts_with(['#', '!'])) {
            continue;
        }
        let trailing = line.chars().rev().take_while(|c| *c == '\\').count();
        let continues = trailing % 2 == 1;
        let body = if continues {
            &line[..line.len() - 1]
        } else {
            line
        };
        current.get_or_insert_with(String::new).push_str(body);
        if !continues {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// A logical line's key and value, unescaped.
fn split_entry(line: &str) -> Option<(String, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key_end = chars.len();
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '=' | ':' => {
                key_end = i;
                break;
            }
            c if c.is_whitespace() => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(chars.len());
    let mut v = key_end;
    while v < chars.len() && chars[v].is_whitespace() {
        v += 1;
    }
    if v < chars.len() && (chars[v] == '=' || chars[v] == ':') {
        v += 1;
    }
    let key = unescape(&chars[..key_end]);
    if key.is_empty() {
        return None;
    }
    let value = unescape(&chars[v.min(chars.len())..]);
    Some((key, value.trim().to_string()))
}

fn unescape(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '\\' || i + 1 >= chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let next = chars[i + 1];
        i += 2;
        match next {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\u{c}'),
            'u' => {
                let hex: String = chars[i..(i + 4).min(chars.len())].iter().collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(c) if hex.len() == 4 => {
                        out.push(c);
                        i += 4;
                    }
                    // Malformed (Java throws): kept as written rather than lost.
                    _ => out.push_str("\\u"),
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
    }

    fn kv(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn separators_comments_and_blank_lines() {
        let text = "# comment\n! also\n\na=1\nb : 2\nc 3\n  d=  spaced  \ne\n";
        assert_eq!(
            pairs(text),
            kv(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "spaced"),
                ("e", "")
            ])
        );
    }

    #[test]
    fn continuations_and_escapes() {
        let text = "sasl.jaas.config=org.Module required \\\n    user=\"u\" \\\n    password=\"p\";\nk\\=x=a\\:b\\u0041\\\\\nodd=ends\\\\\\\nnext\n";
        assert_eq!(
            pairs(text),
            kv(&[
                (
                    "sasl.jaas.config",
                    "org.Module required user=\"u\" password=\"p\";"
                ),
                ("k=x", "a:bA\\"),
                ("odd", "ends\\next"),
            ])
        );
    }

    #[test]
    fn values_keep_separators_after_the_first() {
        assert_eq!(
            pairs("url=jdbc:postgresql://h:5432/db?a=b\n"),
            kv(&[("url", "jdbc:postgresql://h:5432/db?a=b")])
        );
    }
}
