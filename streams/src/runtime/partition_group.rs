//! Record order across a task's input partitions, as Kafka Streams' PartitionGroup
//! keeps it: polled records wait in one queue per input topic, and the task takes the
//! record with the smallest timestamp among the queues' heads. While one input has
//! nothing buffered but is not caught up (its log end is beyond what the task has
//! read), the task waits for it, at most `max.task.idle.ms`; so a join or a merge sees
//! records of both inputs in time order even when a fetch brings one topic's records
//! before the other's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::record::RawRecord;

#[derive(Default)]
pub(crate) struct PartitionGroup {
    queues: BTreeMap<String, VecDeque<RawRecord>>,
    waiting_since: Option<Instant>,
}

/// Log-end offsets looked up for empty inputs, cached briefly.
#[derive(Default)]
pub(crate) struct EndOffsets {
    cache: HashMap<(String, i32), (i64, Instant)>,
}

const END_OFFSET_TTL: Duration = Duration::from_millis(100);

impl EndOffsets {
    fn end(&mut self, client: &BaseConsumer, topic: &str, partition: i32) -> Option<i64> {
        let key = (topic.to_string(), partition);
        if let Some((end, at)) = self.cache.get(&key) {
            if at.elapsed() < END_OFFSET_TTL {
                return Some(*end);
            }
        }
        let (_, high) = client
            .fetch_watermarks(topic, partition, Duration::from_secs(1))
            .ok()?;
        self.cache.insert(key, (high, Instant::now()));
        Some(high)
    }
}

impl PartitionGroup {
    pub fn push(&mut self, rec: RawRecord) {
        match self.queues.get_mut(&rec.topic) {
            Some(q) => q.push_back(rec),
            None => {
                self.queues.insert(rec.topic.clone(), VecDeque::from([rec]));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queues.values().all(VecDeque::is_empty)
    }

    /// The next record to process, or `None` to wait (nothing buffered, or an input
    /// that is behind and has not been waited for long enough).
    /// `fetched(topic)`: the consumer's fetch position for the task's partition of
    /// `topic` (with an empty queue, everything fetched has been processed).
    pub fn next<'a>(
        &mut self,
        topics: impl Iterator<Item = &'a String>,
        partition: i32,
        fetched: &dyn Fn(&str) -> Option<i64>,
        ends: &mut EndOffsets,
        client: &BaseConsumer,
        max_idle: Duration,
    ) -> Option<RawRecord> {
        if self.is_empty() {
            self.waiting_since = None;
            return None;
        }
        for t in topics {
            if self.queues.get(t).is_some_and(|q| !q.is_empty()) {
                continue;
            }
            let behind = match (fetched(t), ends.end(client, t, partition)) {
                (Some(read), Some(end)) => end > read,
                _ => true,
            };
            if behind {
                let since = *self.waiting_since.get_or_insert_with(Instant::now);
                if since.elapsed() < max_idle {
                    return None;
                }
            }
        }
        self.waiting_since = None;
        // The smallest timestamp; of equal ones, the first topic by name.
        let i = self
            .queues
            .values()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|r| (r.timestamp, i)))
            .min()?
            .1;
        self.queues.values_mut().nth(i)?.pop_front()
    }
}
