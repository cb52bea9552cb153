//! Processors that take records in batches (`Processor::max_batch`) or hold results
//! until the task commits (`Processor::commit`), on a real broker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use runnel_streams::*;

use crate::common::*;
use crate::runtime::config;

/// Records seen by a batching processor: the sizes of the batches it was handed.
#[derive(Clone, Default)]
struct BatchLog(Arc<std::sync::Mutex<Vec<usize>>>);

struct Batching(BatchLog);

impl Processor<(), String, (), String> for Batching {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, (), String>, r: Record<(), String>) {
        let offset = ctx.offset();
        self.forward_one(ctx, r, offset);
    }
    fn max_batch(&self) -> usize {
        64
    }
    fn process_batch(
        &mut self,
        ctx: &mut ProcessorContext<'_, (), String>,
        batch: Vec<Batched<(), String>>,
    ) {
        self.0 .0.lock().unwrap().push(batch.len());
        for b in batch {
            self.forward_one(ctx, b.record, b.offset);
        }
    }
    fn punctuations(&self) -> Vec<(PunctuationType, i64)> {
        vec![(PunctuationType::StreamTime, 1000)]
    }
    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_, (), String>,
        _kind: PunctuationType,
        time: i64,
    ) {
        ctx.forward(Record::new((), format!("punctuation@{time}"), time));
    }
}

impl Batching {
    fn forward_one(
        &self,
        ctx: &mut ProcessorContext<'_, (), String>,
        r: Record<(), String>,
        offset: i64,
    ) {
        let ts = r.timestamp;
        ctx.forward(Record::new((), format!("{}@{offset}@{ts}", r.value), ts));
    }
}

/// The batch API (`Processor::max_batch` / `process_batch`): records arrive in
/// batches of more than one, each with its own offset and timestamp, in order; a
/// stream-time punctuation comes after every record before it (the batch is run
/// first); everything is written before the input offsets are committed, so a restart
/// of the application reads nothing again.
#[test]
fn a_batching_processor_gets_records_in_batches_with_their_own_context() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(&dir.path().join("broker"));
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "batch-in", 1);
    let n = 3000i64;
    produce(
        &bs,
        "batch-in",
        // Timestamp 0 would mean "now" to the producer: start at 10.
        (0..n).map(|i| (None, format!("r{i}").into_bytes(), (i + 1) * 10)),
    );
    let topology = |log: BatchLog| {
        let b = StreamsBuilder::new();
        b.stream::<(), String>("batch-in")
            .process(move || Batching(log.clone()), vec![])
            .to("batch-out");
        b.build()
    };
    let log = BatchLog::default();
    let mut app = KafkaStreams::new(
        topology(log.clone()),
        config(&bs, "batching", &dir.path().join("state")),
    );
    app.start().unwrap();
    let is_record = |v: &str| !v.starts_with("punctuation");
    let out = all_records(&bs, "batch-out", 60, |rows| {
        rows.iter()
            .filter(|(_, v)| is_record(&String::from_utf8_lossy(v.as_deref().unwrap_or_default())))
            .count()
            == n as usize
    });
    app.close().unwrap();
    let values: Vec<String> = out
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into_owned())
        .collect();
    let records: Vec<&String> = values.iter().filter(|v| is_record(v)).collect();
    let want: Vec<String> = (0..n)
        .map(|i| format!("r{i}@{i}@{}", (i + 1) * 10))
        .collect();
    let first_difference = records.iter().zip(&want).position(|(a, b)| *a != b);
    assert_eq!(
        (records.len(), first_difference),
        (want.len(), None),
        "first difference: {:?}",
        first_difference.map(|i| (records[i], &want[i]))
    );
    // Each punctuation follows exactly the records at or before its time.
    let mut seen = 0i64;
    for v in &values {
        match v.strip_prefix("punctuation@") {
            Some(t) => {
                let t: i64 = t.parse().unwrap();
                assert_eq!(seen, t / 10, "records before the punctuation at {t}");
            }
            None => seen += 1,
        }
    }
    assert!(values.iter().any(|v| !is_record(v)), "punctuations ran");
    let sizes = log.0.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), n as usize);
    assert!(sizes.iter().any(|s| *s > 1), "{sizes:?}");

    // Everything was committed: after a restart only a new record is processed (one
    // read again would come before it).
    let again = BatchLog::default();
    let mut app = KafkaStreams::new(
        topology(again.clone()),
        config(&bs, "batching", &dir.path().join("state")),
    );
    app.start().unwrap();
    produce(&bs, "batch-in", [(None, b"late".to_vec(), (n + 1) * 10)]);
    let marker = format!("late@{n}@{}", (n + 1) * 10);
    all_records(&bs, "batch-out", 60, |rows| {
        rows.iter()
            .any(|(_, v)| v.as_deref() == Some(marker.as_bytes()))
    });
    app.close().unwrap();
    assert_eq!(again.0.lock().unwrap().iter().sum::<usize>(), 1);
}

/// Holds every record it is given and forwards them when the task commits, as a
/// cached KTable forwards its updates.
struct Holding {
    held: Vec<Record<(), String>>,
    processed: Arc<AtomicUsize>,
}

impl Processor<(), String, (), String> for Holding {
    fn process(&mut self, _ctx: &mut ProcessorContext<'_, (), String>, r: Record<(), String>) {
        self.processed.fetch_add(1, Ordering::Relaxed);
        self.held.push(r);
    }
    fn commit(&mut self, ctx: &mut ProcessorContext<'_, (), String>) {
        for r in self.held.drain(..) {
            ctx.forward(r);
        }
    }
}

/// `Processor::commit` runs before the input offsets are committed: what a processor
/// held back all reaches the output in order, and after a restart only a new record is
/// processed (a held record lost, or one read again, would show).
#[test]
fn what_a_processor_holds_is_forwarded_before_its_input_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(&dir.path().join("broker"));
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "hold-in", 1);
    let n = 2000i64;
    produce(
        &bs,
        "hold-in",
        (0..n).map(|i| (None, format!("r{i}").into_bytes(), (i + 1) * 10)),
    );
    let topology = |processed: Arc<AtomicUsize>| {
        let b = StreamsBuilder::new();
        b.stream::<(), String>("hold-in")
            .process(
                move || Holding {
                    held: Vec::new(),
                    processed: processed.clone(),
                },
                vec![],
            )
            .to("hold-out");
        b.build()
    };
    let processed = Arc::new(AtomicUsize::new(0));
    let mut app = KafkaStreams::new(
        topology(processed.clone()),
        config(&bs, "holding", &dir.path().join("state")),
    );
    app.start().unwrap();
    let out = all_records(&bs, "hold-out", 60, |rows| rows.len() >= n as usize);
    app.close().unwrap();
    let values: Vec<String> = out
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into_owned())
        .collect();
    let want: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    let first_difference = values.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!((values.len(), first_difference), (want.len(), None));
    assert_eq!(processed.load(Ordering::Relaxed), n as usize);

    let again = Arc::new(AtomicUsize::new(0));
    let mut app = KafkaStreams::new(
        topology(again.clone()),
        config(&bs, "holding", &dir.path().join("state")),
    );
    app.start().unwrap();
    produce(&bs, "hold-in", [(None, b"late".to_vec(), (n + 1) * 10)]);
    all_records(&bs, "hold-out", 60, |rows| {
        rows.iter()
            .any(|(_, v)| v.as_deref() == Some(b"late".as_slice()))
    });
    app.close().unwrap();
    assert_eq!(again.load(Ordering::Relaxed), 1);
}
