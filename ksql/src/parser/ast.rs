//! The statements of ksqlDB's dialect. Queries keep sqlparser's `Query` for everything
//! standard SQL can say; the ksql-only clauses sit beside it in [`KsqlQuery`].

use std::collections::BTreeMap;
use std::fmt;

use datafusion::sql::sqlparser::ast::{Expr, Query};

use super::types::SqlType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SourceKind {
    Stream,
    Table,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        })
    }
}

/// A column as declared: `name TYPE [KEY | PRIMARY KEY | HEADERS | HEADER('key')]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub sql_type: SqlType,
    pub key: bool,
    pub header: Option<HeaderRef>,
}

/// A column filled from the record's headers (ksqlDB 0.24+, KLIP-57): `HEADERS` holds
/// all of them as `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`, `HEADER('key')` the value
/// of the last header with that key as BYTES.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HeaderRef {
    All,
    Key(String),
}

impl fmt::Display for HeaderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderRef::All => f.write_str("HEADERS"),
            HeaderRef::Key(k) => write!(f, "HEADER('{k}')"),
        }
    }
}

/// A `WITH (...)` property value: ksqlDB accepts strings, numbers and booleans.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    Str(String),
    Num(String),
    Bool(bool),
}

impl PropValue {
    pub fn as_text(&self) -> String {
        match self {
            PropValue::Str(s) | PropValue::Num(s) => s.clone(),
            PropValue::Bool(b) => b.to_string(),
        }
    }
}

/// `WITH (...)` properties, names upper-cased.
pub type Props = BTreeMap<String, PropValue>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WindowKind {
    Tumbling,
    Hopping,
    Session,
}

/// `WINDOW TUMBLING (SIZE ..)`, `HOPPING (SIZE .., ADVANCE BY ..)`, `SESSION (..)`; all
/// durations in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowSpec {
    pub kind: WindowKind,
    /// Window size, or the inactivity gap of a session window.
    pub size_ms: i64,
    pub advance_ms: i64,
    pub grace_ms: Option<i64>,
}

/// `WITHIN n unit` or `WITHIN (before, after)`, with an optional `GRACE PERIOD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Within {
    pub before_ms: i64,
    pub after_ms: i64,
    pub grace_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    Changes,
    Final,
}

/// A SELECT with ksqlDB's clauses cut out of it.
#[derive(Debug, Clone)]
pub struct KsqlQuery {
    pub query: Box<Query>,
    pub window: Option<WindowSpec>,
    /// One entry per JOIN, in order; `None` where that join has no WITHIN.
    pub within: Vec<Option<Within>>,
    pub partition_by: Option<Expr>,
    pub emit: Option<Emit>,
    /// The statement text, for SHOW QUERIES and the command topic.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowWhat {
    Streams,
    Tables,
    Topics,
    Queries,
    Properties,
}

#[derive(Debug, Clone)]
pub enum Statement {
    CreateSource {
        kind: SourceKind,
        or_replace: bool,
        /// CREATE SOURCE STREAM/TABLE: read-only.
        read_only: bool,
        if_not_exists: bool,
        name: String,
        columns: Vec<ColumnDef>,
        props: Props,
    },
    CreateAsSelect {
        kind: SourceKind,
        or_replace: bool,
        if_not_exists: bool,
        name: String,
        props: Props,
        query: KsqlQuery,
    },
    InsertSelect {
        target: String,
        query: KsqlQuery,
    },
    InsertValues {
        target: String,
        /// Empty: every column in declared order (key columns first).
        columns: Vec<String>,
        values: Vec<Expr>,
    },
    Select(KsqlQuery),
    /// `ALTER STREAM|TABLE name ADD [COLUMN] c type, ...`
    Alter {
        kind: SourceKind,
        name: String,
        columns: Vec<(String, SqlType)>,
    },
    Drop {
        kind: SourceKind,
        if_exists: bool,
        name: String,
        delete_topic: bool,
    },
    Terminate {
        /// `None`: TERMINATE ALL.
        query_id: Option<String>,
    },
    Show(ShowWhat),
    Describe {
        name: String,
        extended: bool,
    },
    /// DESCRIBE FUNCTIONS / SHOW FUNCTIONS.
    ShowFunctions,
    Print {
        topic: String,
        from_beginning: bool,
        limit: Option<u64>,
    },
    Set {
        name: String,
        value: String,
    },
    Unset {
        name: String,
    },
    /// A command of the shell (the ksql CLI): the server refuses it.
    RunScript {
        path: String,
    },
    /// `ASSERT [NOT EXISTS] TOPIC`: succeeds when the topic exists (or not) with the
    /// `PARTITIONS`/`REPLICAS` given, waiting up to the timeout.
    AssertTopic {
        topic: String,
        exists: bool,
        props: Props,
        timeout_ms: Option<i64>,
    },
    AssertSchema,
    Explain(Box<Statement>),
    ExplainQueryId(String),
}

/// A statement with the exact text it was parsed from.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    pub statement: Statement,
    pub text: String,
}
