//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics (and a read-only
//! view of the broker's own config).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::*;

use super::sb;
use crate::broker::BrokerState;
use crate::config::TopicConfig;
use crate::error::{Error, ErrorCode};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

fn entry(name: &str, value: &str, source: i8, read_only: bool) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = sb(name);
    c.value = Some(sb(value));
    c.config_source = source;
    c.read_only = read_only;
    c
}

pub(crate) fn describe_configs(
    state: &BrokerState,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut resp = DescribeConfigsResponse::default();
    for res in req.resources {
        let mut r = DescribeConfigsResult::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        let wanted = |name: &str| {
            res.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
        };
        match res.resource_type {
            TOPIC => match state.topics.get(res.resource_name.as_str()) {
                Some(topic) => {
                    r.configs = TopicConfig::describe(&state.config.properties, &topic.overrides())
                        .into_iter()
                        .filter(|e| wanted(&e.name))
                        .map(|e| entry(&e.name, &e.value, e.source as i8, false))
                        .collect();
                }
                None => {
                    r.error_code = ErrorCode::UnknownTopicOrPartition.code();
                    r.error_message =
                        Some(sb(format!("unknown topic {}", res.resource_name.as_str())));
                }
            },
            BROKER => {
                r.configs = state
                    .config
                    .properties
                    .iter()
                    .filter(|(k, _)| wanted(k))
                    .map(|(k, v)| entry(k, v, 4, true))
                    .collect();
            }
            other => {
                r.error_code = ErrorCode::InvalidRequest.code();
                r.error_message = Some(sb(format!("resource type {other} is not supported")));
            }
        }
        resp.results.push(r);
    }
    resp
}

/// Validates and (unless `validate_only`) applies new overrides to a topic resource.
fn apply(
    state: &BrokerState,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    edit: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), Error>,
) -> Result<(), Error> {
    if resource_type != TOPIC {
        return Err(Error::Kafka(
            ErrorCode::InvalidRequest,
            "only topic configs can be altered; broker configs are static (server.properties)"
                .into(),
        ));
    }
    let topic = state
        .topics
        .get(name)
        .ok_or_else(|| Error::UnknownTopicOrPartition(name.to_string()))?;
    let mut overrides = topic.overrides();
    edit(&mut overrides)?;
    TopicConfig::validate_overrides(&overrides)?;
    if validate_only {
        return Ok(());
    }
    state.topics.set_overrides(name, overrides)
}

pub(crate) fn alter_configs(state: &BrokerState, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
    for res in req.resources {
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        let outcome = apply(
            state,
            res.resource_type,
            res.resource_name.as_str(),
            req.validate_only,
            |o| {
                // AlterConfigs replaces the whole set of overrides.
                o.clear();
                for c in &res.configs {
                    if let Some(v) = &c.value {
                        o.insert(c.name.to_string(), v.to_string());
                    }
                }
                Ok(())
            },
        );
        if let Err(e) = outcome {
            r.error_code = e.code().code();
            r.error_message = Some(sb(e.to_string()));
        }
        resp.responses.push(r);
    }
    resp
}

pub(crate) fn incremental_alter_configs(
    state: &BrokerState,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for res in req.resources {
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        let outcome = apply(
            state,
            res.resource_type,
            res.resource_name.as_str(),
            req.validate_only,
            |o| {
                for c in &res.configs {
                    let name = c.name.to_string();
                    let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
                    let list = |o: &BTreeMap<String, String>| -> Vec<String> {
                        o.get(&name)
                            .map(|v| {
                                v.split(',')
                                    .map(|s| s.trim().to_string())
                                    .filter(|s| !s.is_empty())
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    match c.config_operation {
                        0 => {
                            o.insert(name, value);
                        }
                        1 => {
                            o.remove(&name);
                        }
                        2 => {
                            let mut items = list(o);
                            for v in value.split(',').map(str::trim) {
                                if !items.iter().any(|i| i == v) {
                                    items.push(v.to_string());
                                }
                            }
                            o.insert(name, items.join(","));
                        }
                        3 => {
                            let remove: Vec<&str> = value.split(',').map(str::trim).collect();
                            let items: Vec<String> = list(o)
                                .into_iter()
                                .filter(|i| !remove.contains(&i.as_str()))
                                .collect();
                            o.insert(name, items.join(","));
                        }
                        op => {
                            return Err(Error::Kafka(
                                ErrorCode::InvalidRequest,
                                format!("unknown config operation {op}"),
                            ));
                        }
                    }
                }
                Ok(())
            },
        );
        if let Err(e) = outcome {
            r.error_code = e.code().code();
            r.error_message = Some(sb(e.to_string()));
        }
        resp.responses.push(r);
    }
    resp
}
