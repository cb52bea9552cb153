//! The pgoutput decoder on a real PostgreSQL's logical decoding output, read over plain
//! SQL (`pg_logical_slot_peek_binary_changes`), as the CDC source will read it.

use runnel_connect::connectors::postgres::pgoutput::{decode, parse_lsn, Datum, Message};

use crate::pg::PgServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_changes_decode_in_commit_order() {
    let pg = PgServer::start();
    let db = pg.client().await;
    db.batch_execute(
        "CREATE TABLE items (id INT PRIMARY KEY, name TEXT);
         CREATE PUBLICATION runnel_pub FOR TABLE items;",
    )
    .await
    .unwrap();
    // A slot cannot be created in a transaction that wrote: a statement of its own.
    db.batch_execute("SELECT pg_create_logical_replication_slot('runnel_slot', 'pgoutput')")
        .await
        .unwrap();
    db.batch_execute("BEGIN; INSERT INTO items VALUES (1, 'lamp'), (2, NULL); COMMIT;")
        .await
        .unwrap();
    db.batch_execute("BEGIN; UPDATE items SET name = 'desk' WHERE id = 2; DELETE FROM items WHERE id = 1; COMMIT;")
        .await
        .unwrap();
    let rows = db
        .query(
            "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes('runnel_slot', NULL, NULL, \
             'proto_version', '1', 'publication_names', 'runnel_pub')",
            &[],
        )
        .await
        .unwrap();
    let mut kinds = Vec::new();
    let mut lsns = Vec::new();
    for r in &rows {
        lsns.push(parse_lsn(r.get::<_, &str>(0)).unwrap());
        let m = decode(r.get::<_, &[u8]>(1)).unwrap();
        kinds.push(match &m {
            Message::Begin { .. } => "B".to_string(),
            Message::Commit { .. } => "C".into(),
            Message::Relation { name, columns, .. } => {
                format!("R:{name}:{}", columns.iter().filter(|c| c.key).count())
            }
            Message::Insert { new, .. } => format!("I:{new:?}"),
            Message::Update { old, new, .. } => format!("U:{}:{new:?}", old.is_some()),
            Message::Delete { old, .. } => format!("D:{old:?}"),
            Message::Truncate { .. } => "T".into(),
            Message::Other(t) => format!("?{}", *t as char),
        });
    }
    let t = |s: &str| Datum::Text(s.into());
    assert_eq!(
        kinds,
        vec![
            "B".to_string(),
            "R:items:1".into(),
            format!("I:{:?}", vec![t("1"), t("lamp")]),
            format!("I:{:?}", vec![t("2"), Datum::Null]),
            "C".into(),
            "B".into(),
            format!("U:false:{:?}", vec![t("2"), t("desk")]),
            // A delete carries the old key only (default replica identity).
            format!("D:{:?}", vec![t("1"), Datum::Null]),
            "C".into(),
        ]
    );
    assert!(
        lsns.windows(2).all(|w| w[0] <= w[1]),
        "LSNs in order: {lsns:?}"
    );
}
