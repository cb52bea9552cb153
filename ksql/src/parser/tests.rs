use super::ast::*;
use super::parse_one;
use super::types::SqlType;

#[test]
fn create_stream_with_columns_and_props() {
    let s = parse_one(
        "CREATE STREAM orders (id STRING KEY, qty INT, price DECIMAL(10, 2), tags ARRAY<STRING>)\n WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=3);",
    )
    .unwrap();
    let Statement::CreateSource {
        kind,
        name,
        columns,
        props,
        ..
    } = s.statement
    else {
        panic!("not a CREATE: {:?}", s.statement)
    };
    assert_eq!(kind, SourceKind::Stream);
    assert_eq!(name, "ORDERS");
    assert_eq!(columns.len(), 4);
    assert!(columns[0].key);
    assert_eq!(columns[2].sql_type, SqlType::Decimal(10, 2));
    assert_eq!(
        columns[3].sql_type,
        SqlType::Array(Box::new(SqlType::String))
    );
    assert_eq!(props["KAFKA_TOPIC"].as_text(), "orders");
    assert_eq!(props["PARTITIONS"].as_text(), "3");
}

#[test]
fn ksql_clauses_are_cut_out_of_the_query() {
    let s = parse_one(
        "CREATE TABLE t AS SELECT k, COUNT(*) FROM s WINDOW HOPPING (SIZE 30 SECONDS, ADVANCE BY 10 SECONDS, GRACE PERIOD 1 MINUTE) WHERE x > 1 GROUP BY k EMIT CHANGES;",
    )
    .unwrap();
    let Statement::CreateAsSelect { query, .. } = s.statement else {
        panic!()
    };
    let w = query.window.unwrap();
    assert_eq!(
        (w.kind, w.size_ms, w.advance_ms, w.grace_ms),
        (WindowKind::Hopping, 30_000, 10_000, Some(60_000))
    );
    assert_eq!(query.emit, Some(Emit::Changes));
    assert_eq!(
        query.query.to_string(),
        "SELECT K, COUNT(*) FROM S WHERE X > 1 GROUP BY K"
    );
}

#[test]
fn within_belongs_to_its_join_and_partition_by_is_an_expression() {
    let s = parse_one(
        "SELECT * FROM a JOIN b WITHIN (1 MINUTE, 2 HOURS) GRACE PERIOD 5 SECONDS ON a.id = b.id LEFT JOIN c ON a.x = c.x PARTITION BY UCASE(a.y) EMIT CHANGES LIMIT 3",
    )
    .unwrap();
    let Statement::Select(q) = s.statement else {
        panic!()
    };
    assert_eq!(q.within.len(), 2);
    assert_eq!(
        q.within[0],
        Some(Within {
            before_ms: 60_000,
            after_ms: 7_200_000,
            grace_ms: Some(5_000)
        })
    );
    assert_eq!(q.within[1], None);
    assert_eq!(q.partition_by.unwrap().to_string(), "UCASE(A.Y)");
    assert!(q.query.to_string().ends_with("LIMIT 3"));
}

#[test]
fn other_statements() {
    type Check = fn(&Statement) -> bool;
    let cases: Vec<(&str, Check)> = vec![
        ("DROP STREAM IF EXISTS s DELETE TOPIC", |s| {
            matches!(
                s,
                Statement::Drop {
                    if_exists: true,
                    delete_topic: true,
                    ..
                }
            )
        }),
        (
            "TERMINATE CTAS_T_1",
            |s| matches!(s, Statement::Terminate { query_id: Some(q) } if q == "CTAS_T_1"),
        ),
        ("TERMINATE ALL", |s| {
            matches!(s, Statement::Terminate { query_id: None })
        }),
        ("SHOW STREAMS", |s| {
            matches!(s, Statement::Show(ShowWhat::Streams))
        }),
        ("LIST TOPICS", |s| {
            matches!(s, Statement::Show(ShowWhat::Topics))
        }),
        ("DESCRIBE s EXTENDED", |s| {
            matches!(s, Statement::Describe { extended: true, .. })
        }),
        (
            "PRINT myTopic FROM BEGINNING LIMIT 2",
            |s| matches!(s, Statement::Print { topic, from_beginning: true, limit: Some(2) } if topic == "MYTOPIC" || topic == "myTopic"),
        ),
        (
            "PRINT 'myTopic'",
            |s| matches!(s, Statement::Print { topic, from_beginning: false, .. } if topic == "myTopic"),
        ),
        (
            "SET 'auto.offset.reset'='earliest'",
            |s| matches!(s, Statement::Set { name, value } if name == "auto.offset.reset" && value == "earliest"),
        ),
        ("UNSET 'auto.offset.reset'", |s| {
            matches!(s, Statement::Unset { .. })
        }),
        ("RUN SCRIPT '/tmp/x.sql'", |s| {
            matches!(s, Statement::RunScript { .. })
        }),
        (
            "ASSERT NOT EXISTS TOPIC 'orders' WITH (PARTITIONS=3) TIMEOUT 5 SECONDS",
            |s| matches!(s, Statement::AssertTopic { topic, exists: false, props, timeout_ms: Some(5000) } if topic == "orders" && props.contains_key("PARTITIONS")),
        ),
        ("ASSERT TOPIC orders", |s| {
            matches!(s, Statement::AssertTopic { exists: true, timeout_ms: None, .. })
        }),
        (
            "CREATE STREAM s (k STRING KEY, h ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, a BYTES HEADER('abc')) WITH (KAFKA_TOPIC='s')",
            |s| matches!(s, Statement::CreateSource { columns, .. } if columns[1].header == Some(HeaderRef::All) && columns[2].header == Some(HeaderRef::Key("abc".into()))),
        ),
        ("EXPLAIN SELECT * FROM s", |s| {
            matches!(s, Statement::Explain(_))
        }),
        ("EXPLAIN CSAS_X_0", |s| {
            matches!(s, Statement::ExplainQueryId(_))
        }),
        (
            "INSERT INTO s (ROWTIME, k, v) VALUES (1000, 'a', 2)",
            |s| matches!(s, Statement::InsertValues { columns, values, .. } if columns.len() == 3 && values.len() == 3),
        ),
        ("INSERT INTO s SELECT * FROM t", |s| {
            matches!(s, Statement::InsertSelect { .. })
        }),
    ];
    for (sql, check) in cases {
        let s = parse_one(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(check(&s.statement), "{sql}: {:?}", s.statement);
    }
}

#[test]
fn scripts_split_on_semicolons_and_keep_text() {
    let all = super::parse("CREATE STREAM a (k STRING KEY, v INT) WITH (KAFKA_TOPIC='a', VALUE_FORMAT='JSON');\n\nSELECT * FROM a EMIT CHANGES;").unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].text, "SELECT * FROM a EMIT CHANGES");
}

#[test]
fn syntax_errors_name_line_column_and_token() {
    let e = parse_one("SELECT * FROM s\nWINDOW TUMBLING (SIZE 1 FORTNIGHT) GROUP BY k")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("line 2:"), "{e}");
    assert!(e.contains("FORTNIGHT"), "{e}");
    let e = parse_one("CREATE STREAM s (a INT KEY) WITH (KAFKA_TOPIC='s') EXTRA")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1:52") && e.contains("EXTRA"), "{e}");
    let e = parse_one("SELECT * FROM s WHERE x = = 1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1:27") && e.contains("="), "{e}");
    // ksqlDB's grammar: ASSERT is followed by [NOT EXISTS] TOPIC or SCHEMA.
    let e = parse_one("ASSERT VALUES foo (id INT) VALUES (123)")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 1:8: Syntax Error") && e.contains("at or near 'VALUES' at line 1:8"),
        "{e}"
    );
    // GROUP BY takes value expressions: a predicate, or a parenthesised list among
    // others, stops ksqlDB's parser.
    let e = parse_one("SELECT COUNT(*) FROM t GROUP BY data AND id")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1:38: Syntax Error"), "{e}");
    let e = parse_one("SELECT f1, COUNT(*) FROM t GROUP BY f3, (f2, f1)")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1:44: Syntax Error"), "{e}");
    for fine in [
        "SELECT COUNT(*) FROM t GROUP BY (f2, f1)",
        "SELECT COUNT(*) FROM t GROUP BY f3, (f2 + 1), CASE WHEN a = 1 THEN 0 ELSE 1 END",
        "SELECT COUNT(*) FROM t GROUP BY f(a, b) HAVING COUNT(*) > 1 AND 1 = 1",
    ] {
        parse_one(fine).unwrap_or_else(|e| panic!("{fine}: {e}"));
    }
    let e = parse_one("CREAT STREAM s").unwrap_err().to_string();
    assert!(e.contains("line 1:1") && e.contains("CREAT"), "{e}");
    let e = parse_one("CREATE STREAM s (a INT PRIMARY KEY) WITH (KAFKA_TOPIC='s')")
        .unwrap_err()
        .to_string();
    // ksqlDB's AstBuilder: the position is the column's name.
    assert!(
        e.contains("Line: 1, Col: 18: Column `A` is a 'PRIMARY KEY' column"),
        "{e}"
    );
}
