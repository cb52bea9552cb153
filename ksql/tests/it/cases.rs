//! The acceptance cases of ../shared/ksql-cases (or `KSQL_CASES`), each run on a fresh
//! broker and engine: statements, input records encoded with the declared formats,
//! and the sink topics compared record by record with the expected outputs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runnel_ksql::catalog::{Catalog, Format, Source};
use runnel_ksql::format::{self, scalar_to_json};
use runnel_ksql::parser::ast::{SourceKind, WindowKind};
use runnel_ksql::parser::types::SqlType;
use serde_json::Value;

use crate::common::Stack;

fn cases_dir() -> PathBuf {
    match std::env::var("KSQL_CASES") {
        Ok(d) => PathBuf::from(d),
        // Relative to the repository root; tests run in the crate's folder.
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/ksql-cases"),
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    key: Value,
    value: Value,
    timestamp: i64,
    window: Option<(i64, i64, &'static str)>,
}

fn num_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| num_eq(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| num_eq(v, w))
        }
        _ => a == b,
    }
}

fn rec_eq(a: &Rec, b: &Rec) -> bool {
    num_eq(&a.key, &b.key)
        && num_eq(&a.value, &b.value)
        && a.timestamp == b.timestamp
        && a.window == b.window
}

fn show(r: &Rec) -> String {
    let w = r
        .window
        .map(|(s, e, t)| format!(" window {t} [{s},{e}]"))
        .unwrap_or_default();
    format!("key {} value {} ts {}{w}", r.key, r.value, r.timestamp)
}

/// The source declared over a topic (a stream before a table).
fn source_for<'c>(catalog: &'c Catalog, topic: &str) -> Option<&'c Source> {
    let mut all: Vec<&Source> = catalog
        .sources
        .values()
        .filter(|s| s.topic == topic)
        .collect();
    all.sort_by_key(|s| (s.kind != SourceKind::Stream, !s.written_by.is_empty()));
    all.first().copied()
}

fn scalar_bytes(v: &Value, t: &SqlType) -> anyhow::Result<Vec<u8>> {
    Ok(match (v, t) {
        (Value::String(s), _) => s.as_bytes().to_vec(),
        (Value::Number(n), SqlType::Integer) => {
            (n.as_i64().unwrap_or(0) as i32).to_be_bytes().to_vec()
        }
        (Value::Number(n), SqlType::Bigint) => n.as_i64().unwrap_or(0).to_be_bytes().to_vec(),
        (Value::Number(n), SqlType::Double) => n.as_f64().unwrap_or(0.0).to_be_bytes().to_vec(),
        (other, _) => other.to_string().into_bytes(),
    })
}

type Bytes = Option<Vec<u8>>;

fn encode_input(source: Option<&Source>, input: &Value) -> anyhow::Result<(Bytes, Bytes)> {
    let key = match &input["key"] {
        Value::Null => None,
        k => {
            let key_col = source.and_then(|s| s.key_columns().next());
            match (source.map(|s| s.key_format), key_col) {
                (Some(Format::Json), _) => Some(serde_json::to_vec(k)?),
                (_, Some(c)) => Some(scalar_bytes(k, &c.sql_type)?),
                _ => Some(scalar_bytes(k, &SqlType::String)?),
            }
        }
    };
    if let Some(raw) = input.get("raw_value").and_then(Value::as_str) {
        return Ok((key, Some(raw.as_bytes().to_vec())));
    }
    let value = match &input["value"] {
        Value::Null => None,
        v => match source.map(|s| (s.value_format, s.value_columns().next())) {
            Some((Format::Kafka, Some(c))) => Some(scalar_bytes(v, &c.sql_type)?),
            Some((Format::Delimited, _)) => Some(match v {
                Value::String(s) => s.as_bytes().to_vec(),
                other => other.to_string().into_bytes(),
            }),
            _ => Some(serde_json::to_vec(v)?),
        },
    };
    Ok((key, value))
}

fn decode_output(sink: &Source, r: &runnel_ksql::kafka::Fetched) -> Rec {
    let keys: Vec<_> = sink.key_columns().collect();
    let (key, window) =
        match format::decode_key(sink.key_format, r.key.as_deref(), &keys, sink.windowed) {
            Ok((row, w)) => {
                let key = match (sink.key_format, row.as_slice()) {
                    (_, []) => Value::Null,
                    (_, [one]) => scalar_to_json(one),
                    (_, many) => Value::Array(many.iter().map(scalar_to_json).collect()),
                };
                let window = w.map(|(s, e)| match sink.windowed {
                    Some(WindowKind::Session) => (s, e, "session"),
                    _ => (s, s + sink.window_size_ms.unwrap_or(0), "time"),
                });
                (key, window)
            }
            Err(e) => (Value::String(format!("<undecodable key: {e}>")), None),
        };
    let value = match &r.value {
        None => Value::Null,
        Some(b) => match sink.value_format {
            Format::Json => serde_json::from_slice(b)
                .unwrap_or_else(|e| Value::String(format!("<bad JSON: {e}>"))),
            Format::Delimited => Value::String(String::from_utf8_lossy(b).into_owned()),
            Format::Kafka => {
                let cols: Vec<_> = sink.value_columns().collect();
                match format::decode_value(Format::Kafka, Some(b), &cols, true) {
                    Ok(Some(row)) => scalar_to_json(&row[0]),
                    Ok(None) => Value::Null,
                    Err(e) => Value::String(format!("<undecodable: {e}>")),
                }
            }
        },
    };
    Rec {
        key,
        value,
        timestamp: r.timestamp,
        window,
    }
}

fn expected_rec(o: &Value) -> Rec {
    let window = o.get("window").filter(|w| !w.is_null()).map(|w| {
        let t = if w["type"] == "session" {
            "session"
        } else {
            "time"
        };
        (
            w["start"].as_i64().unwrap_or(0),
            w["end"].as_i64().unwrap_or(0),
            t,
        )
    });
    Rec {
        key: o["key"].clone(),
        value: o["value"].clone(),
        timestamp: o["timestamp"].as_i64().unwrap_or(0),
        window,
    }
}

/// An input's record headers as QTT writes them: `[{"KEY": "k", "VALUE": base64}]`.
fn input_headers(input: &Value) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for h in input["headers"].as_array().into_iter().flatten() {
        let key = h["KEY"].as_str().unwrap_or_default().to_string();
        let value = match h["VALUE"].as_str() {
            Some(b) => base64::engine::general_purpose::STANDARD.decode(b)?,
            None => Vec::new(),
        };
        out.push((key, value));
    }
    Ok(out)
}

/// Runs one case; `Err` carries its first difference.
pub fn run_case(case: &Value) -> anyhow::Result<()> {
    let stack = Stack::start()?;
    let engine = stack.engine.clone();
    let rt = &stack.rt;
    let kafka = engine.kafka();
    let mut topics: BTreeMap<String, i32> = BTreeMap::new();
    for t in case["topics"].as_array().into_iter().flatten() {
        topics.insert(
            t["name"].as_str().unwrap_or_default().to_string(),
            t["partitions"].as_i64().unwrap_or(1) as i32,
        );
    }
    for i in case["inputs"].as_array().into_iter().flatten() {
        topics
            .entry(i["topic"].as_str().unwrap_or_default().to_string())
            .or_insert(1);
    }
    for (t, p) in &topics {
        rt.block_on(kafka.create_topic(t, *p, &[]))?;
    }
    // The cases' outputs are ksqlDB's with record caching off: every update emitted.
    rt.block_on(engine.execute(
        "SET 'auto.offset.reset'='earliest'; SET 'ksql.streams.cache.max.bytes.buffering'='0';",
    ))?;
    let error = case.get("error").filter(|e| !e.is_null());
    let statements: Vec<&str> = case["statements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (i, s) in statements.iter().enumerate() {
        let result = rt.block_on(engine.execute(s));
        match (error, result) {
            (Some(e), Err(err)) if e["statement"].as_u64() == Some(i as u64) => {
                let want = e["contains"].as_str().unwrap_or_default();
                if err
                    .to_string()
                    .to_lowercase()
                    .contains(&want.to_lowercase())
                {
                    return Ok(());
                }
                anyhow::bail!(
                    "statement {i} failed with '{err}', expected a message containing '{want}'"
                );
            }
            (Some(e), Ok(_)) if e["statement"].as_u64() == Some(i as u64) => {
                anyhow::bail!(
                    "statement {i} succeeded, expected an error containing '{}'",
                    e["contains"]
                );
            }
            (_, Err(err)) => anyhow::bail!("statement {i} failed: {err}"),
            (_, Ok(_)) => {}
        }
    }
    if error.is_some() {
        anyhow::bail!("every statement succeeded; an error was expected");
    }
    let catalog = rt.block_on(engine.catalog());
    for input in case["inputs"].as_array().into_iter().flatten() {
        let topic = input["topic"].as_str().unwrap_or_default();
        let (k, v) = encode_input(source_for(&catalog, topic), input)?;
        let ts = input["timestamp"].as_i64();
        let headers = input_headers(input)?;
        let headers: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        rt.block_on(kafka.produce(topic, k.as_deref(), v.as_deref(), ts, &headers))?;
    }
    // Outputs per topic: the named ones and every CREATE ... AS SELECT sink.
    let mut expected: BTreeMap<String, Vec<Rec>> = BTreeMap::new();
    for o in case["outputs"].as_array().into_iter().flatten() {
        expected
            .entry(o["topic"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(expected_rec(o));
    }
    for s in catalog
        .sources
        .values()
        .filter(|s| !s.written_by.is_empty())
    {
        expected.entry(s.topic.clone()).or_default();
    }
    for (topic, want) in &expected {
        let sink = source_for(&catalog, topic)
            .ok_or_else(|| anyhow::anyhow!("no source over output topic {topic}"))?;
        let count = || rt.block_on(kafka.read_all(topic)).map_or(0, |r| r.len());
        let deadline = Instant::now() + Duration::from_secs(20);
        while count() < want.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Late extras: read once the topic has stopped growing (longer when nothing is
        // expected, as the query may not have started writing).
        let idle = Duration::from_millis(if want.is_empty() { 2500 } else { 700 });
        runnel_testkit::settle(&format!("topic {topic}"), 60, idle, count);
        let got: Vec<Rec> = rt
            .block_on(kafka.read_all(topic))?
            .iter()
            .map(|r| decode_output(sink, r))
            .collect();
        compare(topic, want, &got)?;
    }
    Ok(())
}

fn compare(topic: &str, want: &[Rec], got: &[Rec]) -> anyhow::Result<()> {
    let group = |recs: &[Rec]| {
        let mut g: Vec<(String, Vec<Rec>)> = Vec::new();
        for r in recs {
            let k = format!("{}|{:?}", r.key, r.window);
            match g.iter_mut().find(|(x, _)| *x == k) {
                Some((_, v)) => v.push(r.clone()),
                None => g.push((k, vec![r.clone()])),
            }
        }
        g
    };
    let (gw, gg) = (group(want), group(got));
    for (k, w) in &gw {
        let g = gg
            .iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[]);
        for (i, wr) in w.iter().enumerate() {
            match g.get(i) {
                Some(gr) if rec_eq(wr, gr) => {}
                Some(gr) => anyhow::bail!("{topic}: expected {} but got {}", show(wr), show(gr)),
                None => anyhow::bail!("{topic}: missing {}", show(wr)),
            }
        }
        if g.len() > w.len() {
            anyhow::bail!("{topic}: unexpected extra {}", show(&g[w.len()]));
        }
    }
    for (k, g) in &gg {
        if !gw.iter().any(|(x, _)| x == k) {
            anyhow::bail!("{topic}: unexpected {}", show(&g[0]));
        }
    }
    Ok(())
}

/// Cases this engine cannot pass, each with the reason. They still run and are
/// reported as failed; the test fails if one of them starts passing (so the list
/// only shrinks) or if any other case fails.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

#[test]
fn cases() {
    let dir = cases_dir();
    let filter = std::env::var("KSQL_CASE").ok();
    let mut all = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the case directory {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in files {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let file = f.file_stem().unwrap().to_string_lossy().to_string();
        for c in doc["cases"].as_array().into_iter().flatten() {
            let name = format!("{file}/{}", c["name"].as_str().unwrap_or("?"));
            if filter.as_ref().is_none_or(|f| name.contains(f.as_str())) {
                all.push((name, c.clone()));
            }
        }
    }
    assert!(!all.is_empty(), "no cases found in {}", dir.display());
    let queue = Arc::new(Mutex::new(all.clone()));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (queue, results) = (queue.clone(), results.clone());
            std::thread::spawn(move || loop {
                let Some((name, case)) = queue.lock().unwrap().pop() else {
                    break;
                };
                let r = run_case(&case).map_err(|e| e.to_string());
                results.lock().unwrap().push((name, r));
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut results = results.lock().unwrap().clone();
    results.sort();
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    println!(
        "ksql cases: {} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
    let known = |name: &str| {
        KNOWN_FAILURES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, why)| *why)
    };
    for (name, r) in &failed {
        let why = known(name)
            .map(|w| format!(" (known: {w})"))
            .unwrap_or_default();
        println!(
            "FAILED {name}: {}{why}",
            r.as_ref().err().map(String::as_str).unwrap_or("")
        );
    }
    let unexpected: Vec<_> = failed
        .iter()
        .filter(|(n, _)| known(n).is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    let fixed: Vec<_> = results
        .iter()
        .filter(|(n, r)| r.is_ok() && known(n).is_some())
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(unexpected.is_empty(), "ksql cases failed: {unexpected:?}");
    assert!(
        fixed.is_empty(),
        "known failures now pass, remove them from KNOWN_FAILURES: {fixed:?}"
    );
}
