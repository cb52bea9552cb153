//! `/connector-plugins`: the plugins this worker has (connectors, and with
//! `connectorsOnly=false` transformations, predicates and converters, KIP-769), each
//! plugin's config definitions, and config validation in Kafka Connect's response
//! shape (`ConfigInfos`: name, error_count, groups, configs of definition + value).

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value as Json_};

use super::{body, to_config, ApiError, ApiResult, W};
use crate::api::config_def::{groups, key, ConfigDef, ConfigKey, Type};
use crate::api::Config;
use crate::runtime::{config, connector_config};
use crate::{connectors, converters, transforms};

/// A definition as Kafka's `ConfigKeyInfo` serializes it.
fn definition(name: &str, k: &ConfigKey) -> Json_ {
    json!({
        "name": name,
        "type": k.ty.name(),
        "required": k.default == crate::api::config_def::Default::Required,
        "default_value": k.default_text(),
        "importance": k.importance.name(),
        "documentation": k.documentation,
        "group": (!k.group.is_empty()).then(|| k.group.to_string()),
        "width": "NONE",
        "display_name": name,
        "dependents": [],
        "order": k.order,
    })
}

pub(super) async fn list(Query(q): Query<BTreeMap<String, String>>) -> ApiResult<Json<Json_>> {
    let connectors_only = match q.get("connectorsOnly").map(String::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("connectorsOnly must be true or false, not {other}"),
            ))
        }
    };
    let version = connectors::VERSION;
    let mut list: Vec<Json_> = connectors::plugins()
        .iter()
        .map(|p| json!({"class": p.class, "type": p.kind, "version": version}))
        .collect();
    if !connectors_only {
        let others = [
            ("transformation", transforms::TRANSFORM_CLASSES),
            ("predicate", transforms::PREDICATE_CLASSES),
            ("converter", converters::CONVERTER_CLASSES),
        ];
        for (kind, classes) in others {
            list.extend(
                classes
                    .iter()
                    .map(|c| json!({"class": c, "type": kind, "version": version})),
            );
        }
    }
    Ok(Json(json!(list)))
}

/// The own keys of any plugin, by class name or alias.
fn plugin_definition(plugin: &str) -> Option<ConfigDef> {
    if let Ok(p) = connectors::find(plugin) {
        return Some(p.instantiate().config_def());
    }
    let full = |classes: &[&str]| {
        classes
            .iter()
            .any(|c| *c == plugin || c.rsplit('.').next() == Some(plugin))
    };
    if full(transforms::TRANSFORM_CLASSES) {
        return transforms::transform_definition(plugin);
    }
    if full(transforms::PREDICATE_CLASSES) {
        return transforms::predicate_definition(plugin);
    }
    if full(converters::CONVERTER_CLASSES) {
        return converters::definition(plugin);
    }
    None
}

pub(super) async fn config(Path(plugin): Path<String>) -> ApiResult<Json<Json_>> {
    let def = plugin_definition(&plugin)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("Unknown plugin {plugin}.")))?;
    Ok(Json(json!(def
        .keys()
        .iter()
        .map(|k| definition(k.name, k))
        .collect::<Vec<_>>())))
}

pub(super) async fn validate(
    State(w): W,
    Path(plugin): Path<String>,
    payload: Result<Json<Json_>, JsonRejection>,
) -> ApiResult<Json<Json_>> {
    let mut config = to_config(&body(payload)?)?;
    let class = config
        .get("connector.class")
        .cloned()
        .unwrap_or_else(|| plugin.clone());
    let found =
        connectors::find(&class).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    if found.class != plugin && !found.aliases.contains(&plugin.as_str()) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("Included connector type {class} does not match request type {plugin}"),
        ));
    }
    config
        .entry("connector.class".into())
        .or_insert(class.clone());
    let errors = config::validate(&config, w.exactly_once_source());
    Ok(Json(infos(
        found.class,
        &config,
        connector_config::enriched(&config, &found.instantiate()),
        &errors,
    )))
}

/// Kafka's `ConfigInfos`: every defined key, then keys the config sets that no
/// definition has, then fields only an error names, each with its value and errors.
fn infos(
    class: &str,
    config: &Config,
    mut keys: Vec<(String, ConfigKey)>,
    errors: &[(String, String)],
) -> Json_ {
    let mut by_field: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (f, m) in errors {
        by_field.entry(f).or_default().push(m);
    }
    let defined: BTreeSet<String> = keys.iter().map(|(n, _)| n.clone()).collect();
    let undefined = config
        .keys()
        .chain(errors.iter().map(|(f, _)| f))
        .filter(|n| !defined.contains(*n))
        .cloned()
        .collect::<BTreeSet<String>>();
    keys.extend(
        undefined
            .into_iter()
            .map(|n| (n, key("", Type::String, ""))),
    );
    let configs: Vec<Json_> = keys
        .iter()
        .map(|(name, k)| {
            let value = match config.get(name) {
                Some(_) if k.ty == Type::Password => Some("[hidden]".to_string()),
                Some(v) => Some(v.clone()),
                None => k.default_text(),
            };
            json!({
                "definition": definition(name, k),
                "value": {
                    "name": name,
                    "value": value,
                    "recommended_values": [],
                    "errors": by_field.get(name.as_str()).cloned().unwrap_or_default(),
                    "visible": true,
                },
            })
        })
        .collect();
    json!({
        "name": class,
        "error_count": errors.len(),
        "groups": groups(keys.iter().map(|(_, k)| k)),
        "configs": configs,
    })
}
