//! Header columns (ksqlDB 0.24+, KLIP-57), driven as ksqlDB's QTT `headers.json` does:
//! records produced with Kafka headers, read through `HEADERS` and `HEADER('key')`
//! columns by persistent queries, also across a repartition.

use serde_json::{json, Value};

use crate::cases::run_case;

fn case(statements: &[&str], inputs: Value, outputs: Value) -> Value {
    json!({
        "name": "headers",
        "statements": statements,
        "topics": [{"name": "stream-source", "partitions": 1}],
        "inputs": inputs,
        "outputs": outputs,
    })
}

#[test]
fn headers_column_holds_every_header_in_order() {
    let c = case(
        &[
            "CREATE STREAM SOURCE1 (K STRING KEY, H ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, V BIGINT) WITH (kafka_topic='stream-source', value_format='json');",
            "CREATE STREAM OUTPUT AS SELECT * FROM SOURCE1;",
        ],
        json!([
            {"topic": "stream-source", "key": "k1", "value": {"V": 1}, "timestamp": 1000, "headers": []},
            {"topic": "stream-source", "key": "k2", "value": {"V": 2}, "timestamp": 1000,
             "headers": [{"KEY": "abc", "VALUE": "IQ=="}, {"KEY": "def", "VALUE": "Ig=="}]},
        ]),
        json!([
            {"topic": "OUTPUT", "key": "k1", "value": {"H": [], "V": 1}, "timestamp": 1000},
            {"topic": "OUTPUT", "key": "k2", "value": {"H": [{"KEY": "abc", "VALUE": "IQ=="}, {"KEY": "def", "VALUE": "Ig=="}], "V": 2}, "timestamp": 1000},
        ]),
    );
    run_case(&c).unwrap();
}

#[test]
fn header_key_column_is_the_last_header_with_that_key() {
    // Kafka's Headers.lastHeader: of two `abc` headers the later one; NULL without one.
    let c = case(
        &[
            "CREATE STREAM SOURCE1 (K STRING KEY, H1 BYTES HEADER('abc'), V BIGINT) WITH (kafka_topic='stream-source', value_format='json');",
            "CREATE STREAM OUTPUT AS SELECT K, H1, V FROM SOURCE1;",
            "CREATE STREAM FILTERED AS SELECT K, V FROM SOURCE1 WHERE H1 IS NOT NULL;",
        ],
        json!([
            {"topic": "stream-source", "key": "k1", "value": {"V": 1}, "timestamp": 1000,
             "headers": [{"KEY": "abc", "VALUE": "IQ=="}, {"KEY": "abc", "VALUE": "Ig=="}]},
            {"topic": "stream-source", "key": "k2", "value": {"V": 2}, "timestamp": 1000,
             "headers": [{"KEY": "other", "VALUE": "IQ=="}]},
        ]),
        json!([
            {"topic": "OUTPUT", "key": "k1", "value": {"H1": "Ig==", "V": 1}, "timestamp": 1000},
            {"topic": "OUTPUT", "key": "k2", "value": {"H1": null, "V": 2}, "timestamp": 1000},
            {"topic": "FILTERED", "key": "k1", "value": {"V": 1}, "timestamp": 1000},
        ]),
    );
    run_case(&c).unwrap();
}

#[test]
fn header_columns_survive_a_repartition() {
    // GROUP BY a value column sends the rows through a repartition topic; the header
    // values counted are the source records' own, not the runtime's bookkeeping header.
    let c = case(
        &[
            "CREATE STREAM SOURCE1 (K STRING KEY, H1 BYTES HEADER('abc'), V BIGINT) WITH (kafka_topic='stream-source', value_format='json');",
            "CREATE TABLE OUTPUT AS SELECT V, COUNT(H1) AS C FROM SOURCE1 GROUP BY V;",
            "CREATE STREAM SOURCE2 (K STRING KEY, H ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, V BIGINT) WITH (kafka_topic='stream-source', value_format='json');",
            "CREATE TABLE SIZES AS SELECT V, SUM(ARRAY_LENGTH(H)) AS N FROM SOURCE2 GROUP BY V;",
        ],
        json!([
            {"topic": "stream-source", "key": "k1", "value": {"V": 7}, "timestamp": 1000,
             "headers": [{"KEY": "abc", "VALUE": "IQ=="}]},
            {"topic": "stream-source", "key": "k2", "value": {"V": 7}, "timestamp": 1001, "headers": []},
            {"topic": "stream-source", "key": "k3", "value": {"V": 7}, "timestamp": 1002,
             "headers": [{"KEY": "abc", "VALUE": "Ig=="}]},
        ]),
        json!([
            {"topic": "OUTPUT", "key": 7, "value": {"C": 1}, "timestamp": 1000},
            {"topic": "OUTPUT", "key": 7, "value": {"C": 1}, "timestamp": 1001},
            {"topic": "OUTPUT", "key": 7, "value": {"C": 2}, "timestamp": 1002},
            {"topic": "SIZES", "key": 7, "value": {"N": 1}, "timestamp": 1000},
            {"topic": "SIZES", "key": 7, "value": {"N": 1}, "timestamp": 1001},
            {"topic": "SIZES", "key": 7, "value": {"N": 2}, "timestamp": 1002},
        ]),
    );
    run_case(&c).unwrap();
}
