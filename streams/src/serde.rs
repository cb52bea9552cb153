//! Serdes: how keys and values become bytes and back. A type is its own serde, so
//! `KStream<String, i64>` needs no serde arguments; `Json<T>` carries any serde type as
//! JSON. Integers are big-endian, as Kafka's LongSerializer/IntegerSerializer write them.
//! `None` is Kafka's null (a tombstone as a value).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

pub trait Serde: Sized + Clone + Send + Sync + 'static {
    /// `None`: Kafka's null.
    fn to_bytes(&self) -> Option<Vec<u8>>;
    /// `None` is Kafka's null; most types refuse it.
    fn from_bytes(bytes: Option<&[u8]>) -> Result<Self>;
    /// Whether this is Kafka's null (what [`to_bytes`](Serde::to_bytes) writes as
    /// `None`): key-based operators skip a null key, aggregations a null value.
    fn is_null(&self) -> bool {
        false
    }
}

fn bad(what: &str, reason: impl std::fmt::Display) -> Error {
    Error::Deserialize {
        what: what.to_string(),
        reason: reason.to_string(),
    }
}

fn present<'a>(what: &str, b: Option<&'a [u8]>) -> Result<&'a [u8]> {
    b.ok_or_else(|| bad(what, "null where a value was expected"))
}

impl Serde for String {
    fn to_bytes(&self) -> Option<Vec<u8>> {
        Some(self.as_bytes().to_vec())
    }
    fn from_bytes(b: Option<&[u8]>) -> Result<Self> {
        String::from_utf8(present("a string", b)?.to_vec()).map_err(|e| bad("a string", e))
    }
}

impl Serde for Vec<u8> {
    fn to_bytes(&self) -> Option<Vec<u8>> {
        Some(self.clone())
    }
    fn from_bytes(b: Option<&[u8]>) -> Result<Self> {
        Ok(present("bytes", b)?.to_vec())
    }
}

/// The unit type reads any key (null included) and writes null: for streams whose keys
/// do not matter.
impl Serde for () {
    fn to_bytes(&self) -> Option<Vec<u8>> {
        None
    }
    fn from_bytes(_: Option<&[u8]>) -> Result<Self> {
        Ok(())
    }
    fn is_null(&self) -> bool {
        true
    }
}

macro_rules! fixed {
    ($t:ty, $n:expr, $what:expr) => {
        impl Serde for $t {
            fn to_bytes(&self) -> Option<Vec<u8>> {
                Some(self.to_be_bytes().to_vec())
            }
            fn from_bytes(b: Option<&[u8]>) -> Result<Self> {
                let b = present($what, b)?;
                let arr: [u8; $n] = b
                    .try_into()
                    .map_err(|_| bad($what, format!("{} bytes, not {}", b.len(), $n)))?;
                Ok(<$t>::from_be_bytes(arr))
            }
        }
    };
}
fixed!(i64, 8, "a long");
fixed!(i32, 4, "an integer");
fixed!(u64, 8, "an unsigned long");
fixed!(f64, 8, "a double");

impl<T: Serde> Serde for Option<T> {
    fn to_bytes(&self) -> Option<Vec<u8>> {
        self.as_ref().and_then(Serde::to_bytes)
    }
    fn from_bytes(b: Option<&[u8]>) -> Result<Self> {
        match b {
            None => Ok(None),
            some => T::from_bytes(some).map(Some),
        }
    }
    fn is_null(&self) -> bool {
        self.as_ref().is_none_or(Serde::is_null)
    }
}

/// A value carried as JSON through serde.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Json<T>(pub T);

impl<T> Serde for Json<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn to_bytes(&self) -> Option<Vec<u8>> {
        // Serializing plain data to JSON cannot fail; a map with non-string keys can,
        // and is written as null rather than panicking.
        serde_json::to_vec(&self.0).ok()
    }
    fn from_bytes(b: Option<&[u8]>) -> Result<Self> {
        serde_json::from_slice(present("JSON", b)?)
            .map(Json)
            .map_err(|e| bad("JSON", e))
    }
}

/// Serializes a key that must not be null (store keys).
pub(crate) fn key_bytes<K: Serde>(k: &K) -> Vec<u8> {
    k.to_bytes().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_clear_errors() {
        assert_eq!(42i64.to_bytes().unwrap(), vec![0, 0, 0, 0, 0, 0, 0, 42]);
        assert_eq!(
            i64::from_bytes(Some(&[0, 0, 0, 0, 0, 0, 1, 0])).unwrap(),
            256
        );
        let e = i64::from_bytes(Some(b"abc")).unwrap_err().to_string();
        assert!(e.contains("a long") && e.contains("3 bytes"), "{e}");
        assert!(String::from_bytes(None).is_err());
        assert_eq!(Option::<String>::from_bytes(None).unwrap(), None);
        let j = Json(vec![1, 2]);
        assert_eq!(
            Json::<Vec<i32>>::from_bytes(j.to_bytes().as_deref()).unwrap(),
            j
        );
        assert!(Json::<Vec<i32>>::from_bytes(Some(b"{")).is_err());
    }
}
