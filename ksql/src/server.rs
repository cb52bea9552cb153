//! The REST API, shaped like ksqlDB's so its clients work: `POST /ksql` runs
//! statements and answers with ksqlDB's entities; `POST /query` (JSON array, one
//! `{"row":...}` per line) and `POST /query-stream` (a header line, then one JSON array
//! per row) stream push and pull query results; `GET /info`, `GET /healthcheck`;
//! `POST /close-query` cancels a streaming query.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::engine::Engine;
use crate::error::Error;
use crate::exec::transient::QueryStream;

#[derive(Clone)]
struct AppState {
    engine: Arc<Engine>,
    /// Cancel handles of streaming queries, by query id.
    running: Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>,
}

/// ksqlDB's error codes: 40001 a bad statement, 40002 a statement for the other
/// endpoint, 50000 a server-side failure.
fn error_response(e: &Error, statement: &str) -> Response {
    let (status, code) = match e {
        Error::Syntax { .. } | Error::Semantic(_) | Error::Serde(_) => {
            (StatusCode::BAD_REQUEST, 40001)
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, 50000),
    };
    let body = json!({
        "@type": "statement_error",
        "error_code": code,
        "message": e.to_string(),
        "statementText": statement,
        "entities": [],
    });
    (status, Json(body)).into_response()
}

fn props_of(v: &Value, field: &str) -> BTreeMap<String, String> {
    v.get(field)
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn ksql(State(st): State<AppState>, Json(req): Json<Value>) -> Response {
    let Some(sql) = req.get("ksql").and_then(Value::as_str) else {
        return error_response(&Error::semantic("the request needs a \"ksql\" field"), "");
    };
    let statements = match crate::parser::parse(sql) {
        Ok(s) => s,
        Err(e) => return error_response(&e, sql),
    };
    let props = props_of(&req, "streamsProperties");
    let mut out = Vec::new();
    for s in &statements {
        if matches!(
            s.statement,
            crate::parser::ast::Statement::Select(_) | crate::parser::ast::Statement::Print { .. }
        ) {
            let e = Error::semantic("The following statement types should be issued to the websocket endpoint '/query': SELECT, PRINT");
            let mut r = error_response(&e, &s.text);
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return r;
        }
        match st.engine.execute_statement_with(s, &props).await {
            Ok(entity) => out.push(entity),
            Err(e) => return error_response(&e, &s.text),
        }
    }
    Json(out).into_response()
}

/// Streams a query's rows, framed by `header` / `row` / `footer`.
fn stream_body(
    st: &AppState,
    mut q: QueryStream,
    header: String,
    row: fn(Vec<Value>) -> String,
    footer: &'static str,
) -> Body {
    let (cancel_tx, mut cancel_rx) = oneshot::channel();
    crate::sync::lock(&st.running).insert(q.query_id.clone(), cancel_tx);
    let running = st.running.clone();
    let id = q.query_id.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(header))).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = &mut cancel_rx => break,
                r = q.rows.recv() => match r {
                    Some(Ok(values)) => {
                        if tx.send(Ok(Bytes::from(row(values)))).await.is_err() {
                            break;
                        }
                    }
                    Some(Err(e)) => {
                        let msg = json!({"error_code": 50000, "message": e.to_string()});
                        let _ = tx.send(Ok(Bytes::from(format!("{msg}\n")))).await;
                        break;
                    }
                    None => break,
                },
            }
        }
        let _ = tx.send(Ok(Bytes::from(footer))).await;
        crate::sync::lock(&running).remove(&id);
        drop(q);
    });
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

async fn start_query(
    st: &AppState,
    sql: &str,
    props: &BTreeMap<String, String>,
) -> Result<QueryStream, Response> {
    st.engine
        .query(sql, props)
        .await
        .map_err(|e| error_response(&e, sql))
}

async fn query(State(st): State<AppState>, Json(req): Json<Value>) -> Response {
    let sql = req
        .get("ksql")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let q = match start_query(&st, &sql, &props_of(&req, "streamsProperties")).await {
        Ok(q) => q,
        Err(r) => return r,
    };
    let schema = q
        .columns
        .iter()
        .map(|(n, t)| format!("`{n}` {t}"))
        .collect::<Vec<_>>()
        .join(", ");
    let header = format!(
        "[{},\n",
        json!({"header": {"queryId": q.query_id, "schema": schema}})
    );
    let body = stream_body(
        &st,
        q,
        header,
        |v| format!("{},\n", json!({"row": {"columns": v}})),
        "{\"finalMessage\":\"Query Completed\"}]\n",
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn query_stream(State(st): State<AppState>, Json(req): Json<Value>) -> Response {
    let sql = req
        .get("sql")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let q = match start_query(&st, &sql, &props_of(&req, "properties")).await {
        Ok(q) => q,
        Err(r) => return r,
    };
    let header = format!(
        "{}\n",
        json!({
            "queryId": q.query_id,
            "columnNames": q.columns.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "columnTypes": q.columns.iter().map(|(_, t)| t).collect::<Vec<_>>(),
        })
    );
    let body = stream_body(&st, q, header, |v| format!("{}\n", Value::Array(v)), "");
    (
        [(header::CONTENT_TYPE, "application/vnd.ksqlapi.delimited.v1")],
        body,
    )
        .into_response()
}

async fn close_query(State(st): State<AppState>, Json(req): Json<Value>) -> Response {
    let id = req
        .get("queryId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match crate::sync::lock(&st.running).remove(id) {
        Some(cancel) => {
            let _ = cancel.send(());
            StatusCode::OK.into_response()
        }
        None => error_response(&Error::semantic(format!("No query with id {id}")), ""),
    }
}

async fn info(State(st): State<AppState>) -> Json<Value> {
    Json(json!({"KsqlServerInfo": {
        "version": concat!("0.29.0-runnel-", env!("CARGO_PKG_VERSION")),
        "kafkaClusterId": st.engine.config().bootstrap_servers,
        "ksqlServiceId": st.engine.config().service_id,
        "serverStatus": "RUNNING",
    }}))
}

async fn healthcheck(State(st): State<AppState>) -> Response {
    let kafka = st.engine.kafka().topics().await.is_ok();
    let body = json!({"isHealthy": kafka, "details": {"metastore": {"isHealthy": true}, "kafka": {"isHealthy": kafka}}});
    let status = if kafka {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

pub fn router(engine: Arc<Engine>) -> Router {
    let state = AppState {
        engine,
        running: Arc::default(),
    };
    Router::new()
        .route("/ksql", post(ksql))
        .route("/query", post(query))
        .route("/query-stream", post(query_stream))
        .route("/close-query", post(close_query))
        .route("/info", get(info))
        .route("/healthcheck", get(healthcheck))
        .with_state(state)
}

/// Binds `addr` (ksqlDB's default is 127.0.0.1:8088) and serves until the returned
/// handle is dropped or aborted.
pub async fn serve(
    engine: Arc<Engine>,
    addr: SocketAddr,
) -> crate::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(engine);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("KSQL server stopped: {e}");
        }
    });
    Ok((local, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_errors_are_400_and_engine_failures_500() {
        let bad = error_response(&Error::semantic("no such column"), "SELECT x FROM s;");
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let broken = error_response(&Error::Internal("bug".into()), "SELECT x FROM s;");
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
