//! Single message transforms and predicates, configured as Kafka Connect does:
//! `transforms=a,b`, `transforms.a.type=...InsertField$Value`, `transforms.a.predicate=p`,
//! `transforms.a.negate=true`, `predicates=p`, `predicates.p.type=...TopicNameMatches`.

mod debezium;
mod fields;
mod routing;

use std::collections::BTreeMap;

use crate::api::config_def::{key, ConfigDef, Type, Validator, Values};
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

/// The transformation classes Runnel has, with Kafka's (and Debezium's) names.
pub const TRANSFORM_CLASSES: &[&str] = &[
    "org.apache.kafka.connect.transforms.Cast$Key",
    "org.apache.kafka.connect.transforms.Cast$Value",
    "org.apache.kafka.connect.transforms.DropHeaders",
    "org.apache.kafka.connect.transforms.ExtractField$Key",
    "org.apache.kafka.connect.transforms.ExtractField$Value",
    "org.apache.kafka.connect.transforms.Filter",
    "org.apache.kafka.connect.transforms.Flatten$Key",
    "org.apache.kafka.connect.transforms.Flatten$Value",
    "org.apache.kafka.connect.transforms.HeaderFrom$Key",
    "org.apache.kafka.connect.transforms.HeaderFrom$Value",
    "org.apache.kafka.connect.transforms.HoistField$Key",
    "org.apache.kafka.connect.transforms.HoistField$Value",
    "org.apache.kafka.connect.transforms.InsertField$Key",
    "org.apache.kafka.connect.transforms.InsertField$Value",
    "org.apache.kafka.connect.transforms.InsertHeader",
    "org.apache.kafka.connect.transforms.MaskField$Key",
    "org.apache.kafka.connect.transforms.MaskField$Value",
    "org.apache.kafka.connect.transforms.RegexRouter",
    "org.apache.kafka.connect.transforms.ReplaceField$Key",
    "org.apache.kafka.connect.transforms.ReplaceField$Value",
    "org.apache.kafka.connect.transforms.TimestampConverter$Value",
    "org.apache.kafka.connect.transforms.TimestampRouter",
    "org.apache.kafka.connect.transforms.ValueToKey",
    "io.debezium.transforms.ExtractNewRecordState",
];

/// The predicate classes Runnel has.
pub const PREDICATE_CLASSES: &[&str] = &[
    "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
    "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
    "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
];

/// The keys every transform step has besides its own (Kafka's `ConnectorConfig.enrich`).
pub fn step_keys() -> ConfigDef {
    ConfigDef::new().define([
        key("type", Type::Class, "Class for the transformation.")
            .required()
            .high(),
        key(
            "predicate",
            Type::String,
            "The alias of a predicate used to determine whether to apply this transformation.",
        ),
        key(
            "negate",
            Type::Boolean,
            "Whether the predicate's outcome is negated.",
        )
        .default("false"),
    ])
}

/// The key every predicate has besides its own.
pub fn predicate_keys() -> ConfigDef {
    ConfigDef::new().define([key("type", Type::Class, "Class for the predicate.")
        .required()
        .high()])
}

/// A transform class's base name (no package, no `$Key`/`$Value`) and side.
fn transform_class(class: &str) -> std::result::Result<(&str, Side), String> {
    match short(class).split_once('$') {
        Some((b, "Key")) => Ok((b, Side::Key)),
        Some((b, "Value")) => Ok((b, Side::Value)),
        Some((_, other)) => Err(format!("unknown variant ${other}")),
        None => Ok((short(class), Side::Value)),
    }
}

/// The own keys of a transformation class; `None` for a class Runnel does not have.
pub fn transform_definition(class: &str) -> Option<ConfigDef> {
    let (base, _) = transform_class(class).ok()?;
    fields::definition(base)
        .or_else(|| routing::definition(base))
        .or_else(|| debezium::definition(base))
}

/// The own keys of a predicate class; `None` for a class Runnel does not have.
pub fn predicate_definition(class: &str) -> Option<ConfigDef> {
    let keys = match short(class) {
        "TopicNameMatches" => vec![key(
            "pattern",
            Type::String,
            "A Java regular expression that the whole topic name must match.",
        )
        .required()
        .validator(Validator::NonEmpty)
        .high()],
        "HasHeaderKey" => vec![key("name", Type::String, "The header name.")
            .required()
            .high()],
        "RecordIsTombstone" => vec![],
        _ => return None,
    };
    Some(ConfigDef::new().define(keys))
}

/// The `type` of a transform or predicate (the keys under `prefix`), read with the
/// `shared` keys, errors naming keys by their full name.
fn class_of(prefix: &str, shared: &ConfigDef, props: &Config) -> Result<String> {
    let values = shared.parse(props).map_err(|e| e.under(prefix))?;
    Ok(values.string("type").unwrap_or_default().to_string())
}

/// Parses `props` (the keys under `prefix`) with `own` and the shared `shared` keys,
/// naming keys in errors with their full name.
fn parse_under(prefix: &str, shared: ConfigDef, own: ConfigDef, props: &Config) -> Result<Values> {
    shared.with(own).parse(props).map_err(|e| e.under(prefix))
}

fn predicate(name: &str, props: &Config) -> Result<Predicate> {
    let prefix = format!("predicates.{name}.");
    let class = class_of(&prefix, &predicate_keys(), props)?;
    let own = predicate_definition(&class).ok_or_else(|| {
        Error::config(
            &format!("{prefix}type"),
            format!("unknown predicate class {class}"),
        )
    })?;
    let v = parse_under(&prefix, predicate_keys(), own, props)?;
    let text = |k: &str| v.string(k).unwrap_or_default().to_string();
    Ok(match short(&class) {
        "TopicNameMatches" => Predicate::TopicNameMatches(
            regex::Regex::new(&format!("^(?:{})$", text("pattern")))
                .map_err(|e| Error::config(&format!("{prefix}pattern"), e.to_string()))?,
        ),
        "HasHeaderKey" => Predicate::HasHeaderKey(text("name")),
        _ => Predicate::RecordIsTombstone,
    })
}

/// One transform from the keys under `transforms.<name>.`.
#[cfg(test)]
pub(crate) fn transform(name: &str, props: &Config) -> Result<Box<dyn Transform>> {
    step(name, props).map(|(t, _)| t)
}

/// One transform step from the keys under `transforms.<name>.`, and its values
/// (`predicate`, `negate` included).
fn step(name: &str, props: &Config) -> Result<(Box<dyn Transform>, Values)> {
    let prefix = format!("transforms.{name}.");
    let field = format!("{prefix}type");
    let class = class_of(&prefix, &step_keys(), props)?;
    let (base, side) = transform_class(&class).map_err(|e| Error::config(&field, e))?;
    let own = transform_definition(&class)
        .ok_or_else(|| Error::config(&field, format!("unknown transformation class {class}")))?;
    let v = parse_under(&prefix, step_keys(), own, props)?;
    let built = fields::build(base, side, &v)
        .or_else(|| routing::build(base, &v))
        .or_else(|| debezium::build(base, &v))
        .unwrap_or_else(|| {
            Err(Error::config(
                &field,
                format!("unknown transformation class {class}"),
            ))
        })
        .map_err(|e| e.under(&prefix))?;
    Ok((built, v))
}

impl Chain {
    pub fn from_config(config: &Config) -> Result<Chain> {
        let aliases = ConfigDef::new()
            .define([
                key("transforms", Type::List, "").default(""),
                key("predicates", Type::List, "").default(""),
            ])
            .parse(config)?;
        let mut predicates: BTreeMap<String, Config> = BTreeMap::new();
        for p in aliases.list("predicates") {
            predicates.insert(
                p.clone(),
                crate::runtime::config::with_prefix(config, &format!("predicates.{p}.")),
            );
        }
        let mut steps = Vec::new();
        for name in aliases.list("transforms") {
            let props = crate::runtime::config::with_prefix(config, &format!("transforms.{name}."));
            let (transform, values) = step(name, &props)?;
            let predicate = match values.string("predicate") {
                None => None,
                Some(p) => {
                    let pprops = predicates.get(p).ok_or_else(|| {
                        Error::config(
                            &format!("transforms.{name}.predicate"),
                            format!("predicate {p} is not in predicates"),
                        )
                    })?;
                    Some((predicate(p, pprops)?, values.boolean("negate")))
                }
            };
            steps.push(Step {
                name: name.clone(),
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
