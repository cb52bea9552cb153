//! Debezium's ExtractNewRecordState (`io.debezium.transforms.ExtractNewRecordState`):
//! turns a change event envelope (`before`, `after`, `op`, `source`, ...) into the row
//! state, so a CDC topic feeds a JDBC-style sink. `drop.tombstones` (default true) drops
//! the tombstones that follow deletes; `delete.handling.mode` drop (default) | rewrite
//! (the old row with `__deleted: "true"`, others get `"false"`) | none (a delete becomes
//! a null value). Records that are not envelopes pass unchanged.

use super::{RecordContext, Transform};
use crate::api::config_def::{key, ConfigDef, Type, Validator, Values};
use crate::api::{ConnectRecord, Field, Schema, Value};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeleteHandling {
    Drop,
    Rewrite,
    None,
}

pub(super) struct ExtractNewRecordState {
    drop_tombstones: bool,
    deletes: DeleteHandling,
}

/// Debezium's keys of ExtractNewRecordState that Runnel reads.
pub(super) fn definition(base: &str) -> Option<ConfigDef> {
    (base == "ExtractNewRecordState").then(|| {
        ConfigDef::new().define([
            key(
                "drop.tombstones",
                Type::Boolean,
                "Whether to drop the tombstones that follow delete events.",
            )
            .default("true"),
            key(
                "delete.handling.mode",
                Type::String,
                "What a delete event becomes: drop (nothing), rewrite (the old row with __deleted=true) or none (a null value).",
            )
            .default("drop")
            .validator(Validator::OneOf(&["drop", "rewrite", "none"])),
        ])
    })
}

pub(super) fn build(base: &str, v: &Values) -> Option<Result<Box<dyn Transform>>> {
    if base != "ExtractNewRecordState" {
        return None;
    }
    let deletes = match v.lowercase("delete.handling.mode").as_deref() {
        Some("rewrite") => DeleteHandling::Rewrite,
        Some("none") => DeleteHandling::None,
        _ => DeleteHandling::Drop,
    };
    Some(Ok(Box::new(ExtractNewRecordState {
        drop_tombstones: v.boolean("drop.tombstones"),
        deletes,
    })))
}

fn with_deleted(schema: Option<Schema>, value: Value, deleted: bool) -> (Option<Schema>, Value) {
    let flag = Value::String(deleted.to_string());
    let value = match value {
        Value::Struct(mut fields) => {
            fields.push(("__deleted".into(), flag));
            Value::Struct(fields)
        }
        other => other,
    };
    let schema = schema.map(|mut s| {
        std::sync::Arc::make_mut(&mut s.fields).push(Field {
            name: "__deleted".into(),
            schema: Schema::optional_string(),
        });
        s
    });
    (schema, value)
}

impl Transform for ExtractNewRecordState {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        if r.value.is_null() {
            return Ok((!self.drop_tombstones).then_some(r));
        }
        let Some(delete) = r
            .value
            .get("op")
            .and_then(Value::as_str)
            .map(|op| op == "d")
        else {
            return Ok(Some(r));
        };
        // The row is taken out of the envelope, not copied: the rest is dropped.
        let part = |name: &str, r: &mut ConnectRecord| -> (Option<Schema>, Value) {
            let schema = r
                .value_schema
                .as_ref()
                .and_then(|s| s.field(name))
                .map(|f| f.schema.clone());
            (schema, take_field(&mut r.value, name))
        };
        let (schema, value) = if delete {
            match self.deletes {
                DeleteHandling::Drop => return Ok(None),
                DeleteHandling::None => (None, Value::Null),
                DeleteHandling::Rewrite => {
                    let (s, v) = part("before", &mut r);
                    with_deleted(s, v, true)
                }
            }
        } else {
            let (s, v) = part("after", &mut r);
            if self.deletes == DeleteHandling::Rewrite {
                with_deleted(s, v, false)
            } else {
                (s, v)
            }
        };
        r.value_schema = schema;
        r.value = value;
        Ok(Some(r))
    }
}

/// Moves a struct's (or string-keyed map's) field out, leaving null; null if absent.
fn take_field(v: &mut Value, name: &str) -> Value {
    let slot = match v {
        Value::Struct(fields) => fields.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v),
        Value::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| matches!(k, Value::String(s) if s == name))
            .map(|(_, v)| v),
        _ => None,
    };
    slot.map(|v| std::mem::replace(v, Value::Null))
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Config, SchemaType};

    fn envelope(op: &str, before: Option<i32>, after: Option<i32>) -> ConnectRecord {
        let row = Schema::structure(vec![Field {
            name: "id".into(),
            schema: Schema::new(SchemaType::Int32),
        }])
        .optional();
        let schema = Schema::structure(vec![
            Field {
                name: "before".into(),
                schema: row.clone(),
            },
            Field {
                name: "after".into(),
                schema: row,
            },
            Field {
                name: "op".into(),
                schema: Schema::string(),
            },
        ]);
        let v = |x: Option<i32>| {
            x.map_or(Value::Null, |i| {
                Value::Struct(vec![("id".into(), Value::Int32(i))])
            })
        };
        let value = Value::Struct(vec![
            ("before".into(), v(before)),
            ("after".into(), v(after)),
            ("op".into(), Value::String(op.into())),
        ]);
        ConnectRecord::new("db.public.t", Some(schema), value)
    }

    fn with_type(mut props: Config) -> Config {
        props.insert(
            "type".into(),
            "io.debezium.transforms.ExtractNewRecordState".into(),
        );
        props
    }

    fn build_with(pairs: &[(&str, &str)]) -> Box<dyn Transform> {
        let props: Config = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        super::super::transform("unwrap", &with_type(props)).unwrap()
    }

    #[test]
    fn envelopes_become_rows() {
        let ctx = RecordContext { kafka_offset: None };
        let t = build_with(&[]);
        let r = t
            .apply(envelope("u", Some(1), Some(2)), &ctx)
            .unwrap()
            .unwrap();
        assert_eq!(r.value, Value::Struct(vec![("id".into(), Value::Int32(2))]));
        assert_eq!(r.value_schema.unwrap().fields.len(), 1);
        assert!(t
            .apply(envelope("d", Some(1), None), &ctx)
            .unwrap()
            .is_none());
        assert!(t
            .apply(ConnectRecord::new("t", None, Value::Null), &ctx)
            .unwrap()
            .is_none());
        let rw = build_with(&[
            ("delete.handling.mode", "rewrite"),
            ("drop.tombstones", "false"),
        ]);
        let d = rw
            .apply(envelope("d", Some(1), None), &ctx)
            .unwrap()
            .unwrap();
        assert_eq!(
            d.value.get("__deleted"),
            Some(&Value::String("true".into()))
        );
        assert_eq!(d.value.get("id"), Some(&Value::Int32(1)));
        assert!(rw
            .apply(ConnectRecord::new("t", None, Value::Null), &ctx)
            .unwrap()
            .is_some());
        let plain = ConnectRecord::new("t", None, Value::Int32(5));
        assert_eq!(t.apply(plain.clone(), &ctx).unwrap(), Some(plain));
        assert!(super::super::transform(
            "u",
            &with_type(
                [("delete.handling.mode".to_string(), "bogus".to_string())]
                    .into_iter()
                    .collect()
            )
        )
        .is_err());
    }
}
