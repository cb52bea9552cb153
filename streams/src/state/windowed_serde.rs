//! Windowed keys in Kafka's own layouts, for output topics that Kafka consumers and
//! ksqlDB read (Kafka's `WindowedSerdes`):
//! - [`TimeWindowedKey`] as TimeWindowedSerializer writes it: the key's bytes, then the
//!   window start (8 bytes, big-endian). The end is not written; reading it back needs
//!   the window size, the const parameter (Kafka's `window.size.ms`).
//! - [`SessionWindowedKey`] as SessionWindowedSerializer writes it: the key's bytes, then
//!   the session end, then its start (8 bytes each).
//!
//! [`Windowed`]'s own serde (key, start, end) stays what Runnel writes between its own
//! stages; as in Kafka, a windowed output topic names its windowed serde:
//! `.map(|w, v| (SessionWindowedKey(w), v)).to("sessions")`.

use super::window::{Window, Windowed};
use crate::error::{Error, Result};
use crate::serde::Serde;

fn corrupt(what: &str) -> Error {
    Error::Deserialize {
        what: what.into(),
        reason: "shorter than the window it must end with".into(),
    }
}

fn be(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

/// A time-windowed key in Kafka's TimeWindowedSerializer layout; `SIZE_MS` is the
/// window size that reading it back uses for the window's end.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeWindowedKey<K, const SIZE_MS: i64>(pub Windowed<K>);

impl<K: Serde, const SIZE_MS: i64> Serde for TimeWindowedKey<K, SIZE_MS> {
    fn to_bytes(&self) -> Option<Vec<u8>> {
        let mut out = self.0.key.to_bytes().unwrap_or_default();
        out.extend_from_slice(&self.0.window.start.to_be_bytes());
        Some(out)
    }
    fn from_bytes(b: Option<&[u8]>) -> Result<Self> {
        let what = "a time-windowed key";
        let b = b.filter(|b| b.len() >= 8).ok_or_else(|| corrupt(what))?;
        let (key, start) = b.split_at(b.len() - 8);
        let start = be(start);
        Ok(TimeWindowedKey(Windowed {
            key: K::from_bytes(Some(key))?,
            window: Window {
                start,
                end: start.saturating_add(SIZE_MS),
            },
        }))
    }
}

/// A session-windowed key in Kafka's SessionWindowedSerializer layout.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionWindowedKey<K>(pub Windowed<K>);

impl<K: Serde> Serde for SessionWindowedKey<K> {
    fn to_bytes(&self) -> Option<Vec<u8>> {
        let mut out = self.0.key.to_bytes().unwrap_or_default();
        out.extend_from_slice(&self.0.window.end.to_be_bytes());
        out.extend_from_slice(&self.0.window.start.to_be_bytes());
        Some(out)
    }
    fn from_bytes(b: Option<&[u8]>) -> Result<Self> {
        let what = "a session-windowed key";
        let b = b.filter(|b| b.len() >= 16).ok_or_else(|| corrupt(what))?;
        let (key, times) = b.split_at(b.len() - 16);
        Ok(SessionWindowedKey(Windowed {
            key: K::from_bytes(Some(key))?,
            window: Window {
                start: be(&times[8..]),
                end: be(&times[..8]),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(start: i64, end: i64) -> Windowed<String> {
        Windowed {
            key: "k".into(),
            window: Window { start, end },
        }
    }

    #[test]
    fn kafka_layouts_round_trip() {
        let t = TimeWindowedKey::<String, 60_000>(w(120_000, 180_000));
        let bytes = t.to_bytes().unwrap();
        assert_eq!(bytes.len(), 1 + 8);
        assert_eq!(&bytes[1..], &120_000i64.to_be_bytes());
        assert_eq!(TimeWindowedKey::from_bytes(Some(&bytes)).unwrap(), t);

        let s = SessionWindowedKey(w(5, 30));
        let bytes = s.to_bytes().unwrap();
        assert_eq!(&bytes[1..9], &30i64.to_be_bytes());
        assert_eq!(&bytes[9..], &5i64.to_be_bytes());
        assert_eq!(SessionWindowedKey::from_bytes(Some(&bytes)).unwrap(), s);

        assert!(SessionWindowedKey::<String>::from_bytes(Some(b"short")).is_err());
        assert!(TimeWindowedKey::<String, 1>::from_bytes(None).is_err());
    }
}
