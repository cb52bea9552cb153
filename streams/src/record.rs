//! Records: typed ones flowing through a topology, raw ones from and to Kafka.

/// A record inside a topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    pub key: K,
    pub value: V,
    /// Event time in milliseconds: the Kafka record's timestamp unless a timestamp
    /// extractor says otherwise.
    pub timestamp: i64,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl<K, V> Record<K, V> {
    pub fn new(key: K, value: V, timestamp: i64) -> Record<K, V> {
        Record {
            key,
            value,
            timestamp,
            headers: Vec::new(),
        }
    }

    /// The same record with another key and value.
    pub fn with<K2, V2>(self, key: K2, value: V2) -> Record<K2, V2> {
        Record {
            key,
            value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }
}

/// A record as consumed from Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl RawRecord {
    /// A consumed message as a record: its topic, partition, offset and headers kept.
    pub fn of_message(m: &rdkafka::message::BorrowedMessage<'_>) -> RawRecord {
        use rdkafka::message::{Headers, Message};
        RawRecord {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            timestamp: m.timestamp().to_millis().unwrap_or(0),
            headers: m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The record's headers without the runtime's own bookkeeping header (the origin
    /// of a repartition record), as processors see them.
    pub fn user_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers
            .iter()
            .filter(|(k, _)| k != crate::runtime::task::ORIGIN_HEADER)
            .cloned()
            .collect()
    }
}

/// A record a task wants produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub topic: String,
    /// `None`: the producer's partitioner (murmur2 of the key, as Kafka's Java client).
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Vec<(String, Vec<u8>)>,
}
