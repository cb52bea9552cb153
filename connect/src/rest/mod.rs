//! The REST API, with Kafka Connect's paths, JSON shapes and status codes, so existing
//! tooling works. Errors are `{"error_code": ..., "message": ...}`.

mod plugins;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json_};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{Config, JsonMap};
use crate::error::Error;
use crate::runtime::worker::TaskView;
use crate::runtime::{Herder, WorkerConfig};

type W = State<Arc<dyn Herder>>;

pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({"error_code": self.0.as_u16(), "message": self.1})),
        )
            .into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::AlreadyExists(_) => StatusCode::CONFLICT,
            Error::Config { .. }
            | Error::MissingConfig(_)
            | Error::InvalidValue { .. }
            | Error::UnknownClass(_)
            | Error::Conversion(_)
            | Error::Transform(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match e {
            Error::NotFound(n) => format!("Connector {n} not found"),
            Error::AlreadyExists(n) => format!("Connector {n} already exists"),
            Error::Config { field, reason } if field == "config" || field == "state" => reason,
            other => other.to_string(),
        };
        ApiError(code, message)
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn body<T>(payload: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    payload.map(|Json(v)| v).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("malformed JSON request body: {}", e.body_text()),
        )
    })
}

/// Connector configs are string maps; numbers and booleans are accepted as text.
fn to_config(v: &Json_) -> ApiResult<Config> {
    let obj = v.as_object().ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "the connector config must be a JSON object".into(),
        )
    })?;
    obj.iter()
        .map(|(k, v)| match v {
            Json_::String(s) => Ok((k.clone(), s.clone())),
            Json_::Number(_) | Json_::Bool(_) => Ok((k.clone(), v.to_string())),
            _ => Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("config value for {k} must be a string"),
            )),
        })
        .collect()
}

async fn info(w: &dyn Herder, name: &str) -> ApiResult<Json_> {
    let config = w.config_of(name).await?;
    let (kind, tasks) = w.tasks_of(name).await?;
    let tasks: Vec<Json_> = (0..tasks.len())
        .map(|i| json!({"connector": name, "task": i}))
        .collect();
    Ok(json!({"name": name, "config": config, "tasks": tasks, "type": kind}))
}

fn task_json(t: &TaskView) -> Json_ {
    let mut j = json!({"id": t.id, "state": t.state, "worker_id": t.worker_id});
    if let Some(tr) = &t.trace {
        j["trace"] = json!(tr);
    }
    j
}

async fn status_json(w: &dyn Herder, name: &str) -> ApiResult<Json_> {
    let s = w.status(name).await?;
    let mut connector = json!({"state": s.state, "worker_id": s.worker_id});
    if let Some(t) = &s.trace {
        connector["trace"] = json!(t);
    }
    let tasks: Vec<Json_> = s.tasks.iter().map(task_json).collect();
    Ok(json!({"name": s.name, "connector": connector, "tasks": tasks, "type": s.kind}))
}

async fn root(State(w): W) -> Json<Json_> {
    Json(
        json!({"version": env!("CARGO_PKG_VERSION"), "commit": "runnel", "kafka_cluster_id": w.config().bootstrap_servers}),
    )
}

async fn list(State(w): W, RawQuery(q): RawQuery) -> ApiResult<Json<Json_>> {
    let names = w.names().await;
    // `expand` may repeat: ?expand=status&expand=info
    let expand: Vec<String> = q
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.strip_prefix("expand="))
        .map(String::from)
        .collect();
    if expand.is_empty() {
        return Ok(Json(json!(names)));
    }
    let expand = expand.join(",");
    let mut out = Map::new();
    for n in names {
        let mut entry = Map::new();
        if expand.contains("status") {
            entry.insert("status".into(), status_json(w.as_ref(), &n).await?);
        }
        if expand.contains("info") {
            entry.insert("info".into(), info(w.as_ref(), &n).await?);
        }
        out.insert(n, Json_::Object(entry));
    }
    Ok(Json(Json_::Object(out)))
}

async fn create(
    State(w): W,
    payload: Result<Json<Json_>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Json_>)> {
    let req = body(payload)?;
    let config = to_config(req.get("config").ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "the request needs a \"config\" object".into(),
        )
    })?)?;
    let name = req
        .get("name")
        .and_then(Json_::as_str)
        .or_else(|| config.get("name").map(String::as_str))
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "the request needs a connector \"name\"".into(),
            )
        })?;
    w.create(&name, config).await?;
    Ok((StatusCode::CREATED, Json(info(w.as_ref(), &name).await?)))
}

async fn get_connector(State(w): W, Path(name): Path<String>) -> ApiResult<Json<Json_>> {
    Ok(Json(info(w.as_ref(), &name).await?))
}

async fn delete_connector(State(w): W, Path(name): Path<String>) -> ApiResult<StatusCode> {
    w.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_config(State(w): W, Path(name): Path<String>) -> ApiResult<Json<Config>> {
    Ok(Json(w.config_of(&name).await?))
}

async fn put_config(
    State(w): W,
    Path(name): Path<String>,
    payload: Result<Json<Json_>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Json_>)> {
    let config = to_config(&body(payload)?)?;
    if let Some(n) = config.get("name") {
        if n != &name {
            return Err(ApiError(StatusCode::BAD_REQUEST, format!("Connector name configuration ({n}) doesn't match connector name in the URL ({name})")));
        }
    }
    let created = w.put_config(&name, config).await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(info(w.as_ref(), &name).await?)))
}

async fn patch_config(
    State(w): W,
    Path(name): Path<String>,
    payload: Result<Json<Json_>, JsonRejection>,
) -> ApiResult<Json<Json_>> {
    let patch = body(payload)?;
    let obj = patch.as_object().ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "the patch must be a JSON object".into(),
        )
    })?;
    let mut config = w.config_of(&name).await?;
    for (k, v) in obj {
        match v {
            Json_::Null => {
                config.remove(k);
            }
            Json_::String(s) => {
                config.insert(k.clone(), s.clone());
            }
            other => {
                config.insert(k.clone(), other.to_string());
            }
        }
    }
    w.put_config(&name, config).await?;
    Ok(Json(info(w.as_ref(), &name).await?))
}

async fn status(State(w): W, Path(name): Path<String>) -> ApiResult<Json<Json_>> {
    Ok(Json(status_json(w.as_ref(), &name).await?))
}

async fn tasks(State(w): W, Path(name): Path<String>) -> ApiResult<Json<Json_>> {
    let (_, tasks) = w.tasks_of(&name).await?;
    let out: Vec<Json_> = tasks
        .into_iter()
        .enumerate()
        .map(|(i, c)| json!({"id": {"connector": name, "task": i}, "config": c}))
        .collect();
    Ok(Json(json!(out)))
}

async fn task_status(
    State(w): W,
    Path((name, id)): Path<(String, usize)>,
) -> ApiResult<Json<Json_>> {
    let s = w.status(&name).await?;
    let t = s
        .tasks
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("Unknown task {name}-{id}")))?;
    Ok(Json(task_json(t)))
}

async fn restart_task(
    State(w): W,
    Path((name, id)): Path<(String, usize)>,
) -> ApiResult<StatusCode> {
    w.restart_task(&name, id).await.map_err(|e| match e {
        Error::NotFound(n) if n.contains(" task ") => {
            ApiError(StatusCode::NOT_FOUND, format!("Unknown task {n}"))
        }
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(State(w): W, Path(name): Path<String>) -> ApiResult<StatusCode> {
    w.pause(&name).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn resume(State(w): W, Path(name): Path<String>) -> ApiResult<StatusCode> {
    w.resume(&name).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn stop(State(w): W, Path(name): Path<String>) -> ApiResult<StatusCode> {
    w.stop(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct RestartQuery {
    #[serde(rename = "includeTasks", default)]
    include_tasks: bool,
    #[serde(rename = "onlyFailed", default)]
    only_failed: bool,
}

async fn restart(
    State(w): W,
    Path(name): Path<String>,
    Query(q): Query<RestartQuery>,
) -> ApiResult<Response> {
    w.restart(&name, q.include_tasks, q.only_failed).await?;
    if !q.include_tasks && !q.only_failed {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(status_json(w.as_ref(), &name).await?),
    )
        .into_response())
}

fn offsets_json(list: Vec<(JsonMap, JsonMap)>) -> Json_ {
    let offsets: Vec<Json_> = list
        .into_iter()
        .map(|(p, o)| json!({"partition": p, "offset": o}))
        .collect();
    json!({"offsets": offsets})
}

async fn get_offsets(State(w): W, Path(name): Path<String>) -> ApiResult<Json<Json_>> {
    Ok(Json(offsets_json(w.offsets(&name).await?)))
}

async fn alter_offsets(
    State(w): W,
    Path(name): Path<String>,
    payload: Result<Json<Json_>, JsonRejection>,
) -> ApiResult<Json<Json_>> {
    let req = body(payload)?;
    let list = req
        .get("offsets")
        .and_then(Json_::as_array)
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "the request needs an \"offsets\" array".into(),
            )
        })?;
    let mut updates = Vec::new();
    for entry in list {
        let p = entry
            .get("partition")
            .and_then(Json_::as_object)
            .ok_or_else(|| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    "each offset needs a \"partition\" object".into(),
                )
            })?;
        let o = entry.get("offset").and_then(Json_::as_object).cloned();
        updates.push((p.clone(), o));
    }
    w.set_offsets(&name, Some(updates)).await?;
    Ok(Json(
        json!({"message": "The offsets for this connector have been altered successfully"}),
    ))
}

async fn reset_offsets(State(w): W, Path(name): Path<String>) -> ApiResult<Json<Json_>> {
    w.set_offsets(&name, None).await?;
    Ok(Json(
        json!({"message": "The offsets for this connector have been reset successfully"}),
    ))
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "HTTP 404 Not Found".into())
}

pub fn router(worker: Arc<dyn Herder>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/connectors", get(list).post(create))
        .route(
            "/connectors/{name}",
            get(get_connector).delete(delete_connector),
        )
        .route(
            "/connectors/{name}/config",
            get(get_config).put(put_config).patch(patch_config),
        )
        .route("/connectors/{name}/status", get(status))
        .route("/connectors/{name}/tasks", get(tasks))
        .route("/connectors/{name}/tasks/{id}/status", get(task_status))
        .route("/connectors/{name}/tasks/{id}/restart", post(restart_task))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route("/connectors/{name}/restart", post(restart))
        .route(
            "/connectors/{name}/offsets",
            get(get_offsets).patch(alter_offsets).delete(reset_offsets),
        )
        .route("/connector-plugins", get(plugins::list))
        .route("/connector-plugins/{plugin}/config", get(plugins::config))
        .route(
            "/connector-plugins/{plugin}/config/validate",
            put(plugins::validate),
        )
        .fallback(not_found)
        .with_state(worker)
}

/// Binds the worker's `listeners` address; the config comes back with the bound
/// address (port 0 picks a free one), which names the worker in statuses.
pub async fn bind(mut config: WorkerConfig) -> Result<(TcpListener, WorkerConfig), Error> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::io(config.listen, e))?;
    config.listen = listener
        .local_addr()
        .map_err(|e| Error::io(config.listen, e))?;
    Ok((listener, config))
}

/// The REST API being served.
pub struct RestServer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Serves the REST API on `listener` until [`RestServer::shutdown`].
pub fn serve(listener: TcpListener, herder: Arc<dyn Herder>) -> RestServer {
    let (stop, mut stop_rx) = watch::channel(false);
    let app = router(herder);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop_rx.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "REST server failed");
        }
    });
    RestServer { stop, task }
}

impl RestServer {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
