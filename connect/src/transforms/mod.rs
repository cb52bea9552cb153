//! Single message transforms and predicates, configured as Kafka Connect does:
//! `transforms=a,b`, `transforms.a.type=...InsertField$Value`, `transforms.a.predicate=p`,
//! `transforms.a.negate=true`, `predicates=p`, `predicates.p.type=...TopicNameMatches`.

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

pub(crate) fn list(props: &Config, key: &str) -> Vec<String> {
    props
        .get(key)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

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
