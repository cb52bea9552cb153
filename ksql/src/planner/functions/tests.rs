//! The functions as a user calls them: SQL through the ksql session, results compared
//! with ksqlDB's documented outputs (docs.ksqldb.io, "Scalar functions" and
//! "Aggregate functions", and ksqlDB's QTT expectations).

use datafusion::arrow::array::Array;
use datafusion::arrow::util::display::array_value_to_string;

use datafusion::execution::FunctionRegistry;
use datafusion::prelude::lit;

use crate::planner::session;

/// The first row's values of `SELECT <exprs>`, as text ("NULL" for NULL).
fn select(exprs: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime for the test");
    rt.block_on(async {
        let ctx = session(1).expect("the ksql session");
        let batches = ctx
            .sql(&format!("SELECT {exprs}"))
            .await
            .unwrap_or_else(|e| panic!("SELECT {exprs}: {e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("SELECT {exprs}: {e}"));
        let b = &batches[0];
        (0..b.num_columns())
            .map(|i| {
                let c = b.column(i);
                if c.is_null(0) {
                    "NULL".to_string()
                } else {
                    array_value_to_string(c, 0).expect("printable")
                }
            })
            .collect()
    })
}

#[test]
fn strings_follow_ksqldb() {
    assert_eq!(
        select("lpad('foo', 7, 'Bar'), rpad('foo', 5, 'Bar'), lpad('foo', 2, 'Bar'), lpad('foo', -1, 'Bar'), rpad('foo', 5, '')"),
        ["BarBfoo", "fooBa", "fo", "NULL", "NULL"]
    );
    assert_eq!(
        select("instr('corporate floor', 'or'), instr('corporate floor', 'or', 4), instr('corporate floor', 'or', 4, 2), instr('corporate floor', 'or', -3, 2), instr('short', 'or', 4)"),
        ["2", "5", "14", "2", "0"]
    );
    // SUBSTRING's SQL syntax is planned by DataFusion itself; ksql's rewrite sends it
    // to the registry's `substr`, called here directly.
    let substr = |args: &[i64]| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime for the test");
        rt.block_on(async {
            let ctx = session(1).expect("the ksql session");
            let f = ctx
                .udf("ksql_substring")
                .expect("ksql_substring is registered");
            let mut call = vec![lit("abcdef")];
            call.extend(args.iter().map(|a| lit(*a)));
            let b = ctx
                .read_empty()
                .and_then(|df| df.select(vec![f.call(call).alias("s")]))
                .expect("a plan")
                .collect()
                .await
                .expect("a result");
            array_value_to_string(b[0].column(0), 0).expect("printable")
        })
    };
    assert_eq!(
        [&[2][..], &[2, 3], &[-2], &[10], &[0, 1]].map(substr),
        ["bcdef", "bcd", "ef", "", "a"]
    );
    assert_eq!(
        select("encode('4578616d706C6521', 'hex', 'utf8'), encode('Example!', 'ascii', 'base64'), encode('RXhhbXBsZSE=', 'base64', 'hex')"),
        ["Example!", "RXhhbXBsZSE=", "4578616d706c6521"]
    );
    assert_eq!(
        select("from_bytes(to_bytes('IQ==', 'base64'), 'hex'), int_from_bytes(to_bytes('AAAH5Q==', 'base64')), int_from_bytes(to_bytes('5QcAAA==', 'base64'), 'LITTLE_ENDIAN')"),
        ["21", "2021", "2021"]
    );
    assert_eq!(
        select("regexp_extract('(.*) (.*)', 'steven zhang', 2), regexp_extract('test.', 'nothing'), array_join(regexp_extract_all('test.', 'some_test_string_testabab'), '|')"),
        ["zhang", "NULL", "test_|testa"]
    );
    assert_eq!(
        select("array_join(split('..a..', '.'), '|'), cardinality(split('abc', '')), split_to_map('apple:green/banana:yellow', '/', ':')['banana']"),
        ["||a||", "3", "yellow"]
    );
}

#[test]
fn arrays_and_maps_follow_ksqldb() {
    assert_eq!(
        select("array_join(array_sort(ARRAY[3, NULL, 1]), ','), array_join(array_sort(ARRAY[3, NULL, 1], 'desc'), ','), array_max(ARRAY[1, NULL, 5]), array_min(ARRAY['b', 'a'])"),
        ["1,3,null", "3,1,null", "5", "a"]
    );
    assert_eq!(
        select("array_join(array_distinct(ARRAY['foo', 'bar', 'foo'])), array_join(array_union(ARRAY[0, 0, 1], ARRAY[1, -2])), array_join(array_except(ARRAY[0, 0, 1, -1], ARRAY[1, -2])), array_join(array_intersect(ARRAY[0, 0, 1], ARRAY[1, 0]))"),
        ["foo,bar", "0,1,-2", "0,-1", "0,1"]
    );
    assert_eq!(
        select("array_join(array_remove(ARRAY[1, NULL, 2, NULL], NULL)), array_join(slice(ARRAY['a', 'b', 'c', 'd'], 2, 3)), array_join(generate_series(4, 1)), array_join(generate_series(0, 9, 3))"),
        ["1,2", "b,c", "4,3,2,1", "0,3,6,9"]
    );
    assert_eq!(
        select("array_contains(ARRAY['Pink', NULL], 'Pink'), array_join(ARRAY[true, NULL, false], ''), array_join(map_keys(as_map(ARRAY['a', 'b'], ARRAY[1, 2])))"),
        ["true", "truenullfalse", "a,b"]
    );
}

#[test]
fn json_and_geography_follow_ksqldb() {
    assert_eq!(
        select(
            r#"extractjsonfield('{"name": "cdd", "v": "2"}}', '$.name'), extractjsonfield('{"array": [1.23450]}', '$.array[0]'), extractjsonfield('{"array": [1, 2]}', '$.array[-1]'), extractjsonfield('{"a": {"b": [1, {"c": "x"}]}}', '$.a.b[1].c')"#
        ),
        ["cdd", "1.23450", "NULL", "x"]
    );
    assert_eq!(
        select(
            r#"is_json_string('[1, 2, 3]'), is_json_string('abc'), json_array_length('["a", "b"]'), json_array_contains('["Pink", null]', 'Pink'), json_concat('{"a": {"5": 6}}', '{"a": {"3": 4}}'), json_concat('[1, 2]', '[3, 4]')"#
        ),
        [
            "true",
            "false",
            "2",
            "true",
            r#"{"a":{"3":4}}"#,
            "[1,2,3,4]"
        ]
    );
    // ksqlDB's GEO_DISTANCE docs example values, to the last digit.
    assert_eq!(
        select("geo_distance(37.4439, -122.1663, 51.5257, -0.1122), geo_distance(37.4439, -122.1663, 51.5257, -0.1122, 'MI')"),
        ["8634.659796579544", "5365.659729188262"]
    );
    assert_eq!(
        select("stringtotimestamp('2018-05-11 21:58:33', 'yyyy-MM-dd HH:mm:ss'), timestamptostring(1526075913000, 'yyyy-MM-dd HH:mm:ss.SSS', 'America/Los_Angeles'), datetostring(10, 'yyyy-MM-dd')"),
        ["1526075913000", "2018-05-11 14:58:33.000", "1970-01-11"]
    );
}

#[test]
fn a_panicking_library_function_is_an_error_not_a_crash() {
    // DataFusion's own LPAD allocates by its length argument; ksqlDB's (ours) answers
    // NULL for a negative length instead.
    assert_eq!(
        select("lpad('x', -5, 'y'), rpad('x', -5, 'y')"),
        ["NULL", "NULL"]
    );
}
