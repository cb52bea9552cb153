//! Names and options of single operators, as Kafka's `Grouped`, `StreamJoined`,
//! `Joined` and `Consumed` give them: a name makes an internal topic or store name
//! stable when the topology around it changes (generated names carry a counter that
//! shifts when operators are added), so state and repartitioned data survive an
//! upgrade of the application.
//!
//! Serdes are not among the options: a Runnel operator's serde is its key and value
//! types' [`Serde`](crate::Serde) (to read JSON, type the value `Json<T>`), fixed at
//! compile time where Kafka's Java API takes serde objects at run time.

use std::sync::Arc;

use super::Materialized;
use crate::state::StoreType;

/// How a grouping repartitions (`Grouped.as(name)`): its repartition topic is
/// `<application.id>-<name>-repartition`.
#[derive(Debug, Clone, Default)]
pub struct Grouped {
    pub(crate) name: Option<String>,
}

impl Grouped {
    pub fn named(name: &str) -> Grouped {
        Grouped {
            name: Some(name.to_string()),
        }
    }
}

/// How a stream-table join is named (`Joined.as(name)`): when the stream must be
/// repartitioned first, the topic is `<application.id>-<name>-repartition`.
#[derive(Debug, Clone, Default)]
pub struct Joined {
    pub(crate) name: Option<String>,
}

impl Joined {
    pub fn named(name: &str) -> Joined {
        Joined {
            name: Some(name.to_string()),
        }
    }
}

/// The stores and names of a stream-stream join (`StreamJoined`).
#[derive(Debug, Clone, Default)]
pub struct StreamJoined {
    /// Repartition topics: `<name>-left-repartition`, `<name>-right-repartition`.
    pub(crate) name: Option<String>,
    /// Stores: `<store>-this-join-store`, `<store>-other-join-store` (with `-outer-`
    /// before `this` for an outer join, before `other` for left and outer joins),
    /// `<store>-outer-shared-join-store`.
    pub(crate) store_name: Option<String>,
    pub(crate) store_type: Option<StoreType>,
    pub(crate) disable_logging: bool,
}

impl StreamJoined {
    /// Names the join's repartition topics (`StreamJoined.as(name)`).
    pub fn named(name: &str) -> StreamJoined {
        StreamJoined {
            name: Some(name.to_string()),
            ..StreamJoined::default()
        }
    }
    /// Names the join's stores and so their changelogs (`withStoreName`).
    pub fn with_store_name(mut self, store: &str) -> StreamJoined {
        self.store_name = Some(store.to_string());
        self
    }
    pub fn in_memory(mut self) -> StreamJoined {
        self.store_type = Some(StoreType::InMemory);
        self
    }
    /// No changelogs for the join's stores (`withLoggingDisabled`).
    pub fn with_logging_disabled(mut self) -> StreamJoined {
        self.disable_logging = true;
        self
    }

    /// The `Materialized` of one of the join's stores, `suffix` naming which.
    pub(crate) fn store(&self, suffix: &str) -> Materialized {
        Materialized {
            name: self
                .store_name
                .as_ref()
                .map(|s| format!("{s}{suffix}-store")),
            store_type: self.store_type,
            disable_logging: self.disable_logging,
            disable_caching: true,
            enable_caching: false,
        }
    }
}

type Extractor<K, V> = Arc<dyn Fn(&K, &V, i64) -> i64 + Send + Sync>;

/// How a source reads its topic (`Consumed`): where event time comes from.
pub struct Consumed<K, V> {
    pub(crate) extract: Option<Extractor<K, V>>,
}

impl<K, V> Default for Consumed<K, V> {
    fn default() -> Self {
        Consumed { extract: None }
    }
}

impl<K, V> Consumed<K, V> {
    /// Event time from the record (`Consumed.with(TimestampExtractor)`):
    /// `extract(key, value, record_timestamp)`.
    pub fn with_timestamp_extractor(
        extract: impl Fn(&K, &V, i64) -> i64 + Send + Sync + 'static,
    ) -> Consumed<K, V> {
        Consumed {
            extract: Some(Arc::new(extract)),
        }
    }
}
