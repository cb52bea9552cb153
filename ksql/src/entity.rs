//! What a statement returns: ksqlDB's REST entities (`KsqlEntity` and its subclasses)
//! as Rust types. The engine builds them; the server alone turns them into JSON, with
//! ksqlDB's field names and `@type` tags, so ksqlDB's clients read them unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One statement's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum Entity {
    /// DDL, DML, TERMINATE, SET / UNSET: `CommandStatusEntity`.
    #[serde(rename = "currentStatus", rename_all = "camelCase")]
    CurrentStatus {
        statement_text: String,
        command_status: CommandStatus,
        warnings: Vec<Warning>,
    },
    #[serde(rename = "streams", rename_all = "camelCase")]
    Streams {
        statement_text: String,
        streams: Vec<SourceInfo>,
        warnings: Vec<Warning>,
    },
    #[serde(rename = "tables", rename_all = "camelCase")]
    Tables {
        statement_text: String,
        tables: Vec<SourceInfo>,
        warnings: Vec<Warning>,
    },
    #[serde(rename = "kafka_topics", rename_all = "camelCase")]
    KafkaTopics {
        statement_text: String,
        topics: Vec<TopicInfo>,
        warnings: Vec<Warning>,
    },
    #[serde(rename = "queries", rename_all = "camelCase")]
    Queries {
        statement_text: String,
        queries: Vec<RunningQuery>,
        warnings: Vec<Warning>,
    },
    #[serde(rename = "properties", rename_all = "camelCase")]
    Properties {
        statement_text: String,
        properties: Vec<Property>,
        warnings: Vec<Warning>,
    },
    #[serde(rename = "function_names", rename_all = "camelCase")]
    FunctionNames {
        statement_text: String,
        functions: Vec<FunctionName>,
        warnings: Vec<Warning>,
    },
    /// DESCRIBE.
    #[serde(rename = "sourceDescription", rename_all = "camelCase")]
    SourceDescription {
        statement_text: String,
        source_description: SourceDescription,
        warnings: Vec<Warning>,
    },
    /// EXPLAIN of a query id or of a statement.
    #[serde(rename = "queryDescription", rename_all = "camelCase")]
    QueryDescription {
        statement_text: String,
        query_description: QueryDescription,
        warnings: Vec<Warning>,
    },
    #[serde(rename = "assert_topic", rename_all = "camelCase")]
    AssertTopic {
        statement_text: String,
        topic_name: String,
        exists: bool,
        warnings: Vec<Warning>,
    },
}

impl Entity {
    /// A successful command's status (`CommandStatusEntity`), with the id of the
    /// persistent query it started, if any.
    pub fn status(text: &str, message: &str, query_id: Option<&str>) -> Entity {
        Entity::CurrentStatus {
            statement_text: text.to_string(),
            command_status: CommandStatus {
                status: "SUCCESS".into(),
                message: message.to_string(),
                query_id: query_id.map(str::to_string),
            },
            warnings: Vec::new(),
        }
    }

    /// SHOW QUERIES' queries.
    pub fn queries(&self) -> Option<&[RunningQuery]> {
        match self {
            Entity::Queries { queries, .. } => Some(queries),
            _ => None,
        }
    }

    /// EXPLAIN's description.
    pub fn query_description(&self) -> Option<&QueryDescription> {
        match self {
            Entity::QueryDescription {
                query_description, ..
            } => Some(query_description),
            _ => None,
        }
    }

    /// The command's status, for a [`Entity::CurrentStatus`].
    pub fn command_status(&self) -> Option<&CommandStatus> {
        match self {
            Entity::CurrentStatus { command_status, .. } => Some(command_status),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandStatus {
    pub status: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
}

/// A stream or table as SHOW STREAMS / TABLES lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub topic: String,
    pub key_format: String,
    pub value_format: String,
    pub is_windowed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicInfo {
    pub name: String,
    /// One entry per partition: its replica count.
    pub replica_info: Vec<u32>,
}

/// A persistent query as SHOW QUERIES lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningQuery {
    pub query_string: String,
    pub sinks: Vec<String>,
    pub sink_kafka_topics: Vec<String>,
    pub id: String,
    pub query_type: String,
    pub state: String,
    pub status_count: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    pub name: String,
    pub scope: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionName {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub category: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSchema {
    #[serde(rename = "type")]
    pub sql_type: String,
}

/// A column as DESCRIBE and EXPLAIN show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldInfo {
    pub name: String,
    pub schema: FieldSchema,
    /// DESCRIBE: SYSTEM, KEY or PRIMARY_KEY; absent for value columns.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// EXPLAIN: whether the column is the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceDescription {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub fields: Vec<FieldInfo>,
    pub topic: String,
    pub key_format: String,
    pub value_format: String,
    pub timestamp: String,
    pub window_type: String,
    pub read_queries: Vec<String>,
    pub write_queries: Vec<String>,
    pub extended: bool,
    /// DESCRIBE EXTENDED only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<i32>,
}

/// EXPLAIN's answer: of a running query (id, sources, sinks, state, errors) or of a
/// statement (its plan: sql, fields, result type, steps).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryDescription {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub statement_text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_errors: Option<Vec<QueryError>>,
}

/// ksqlDB's `QueryError`: when, what, and the kind it could tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryError {
    pub timestamp: i64,
    pub error_message: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The JSON ksqlDB's clients read (CommandStatusEntity, SourceDescriptionEntity).
    #[test]
    fn entities_serialize_as_ksqldb_writes_them() {
        let created = Entity::status("CREATE STREAM s ...;", "Stream created", None);
        assert_eq!(
            serde_json::to_value(&created).unwrap(),
            json!({"@type": "currentStatus", "statementText": "CREATE STREAM s ...;",
                   "commandStatus": {"status": "SUCCESS", "message": "Stream created"},
                   "warnings": []})
        );
        let with_query =
            Entity::status("CREATE TABLE t AS ...;", "Created query", Some("CTAS_T_1"));
        assert_eq!(
            serde_json::to_value(&with_query).unwrap()["commandStatus"]["queryId"],
            "CTAS_T_1"
        );
        let topics = Entity::KafkaTopics {
            statement_text: "SHOW TOPICS;".into(),
            topics: vec![TopicInfo {
                name: "t".into(),
                replica_info: vec![1, 1],
            }],
            warnings: vec![],
        };
        let v = serde_json::to_value(&topics).unwrap();
        assert_eq!(v["@type"], "kafka_topics");
        assert_eq!(v["topics"][0]["replicaInfo"], json!([1, 1]));
        let back: Entity = serde_json::from_value(v).unwrap();
        assert_eq!(back, topics);
    }
}
