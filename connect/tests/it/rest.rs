//! The REST API over real HTTP, with Kafka Connect's paths, codes and shapes.

use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_lifecycle_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    let worker = standalone(&bs, dir.path(), vec![]).await;
    let api = Api::new(worker.rest_addr);
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "one\ntwo\nthree\n").unwrap();
    let file = input.display().to_string();

    let (code, plugins) = api.get("/connector-plugins").await;
    assert_eq!(code, 200);
    assert!(plugins
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["class"] == "org.apache.kafka.connect.file.FileStreamSourceConnector"));

    let create = json!({"name": "src", "config": {"connector.class": "FileStreamSource", "file": file, "topic": "rest-lines"}});
    let (code, created) = api.post("/connectors", Some(create.clone())).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        (created["name"].as_str(), created["type"].as_str()),
        (Some("src"), Some("source"))
    );
    // Clashes and bad requests are 4xx with a message naming the problem.
    let (code, err) = api.post("/connectors", Some(create)).await;
    assert_eq!(
        (code, err["error_code"].as_u64()),
        (409, Some(409)),
        "{err}"
    );
    assert!(err["message"].as_str().unwrap().contains("src"));
    let (code, err) = api
        .post(
            "/connectors",
            Some(json!({"name": "x", "config": {"connector.class": "com.example.Nope"}})),
        )
        .await;
    assert_eq!(code, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("com.example.Nope"),
        "{err}"
    );
    let (code, err) = api
        .post(
            "/connectors",
            Some(json!({"name": "y", "config": {"connector.class": "FileStreamSource"}})),
        )
        .await;
    assert_eq!(code, 400);
    assert!(
        err["message"].as_str().unwrap().contains("\"topic\""),
        "{err}"
    );
    let resp = api
        .http
        .post(format!("{}/connectors", api.base))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let (code, err) = api.get("/connectors/nope").await;
    assert_eq!(code, 404);
    assert_eq!(err["message"], "Connector nope not found");

    assert_eq!(api.get("/connectors").await.1, json!(["src"]));
    let (code, expanded) = api.get("/connectors?expand=status&expand=info").await;
    assert_eq!(code, 200, "{expanded}");
    assert_eq!(
        expanded["src"]["status"]["connector"]["state"], "RUNNING",
        "{expanded}"
    );
    eventually_async("the three lines in the offsets", 30, || async {
        api.get("/connectors/src/offsets").await.1["offsets"][0]["offset"]["position"] == json!(14)
    })
    .await;
    assert_eq!(read_topic(&bs, "rest-lines", 3).await.len(), 3);

    // Pause and resume.
    assert_eq!(api.put("/connectors/src/pause", None).await.0, 202);
    eventually_async("PAUSED", 30, || async {
        api.task_state("src").await == "PAUSED"
    })
    .await;
    assert_eq!(
        api.get("/connectors/src/status").await.1["connector"]["state"],
        "PAUSED"
    );
    assert_eq!(api.put("/connectors/src/resume", None).await.0, 202);
    eventually_async("RUNNING", 30, || async {
        api.task_state("src").await == "RUNNING"
    })
    .await;

    // Offsets can only change while STOPPED.
    let alter = json!({"offsets": [{"partition": {"filename": file}, "offset": {"position": 4}}]});
    let (code, err) = api
        .call(
            reqwest::Method::PATCH,
            "/connectors/src/offsets",
            Some(alter.clone()),
        )
        .await;
    assert_eq!(code, 400);
    assert!(
        err["message"].as_str().unwrap().contains("STOPPED"),
        "{err}"
    );
    assert_eq!(api.put("/connectors/src/stop", None).await.0, 204);
    assert_eq!(
        api.get("/connectors/src/status").await.1["connector"]["state"],
        "STOPPED"
    );
    let (code, _) = api
        .call(
            reqwest::Method::PATCH,
            "/connectors/src/offsets",
            Some(alter),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        api.get("/connectors/src/offsets").await.1["offsets"][0]["offset"]["position"],
        json!(4)
    );
    // Resuming from position 4 re-reads "two" and "three".
    assert_eq!(api.put("/connectors/src/resume", None).await.0, 202);
    assert_eq!(
        read_topic(&bs, "rest-lines", 5)
            .await
            .iter()
            .map(|r| r.1.clone().unwrap())
            .collect::<Vec<_>>(),
        ["one", "two", "three", "two", "three"]
    );
    assert_eq!(api.put("/connectors/src/stop", None).await.0, 204);
    let (code, reset) = api
        .call(reqwest::Method::DELETE, "/connectors/src/offsets", None)
        .await;
    assert_eq!(code, 200, "{reset}");
    assert_eq!(
        api.get("/connectors/src/offsets").await.1["offsets"],
        json!([])
    );
    assert_eq!(api.put("/connectors/src/resume", None).await.0, 202);

    // Restarts, tasks.
    assert_eq!(api.post("/connectors/src/restart", None).await.0, 204);
    let (code, st) = api
        .post(
            "/connectors/src/restart?includeTasks=true&onlyFailed=false",
            None,
        )
        .await;
    assert_eq!(code, 202, "{st}");
    assert_eq!(st["name"], "src");
    let (_, tasks) = api.get("/connectors/src/tasks").await;
    assert_eq!(tasks[0]["id"], json!({"connector": "src", "task": 0}));
    assert_eq!(tasks[0]["config"]["topic"], "rest-lines");
    assert_eq!(
        api.post("/connectors/src/tasks/0/restart", None).await.0,
        204
    );
    assert_eq!(api.get("/connectors/src/tasks/0/status").await.0, 200);
    assert_eq!(api.get("/connectors/src/tasks/7/status").await.0, 404);

    // Config: read, replace, patch, create through PUT.
    let (_, cfg) = api.get("/connectors/src/config").await;
    assert_eq!(cfg["topic"], "rest-lines");
    let mut new_cfg = cfg.clone();
    new_cfg["batch.size"] = json!("10");
    assert_eq!(
        api.put("/connectors/src/config", Some(new_cfg)).await.0,
        200
    );
    let (code, patched) = api
        .call(
            reqwest::Method::PATCH,
            "/connectors/src/config",
            Some(json!({"batch.size": null})),
        )
        .await;
    assert_eq!(code, 200, "{patched}");
    assert!(patched["config"].get("batch.size").is_none());
    let sink = json!({"connector.class": "FileStreamSink", "topics": "rest-lines", "file": dir.path().join("o.txt").display().to_string()});
    assert_eq!(api.put("/connectors/sink/config", Some(sink)).await.0, 201);

    // Validation lists per-field errors.
    let (code, v) = api
        .put(
            "/connector-plugins/FileStreamSource/config/validate",
            Some(json!({"connector.class": "FileStreamSource", "batch.size": "-3"})),
        )
        .await;
    assert_eq!(code, 200);
    assert!(v["error_count"].as_u64().unwrap() >= 1, "{v}");
    let with_errors: Vec<&str> = v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["value"]["errors"].as_array().unwrap().is_empty())
        .map(|c| c["value"]["name"].as_str().unwrap())
        .collect();
    assert!(
        with_errors.contains(&"topic") || with_errors.contains(&"batch.size"),
        "{with_errors:?}"
    );

    assert_eq!(
        api.call(reqwest::Method::DELETE, "/connectors/src", None)
            .await
            .0,
        204
    );
    assert_eq!(api.get("/connectors/src").await.0, 404);
    worker.shutdown().await;
    broker.shutdown().await.unwrap();
}

/// Validation answers in Kafka Connect's `ConfigInfos` shape with ConfigDef's messages
/// (ConnectorPluginsResource, ConfigDef.validateAll, ConnectorConfig.enrich); the
/// plugin listing and definitions follow KIP-769.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_validate_with_kafkas_config_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let worker = standalone(&broker.bootstrap(), dir.path(), vec![]).await;
    let api = Api::new(worker.rest_addr);

    let config = json!({
        "connector.class": "PostgresSink",
        "connection.url": "jdbc:postgresql://127.0.0.1:1/db",
        "connection.password": "secret",
        "topics": "t",
        "tasks.max": "0",
        "insert.mode": "merge",
        "batch.size": "many",
        "transforms": "route",
        "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.route.regex": "(.*)",
    });
    let (code, v) = api
        .put(
            "/connector-plugins/JdbcSinkConnector/config/validate",
            Some(config),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["name"], "io.confluent.connect.jdbc.JdbcSinkConnector");
    let groups: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert_eq!(
        groups,
        [
            "Common",
            "Error Handling",
            "Connection",
            "Writes",
            "Data Mapping",
            "DDL Support",
            "Retries",
            "Transforms: route"
        ]
    );
    let field = |name: &str| {
        v["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["definition"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not in {v}"))
            .clone()
    };
    let errors = |name: &str| field(name)["value"]["errors"].clone();
    assert_eq!(
        errors("tasks.max"),
        json!(["Invalid value 0 for configuration tasks.max: Value must be at least 1"])
    );
    assert_eq!(
        errors("insert.mode"),
        json!(["Invalid value merge for configuration insert.mode: String must be one of (case insensitive): insert, upsert, update"])
    );
    assert_eq!(
        errors("batch.size"),
        json!(["Invalid value many for configuration batch.size: Not a number of type INT"])
    );
    assert_eq!(
        errors("transforms.route.replacement"),
        json!(["Missing required configuration \"transforms.route.replacement\" which has no default value."])
    );
    assert_eq!(v["error_count"], 4, "{v}");
    let batch = field("batch.size");
    assert_eq!(
        (
            &batch["definition"]["type"],
            &batch["definition"]["default_value"],
            &batch["definition"]["group"],
            &batch["definition"]["required"],
            &batch["value"]["value"],
        ),
        (
            &json!("INT"),
            &json!("3000"),
            &json!("Writes"),
            &json!(false),
            &json!("many")
        )
    );
    let url = field("connection.url");
    assert_eq!(
        (
            &url["definition"]["required"],
            &url["definition"]["importance"]
        ),
        (&json!(true), &json!("HIGH"))
    );
    assert_eq!(field("connection.password")["value"]["value"], "[hidden]");
    assert_eq!(field("pk.mode")["value"]["value"], "none", "the default");
    let regex = field("transforms.route.regex");
    assert_eq!(
        (&regex["definition"]["group"], &regex["value"]["value"]),
        (&json!("Transforms: route"), &json!("(.*)"))
    );

    // A refused config is refused on create with the same messages.
    let (code, err) = api
        .post(
            "/connectors",
            Some(json!({"name": "bad", "config": {"connector.class": "FileStreamSource", "topic": "t", "tasks.max": "0"}})),
        )
        .await;
    assert_eq!(code, 400, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("Invalid value 0 for configuration tasks.max: Value must be at least 1"),
        "{err}"
    );

    // KIP-769: definitions per plugin, and plugins besides connectors.
    let (code, defs) = api.get("/connector-plugins/FileStreamSource/config").await;
    assert_eq!(code, 200, "{defs}");
    let names: Vec<&str> = defs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["file", "topic", "batch.size"]);
    assert_eq!(defs[2]["default_value"], "2000");
    let (code, defs) = api
        .get("/connector-plugins/org.apache.kafka.connect.transforms.RegexRouter/config")
        .await;
    assert_eq!(code, 200, "{defs}");
    assert_eq!(defs.as_array().unwrap().len(), 2, "{defs}");
    assert_eq!(api.get("/connector-plugins/Nope/config").await.0, 404);
    let (_, all) = api.get("/connector-plugins?connectorsOnly=false").await;
    let has = |class: &str, kind: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .any(|p| p["class"] == class && p["type"] == kind)
    };
    assert!(has(
        "org.apache.kafka.connect.transforms.RegexRouter",
        "transformation"
    ));
    assert!(has(
        "org.apache.kafka.connect.json.JsonConverter",
        "converter"
    ));
    let (_, connectors) = api.get("/connector-plugins").await;
    assert!(connectors
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["type"] == "source" || p["type"] == "sink"));
    worker.shutdown().await;
    broker.shutdown().await.unwrap();
}
