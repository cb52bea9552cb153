//! Single message transforms and predicates, configured as Kafka Connect does:
//! `transforms=a,b`, `transforms.a.type=...InsertField$Value`, `transforms.a.predicate=p`,
//! `transforms.a.negate=true`, `predicates=p`, `predicates.p.type=...TopicNameMatches`.

mod debezium;
mod fields;
mod routing;

use std::collections::BTreeMap;

use crate::api::{Config, ConnectRecord, Schema, Value};
use crate::error::{Error, Result};

/// Which half of the record a `$Key` / `$Value` transform works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Key,
    Value,
}

/// One transform. `None` drops the record.
pub trait Transform: Send + Sync {
    fn apply(&self, record: ConnectRecord, ctx: &RecordContext) -> Result<Option<ConnectRecord>>;
}

/// Where the record came from, for InsertField's offset/partition fields.
#[derive(Debug, Clone, Default)]
pub struct RecordContext {
    pub kafka_offset: Option<i64>,
}

pub enum Predicate {
    TopicNameMatches(regex::Regex),
    HasHeaderKey(String),
    RecordIsTombstone,
}

impl Predicate {
    fn test(&self, r: &ConnectRecord) -> bool {
        match self {
            Predicate::TopicNameMatches(re) => re.is_match(&r.topic),
            Predicate::HasHeaderKey(k) => r.headers.iter().any(|h| &h.key == k),
            Predicate::RecordIsTombstone => r.value.is_null(),
        }
    }
}

struct Step {
    name: String,
    transform: Box<dyn Transform>,
    predicate: Option<(Predicate, bool)>,
}

/// The configured transforms, in order.
#[derive(Default)]
pub struct Chain {
    steps: Vec<Step>,
}

fn short(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

/// Reads `key` from a transform's properties.
pub(crate) fn required<'a>(props: &'a Config, name: &str, key: &str) -> Result<&'a str> {
    props
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::config(&format!("transforms.{name}.{key}"), "is required"))
}

pub(crate) use crate::api::config_values::list;

fn predicate(name: &str, props: &Config) -> Result<Predicate> {
    let field = format!("predicates.{name}.type");
    let class = props
        .get("type")
        .ok_or_else(|| Error::config(&field, "is required"))?;
    Ok(match short(class) {
        "TopicNameMatches" => {
            let pattern = props.get("pattern").ok_or_else(|| {
                Error::config(&format!("predicates.{name}.pattern"), "is required")
            })?;
            Predicate::TopicNameMatches(
                regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                    Error::config(&format!("predicates.{name}.pattern"), e.to_string())
                })?,
            )
        }
        "HasHeaderKey" => Predicate::HasHeaderKey(
            props
                .get("name")
                .cloned()
                .ok_or_else(|| Error::config(&format!("predicates.{name}.name"), "is required"))?,
        ),
        "RecordIsTombstone" => Predicate::RecordIsTombstone,
        other => {
            return Err(Error::config(
                &field,
                format!("unknown predicate class {other}"),
            ))
        }
    })
}

fn transform(name: &str, props: &Config) -> Result<Box<dyn Transform>> {
    let field = format!("transforms.{name}.type");
    let class = props
        .get("type")
        .ok_or_else(|| Error::config(&field, "is required"))?;
    let (base, side) = match short(class).split_once('$') {
        Some((b, "Key")) => (b, Side::Key),
        Some((b, "Value")) => (b, Side::Value),
        Some((_, other)) => return Err(Error::config(&field, format!("unknown variant ${other}"))),
        None => (short(class), Side::Value),
    };
    fields::build(base, side, name, props)
        .or_else(|| routing::build(base, name, props))
        .or_else(|| debezium::build(base, name, props))
        .unwrap_or_else(|| {
            Err(Error::config(
                &field,
                format!("unknown transformation class {class}"),
            ))
        })
}

impl Chain {
    pub fn from_config(config: &Config) -> Result<Chain> {
        let mut predicates: BTreeMap<String, Config> = BTreeMap::new();
        for p in list(config, "predicates") {
            predicates.insert(
                p.clone(),
                crate::runtime::config::with_prefix(config, &format!("predicates.{p}.")),
            );
        }
        let mut steps = Vec::new();
        for name in list(config, "transforms") {
            let props = crate::runtime::config::with_prefix(config, &format!("transforms.{name}."));
            let transform = transform(&name, &props)?;
            let predicate = match props.get("predicate") {
                None => None,
                Some(p) => {
                    let pprops = predicates.get(p).ok_or_else(|| {
                        Error::config(
                            &format!("transforms.{name}.predicate"),
                            format!("predicate {p} is not in predicates"),
                        )
                    })?;
                    let negate = props.get("negate").is_some_and(|v| v == "true");
                    Some((predicate(p, pprops)?, negate))
                }
            };
            steps.push(Step {
                name,
                transform,
                predicate,
            });
        }
        Ok(Chain { steps })
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn apply(
        &self,
        mut record: ConnectRecord,
        ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>> {
        for step in &self.steps {
            if let Some((p, negate)) = &step.predicate {
                if p.test(&record) == *negate {
                    continue;
                }
            }
            match step
                .transform
                .apply(record, ctx)
                .map_err(|e| Error::Transform(format!("{}: {e}", step.name)))?
            {
                Some(r) => record = r,
                None => return Ok(None),
            }
        }
        Ok(Some(record))
    }
}

/// The (schema, value) a `$Key` or `$Value` transform works on.
pub(crate) fn side(r: &mut ConnectRecord, side: Side) -> (&mut Option<Schema>, &mut Value) {
    match side {
        Side::Key => (&mut r.key_schema, &mut r.key),
        Side::Value => (&mut r.value_schema, &mut r.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Field, SchemaType};

    fn chain(pairs: &[(&str, &str)]) -> Chain {
        let c: Config = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Chain::from_config(&c).unwrap()
    }

    fn person() -> ConnectRecord {
        let schema = Schema::structure(vec![
            Field {
                name: "id".into(),
                schema: Schema::new(SchemaType::Int32),
            },
            Field {
                name: "name".into(),
                schema: Schema::string(),
            },
            Field {
                name: "address".into(),
                schema: Schema::structure(vec![Field {
                    name: "city".into(),
                    schema: Schema::string(),
                }]),
            },
        ]);
        let value = Value::Struct(vec![
            ("id".into(), Value::Int32(7)),
            ("name".into(), Value::String("Ada".into())),
            (
                "address".into(),
                Value::Struct(vec![("city".into(), Value::String("Paris".into()))]),
            ),
        ]);
        ConnectRecord {
            timestamp: Some(1_709_214_307_123),
            ..ConnectRecord::new("people", Some(schema), value)
        }
    }

    fn run(c: &Chain, r: ConnectRecord) -> Option<ConnectRecord> {
        c.apply(
            r,
            &RecordContext {
                kafka_offset: Some(42),
            },
        )
        .unwrap()
    }

    #[test]
    fn replace_mask_cast_and_value_to_key() {
        let c = chain(&[
            ("transforms", "rename,mask,cast,key"),
            (
                "transforms.rename.type",
                "org.apache.kafka.connect.transforms.ReplaceField$Value",
            ),
            ("transforms.rename.renames", "name:full_name"),
            ("transforms.rename.exclude", "address"),
            (
                "transforms.mask.type",
                "org.apache.kafka.connect.transforms.MaskField$Value",
            ),
            ("transforms.mask.fields", "full_name"),
            (
                "transforms.cast.type",
                "org.apache.kafka.connect.transforms.Cast$Value",
            ),
            ("transforms.cast.spec", "id:string"),
            (
                "transforms.key.type",
                "org.apache.kafka.connect.transforms.ValueToKey",
            ),
            ("transforms.key.fields", "id"),
        ]);
        let r = run(&c, person()).unwrap();
        assert_eq!(
            r.value,
            Value::Struct(vec![
                ("id".into(), Value::String("7".into())),
                ("full_name".into(), Value::String(String::new()))
            ])
        );
        assert_eq!(
            r.value_schema.unwrap().field("id").unwrap().schema.ty,
            SchemaType::String
        );
        assert_eq!(
            r.key,
            Value::Struct(vec![("id".into(), Value::String("7".into()))])
        );
    }

    #[test]
    fn flatten_extract_insert_and_timestamps() {
        let c = chain(&[
            ("transforms", "flat,ins,ts"),
            (
                "transforms.flat.type",
                "org.apache.kafka.connect.transforms.Flatten$Value",
            ),
            ("transforms.flat.delimiter", "_"),
            (
                "transforms.ins.type",
                "org.apache.kafka.connect.transforms.InsertField$Value",
            ),
            ("transforms.ins.offset.field", "off"),
            ("transforms.ins.topic.field", "topic"),
            (
                "transforms.ts.type",
                "org.apache.kafka.connect.transforms.TimestampRouter",
            ),
            ("transforms.ts.topic.format", "${topic}-${timestamp}"),
            ("transforms.ts.timestamp.format", "yyyy-MM-dd"),
        ]);
        let r = run(&c, person()).unwrap();
        assert_eq!(
            r.value.get("address_city"),
            Some(&Value::String("Paris".into()))
        );
        assert_eq!(r.value.get("off"), Some(&Value::Int64(42)));
        assert_eq!(r.value.get("topic"), Some(&Value::String("people".into())));
        assert_eq!(r.topic, "people-2024-02-29");
        let extract = chain(&[
            ("transforms", "x"),
            (
                "transforms.x.type",
                "org.apache.kafka.connect.transforms.ExtractField$Value",
            ),
            ("transforms.x.field", "name"),
        ]);
        let r = run(&extract, person()).unwrap();
        assert_eq!(
            (r.value, r.value_schema.map(|s| s.ty)),
            (Value::String("Ada".into()), Some(SchemaType::String))
        );
    }

    #[test]
    fn headers_and_tombstone_predicate() {
        let c = chain(&[
            ("transforms", "drop,from,del"),
            (
                "transforms.drop.type",
                "org.apache.kafka.connect.transforms.Filter",
            ),
            ("transforms.drop.predicate", "tomb"),
            (
                "transforms.from.type",
                "org.apache.kafka.connect.transforms.HeaderFrom$Value",
            ),
            ("transforms.from.fields", "name"),
            ("transforms.from.headers", "who"),
            ("transforms.from.operation", "move"),
            (
                "transforms.del.type",
                "org.apache.kafka.connect.transforms.DropHeaders",
            ),
            ("transforms.del.headers", "noise"),
            ("predicates", "tomb"),
            (
                "predicates.tomb.type",
                "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
            ),
        ]);
        let mut r = person();
        r.headers.push(crate::api::Header {
            key: "noise".into(),
            schema: None,
            value: Value::Null,
        });
        let out = run(&c, r).unwrap();
        assert_eq!(out.headers.len(), 1);
        assert_eq!(
            (out.headers[0].key.as_str(), &out.headers[0].value),
            ("who", &Value::String("Ada".into()))
        );
        assert!(out.value.get("name").is_none(), "moved, not copied");
        let tombstone = ConnectRecord::new("people", None, Value::Null);
        assert!(run(&c, tombstone).is_none());
    }

    #[test]
    fn bad_configs_name_the_field() {
        let c: Config = [
            ("transforms", "a"),
            (
                "transforms.a.type",
                "org.apache.kafka.connect.transforms.Nope",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(Chain::from_config(&c)
            .err()
            .unwrap()
            .to_string()
            .contains("transforms.a.type"));
        let c: Config = [
            ("transforms", "a"),
            (
                "transforms.a.type",
                "org.apache.kafka.connect.transforms.RegexRouter",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(Chain::from_config(&c)
            .err()
            .unwrap()
            .to_string()
            .contains("transforms.a.regex"));
    }
}
