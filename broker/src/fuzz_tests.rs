//! Property-based fuzzing (proptest) of what a client controls: whole request frames
//! through the decoder and every handler, and record batches through the validator
//! and the log. Inputs are valid requests and batches, mutated (bytes set, inserted,
//! removed, lengths blown up, truncated); with CRCs recomputed half of the time so
//! batches get past the checksum into the validator. The property: no panic, and a
//! log that accepted a batch reads back what it reported.
//!
//! `RUNNEL_FUZZ_CASES` sets the number of cases per target (CI runs the default).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::Compression;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::config::TopicConfig;
use crate::log::batch::tests::with_header;
use crate::log::batch::{encode_records, plain_record, split_batches, HEADER_LEN};
use crate::log::partition::tests::open;
use crate::protocol::api_versions::SUPPORTED;
use crate::protocol::dispatch::{dispatch, Connection};
use crate::{Broker, BrokerConfig};

fn cases() -> u32 {
    std::env::var("RUNNEL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

/// A mutation: (kind, position, value).
type Mutation = (u8, u16, u8);

fn mutate(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for &(kind, pos, value) in muts {
        if b.is_empty() {
            b.push(value);
            continue;
        }
        let at = pos as usize % b.len();
        match kind % 6 {
            0 => b[at] = value,
            1 => b.insert(at, value),
            2 => {
                b.remove(at);
            }
            3 => b.truncate(at),
            // A length or count field blown up (or made negative).
            4 => {
                let v = [0x7f, 0xff, 0xff, value];
                for (i, x) in v.iter().enumerate() {
                    if at + i < b.len() {
                        b[at + i] = *x;
                    }
                }
            }
            _ => b[at] ^= 1 << (value % 8),
        }
    }
    b
}

fn batch(n: usize, keyed: bool, compression: Compression) -> Vec<u8> {
    let records: Vec<_> = (0..n as i64)
        .map(|i| {
            let key = keyed.then(|| Bytes::from(format!("key-{i}")));
            let value =
                (i % 5 != 3).then(|| Bytes::from(format!("value-{i}").repeat(i as usize % 7 + 1)));
            let r = plain_record(i, key, value, 1_000 + i);
            if i % 2 == 0 {
                with_header(r)
            } else {
                r
            }
        })
        .collect();
    encode_records(&records, compression)
        .expect("encodes")
        .to_vec()
}

/// Recomputes the CRC of the first batch in `b`, as a hostile client can.
fn fix_crc(b: &mut [u8]) {
    if b.len() >= HEADER_LEN {
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

/// A request frame: (header bytes, body bytes).
type Seed = (Vec<u8>, Vec<u8>);

fn request<R: Encodable>(key: ApiKey, version: i16, body: &R) -> Option<Seed> {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(StrBytes::from_static_str("fuzz"));
    let mut b = BytesMut::new();
    header
        .encode(&mut b, key.request_header_version(version))
        .ok()?;
    let mut body_bytes = BytesMut::new();
    body.encode(&mut body_bytes, version).ok()?;
    Some((b.to_vec(), body_bytes.to_vec()))
}

/// Valid request frames of every API at its lowest and highest version, some with
/// contents (a real batch, topic names, a group), as starting points for mutation.
fn seeds() -> Vec<Seed> {
    let topic = || TopicName(StrBytes::from_static_str("fuzz"));
    let mut produce = ProduceRequest::default();
    produce.acks = 1;
    let mut pd = produce_request::PartitionProduceData::default();
    pd.records = Some(Bytes::from(batch(3, true, Compression::None)));
    let mut td = produce_request::TopicProduceData::default();
    td.name = topic();
    td.partition_data = vec![pd];
    produce.topic_data = vec![td];
    let mut metadata = MetadataRequest::default();
    let mut mt = metadata_request::MetadataRequestTopic::default();
    mt.name = Some(topic());
    metadata.topics = Some(vec![mt]);
    let mut fetch = FetchRequest::default();
    fetch.max_wait_ms = 1;
    let mut ft = fetch_request::FetchTopic::default();
    ft.topic = topic();
    ft.partitions = vec![fetch_request::FetchPartition::default()];
    fetch.topics = vec![ft];
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = GroupId(StrBytes::from_static_str("g"));
    commit.generation_id_or_member_epoch = -1;
    let mut ct = offset_commit_request::OffsetCommitRequestTopic::default();
    ct.name = topic();
    ct.partitions = vec![offset_commit_request::OffsetCommitRequestPartition::default()];
    commit.topics = vec![ct];
    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(StrBytes::from_static_str("g"));
    join.session_timeout_ms = 10_000;
    join.protocol_type = StrBytes::from_static_str("consumer");
    let mut jp = join_group_request::JoinGroupRequestProtocol::default();
    jp.name = StrBytes::from_static_str("range");
    join.protocols = [jp].into_iter().collect();
    let mut out = Vec::new();
    for &(key, lo, hi) in SUPPORTED {
        for v in [lo, hi] {
            let frame = match key {
                ApiKey::Produce => request(key, v, &produce),
                ApiKey::Fetch => request(key, v, &fetch),
                ApiKey::Metadata => request(key, v, &metadata),
                ApiKey::OffsetCommit => request(key, v, &commit),
                ApiKey::JoinGroup => request(key, v, &join),
                ApiKey::ListOffsets => request(key, v, &ListOffsetsRequest::default()),
                ApiKey::OffsetFetch => request(key, v, &OffsetFetchRequest::default()),
                ApiKey::FindCoordinator => request(key, v, &FindCoordinatorRequest::default()),
                ApiKey::Heartbeat => request(key, v, &HeartbeatRequest::default()),
                ApiKey::LeaveGroup => request(key, v, &LeaveGroupRequest::default()),
                ApiKey::SyncGroup => request(key, v, &SyncGroupRequest::default()),
                ApiKey::DescribeGroups => request(key, v, &DescribeGroupsRequest::default()),
                ApiKey::ListGroups => request(key, v, &ListGroupsRequest::default()),
                ApiKey::ApiVersions => request(key, v, &ApiVersionsRequest::default()),
                ApiKey::CreateTopics => request(key, v, &CreateTopicsRequest::default()),
                ApiKey::DeleteTopics => request(key, v, &DeleteTopicsRequest::default()),
                ApiKey::InitProducerId => request(key, v, &InitProducerIdRequest::default()),
                ApiKey::DescribeConfigs => request(key, v, &DescribeConfigsRequest::default()),
                ApiKey::AlterConfigs => request(key, v, &AlterConfigsRequest::default()),
                ApiKey::CreatePartitions => request(key, v, &CreatePartitionsRequest::default()),
                ApiKey::DeleteGroups => request(key, v, &DeleteGroupsRequest::default()),
                ApiKey::IncrementalAlterConfigs => {
                    request(key, v, &IncrementalAlterConfigsRequest::default())
                }
                ApiKey::DescribeCluster => request(key, v, &DescribeClusterRequest::default()),
                _ => None,
            };
            out.extend(frame);
        }
    }
    out
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec((any::<u8>(), any::<u16>(), any::<u8>()), 1..4)
}

#[test]
fn mutated_requests_never_panic_the_broker() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig::default()
        .with_property("log.dirs", dir.path().display().to_string())
        .and_then(|c| c.with_property("listeners", "PLAINTEXT://127.0.0.1:0"))
        .and_then(|c| c.with_property("offsets.topic.num.partitions", "2"))
        .unwrap();
    let broker = rt.block_on(Broker::start(config)).unwrap();
    // Handlers spawn tasks (flushes); they run on this runtime.
    let _inside = rt.enter();
    let state = broker.state();
    let conn = Connection {
        peer: SocketAddr::from(([127, 0, 0, 1], 1)),
    };
    let seeds = seeds();
    assert!(seeds.len() > 40, "a seed per API and version end");
    // Mostly the body is mutated (the header chooses the handler); sometimes both.
    let strategy = (0..seeds.len(), mutations(), any::<u8>());
    let handled = std::sync::atomic::AtomicU32::new(0);
    runner()
        .run(&strategy, |(i, muts, whole)| {
            let (header, body) = &seeds[i];
            let frame = if whole < 16 {
                mutate([header.clone(), body.clone()].concat(), &muts)
            } else {
                [header.clone(), mutate(body.clone(), &muts)].concat()
            };
            if let Ok(reply) = dispatch(&state, &conn, Bytes::from(frame)) {
                handled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // Long polls (fetch, join) may wait; not answering fast is no failure.
                let _ = rt.block_on(async {
                    tokio::time::timeout(Duration::from_millis(20), reply).await
                });
            }
            Ok(())
        })
        .unwrap();
    // The mutations must leave many requests decodable, or handlers go untested.
    let handled = handled.into_inner();
    assert!(
        handled > cases() / 10,
        "only {handled} of {} cases reached a handler",
        cases()
    );
    // Still serving: a well-formed request after all of that.
    let (header, body) = request(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).unwrap();
    let reply = dispatch(&state, &conn, Bytes::from([header, body].concat())).expect("dispatches");
    assert!(rt.block_on(reply).is_some());
    rt.block_on(broker.shutdown()).unwrap();
}

#[test]
fn mutated_batches_never_panic_or_corrupt_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let compact = TopicConfig {
        compact: true,
        segment_bytes: 64 * 1024,
        ..TopicConfig::default()
    };
    let log = Arc::new(open(dir.path(), compact.clone()));
    let seeds: Vec<Vec<u8>> = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]
    .into_iter()
    .flat_map(|c| [batch(1, true, c), batch(9, true, c), batch(4, false, c)])
    .collect();
    let strategy = (0..seeds.len(), mutations(), any::<bool>(), any::<bool>());
    let accepted = std::sync::atomic::AtomicU32::new(0);
    runner()
        .run(&strategy, |(i, muts, fix, two)| {
            let mut b = mutate(seeds[i].clone(), &muts);
            if fix {
                fix_crc(&mut b);
            }
            if two {
                b.extend_from_slice(&seeds[(i + 1) % seeds.len()]);
            }
            let end = log.log_end_offset();
            match log.append(&b, 0) {
                Ok(r) => {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    prop_assert_eq!(r.base_offset, end);
                    prop_assert!(r.last_offset >= r.base_offset);
                    prop_assert_eq!(log.log_end_offset(), r.last_offset + 1);
                    let read = log.read(r.base_offset, 1 << 20).expect("reads back");
                    let batches = split_batches(&read.records).expect("stored batches are valid");
                    prop_assert_eq!(batches[0].0.base_offset, r.base_offset);
                }
                Err(_) => prop_assert_eq!(log.log_end_offset(), end),
            }
            Ok(())
        })
        .unwrap();
    // Some mutations leave a valid batch (a changed value byte with the CRC fixed).
    let accepted = accepted.into_inner();
    assert!(
        accepted > 0 && accepted < cases(),
        "{accepted} of {} accepted",
        cases()
    );
    let end = log.log_end_offset();
    drop(log);
    let reopened = open(dir.path(), compact);
    assert_eq!(
        reopened.log_end_offset(),
        end,
        "recovery keeps every accepted batch"
    );
}
