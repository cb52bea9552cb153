//! A distributed worker's life in its group: join, (as leader) assign, run what was
//! assigned, heartbeat, follow target states and restart requests, publish statuses —
//! and on a rebalance release everything and join again (Kafka Connect's eager
//! protocol: no task ever runs on two workers at once).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::assignment::{self, Assignment, MemberMetadata, PROTOCOL};
use super::configs::{self, ConfigEvent};
use super::membership::{Beat, GroupMember, Joined};
use super::status::{self, StatusRecord};
use super::{lock, DistributedHerder, Local};
use crate::connectors::{self, Connector};
use crate::error::{Error, Result};
use crate::runtime::config as wconfig;
use crate::runtime::exactly_once::{fence_producers, transactional_id, SourceSupport};
use crate::runtime::task::{State, TargetState};

/// How often statuses are compared with what was last written.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// Pause after a failed group request before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub(super) async fn run(
    h: Arc<DistributedHerder>,
    mut events: mpsc::UnboundedReceiver<ConfigEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let s = &h.settings;
    let mut member = GroupMember::new(
        &h.worker.config().bootstrap_servers,
        &s.group_id,
        &format!("connect-{}", h.worker_id()),
        s.session_timeout.as_millis() as i32,
        s.rebalance_timeout.as_millis() as i32,
    );
    let url = format!("http://{}", h.worker_id());
    'rejoin: loop {
        if *shutdown.borrow() {
            break;
        }
        h.release_all().await;
        // This join covers whatever piled up; targets and restarts start from scratch.
        while events.try_recv().is_ok() {}
        let assignment = tokio::select! {
            a = join_and_sync(&h, &mut member, &url) => a,
            _ = shutdown.changed() => break,
        };
        let assignment = match assignment {
            Ok(Some(a)) => a,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "joining the worker group failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_AFTER) => continue,
                    _ = shutdown.changed() => break,
                }
            }
        };
        tracing::info!(
            worker = %h.worker_id(),
            connectors = ?assignment.connectors,
            tasks = ?assignment.tasks,
            "assignment received"
        );
        h.apply_assignment(&assignment).await;
        let mut heartbeat = tokio::time::interval(s.heartbeat_interval);
        heartbeat.tick().await;
        let mut publish = tokio::time::interval(PUBLISH_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break 'rejoin,
                _ = heartbeat.tick() => match member.heartbeat().await {
                    Ok(Beat::Alive) => {}
                    Ok(Beat::Rejoin) => continue 'rejoin,
                    Err(e) => {
                        tracing::warn!(error = %e, "heartbeat failed; rejoining");
                        continue 'rejoin;
                    }
                },
                Some(event) = events.recv() => match event {
                    ConfigEvent::Rebalance => continue 'rejoin,
                    ConfigEvent::Target(name) => h.apply_target(&name).await,
                    ConfigEvent::RestartConnector { name, include_tasks, only_failed } => {
                        h.restart_local(&name, include_tasks, only_failed).await
                    }
                    ConfigEvent::RestartTask(name, id) => h.restart_local_task(&name, id).await,
                    ConfigEvent::Fenced(name) => h.start_fenced(&name).await,
                },
                _ = publish.tick() => h.publish_statuses().await,
            }
        }
    }
    h.release_all().await;
    member.leave().await;
    tracing::info!(worker = %h.worker_id(), "left the worker group");
}

/// One round of the group protocol; `Ok(None)` when the round was superseded.
async fn join_and_sync(
    h: &DistributedHerder,
    member: &mut GroupMember,
    url: &str,
) -> Result<Option<Assignment>> {
    let meta = MemberMetadata {
        url: url.to_string(),
        config_offset: lock(&h.configs).offset,
    };
    let meta = serde_json::to_vec(&meta).map_err(|e| Error::Group(e.to_string()))?;
    let joined: Joined = member.join(PROTOCOL, Bytes::from(meta)).await?;
    let assignments = if joined.is_leader() {
        let members: Vec<(String, MemberMetadata)> = joined
            .members
            .iter()
            .filter_map(|(id, m)| Some((id.clone(), serde_json::from_slice(m).ok()?)))
            .collect();
        let newest = members
            .iter()
            .map(|(_, m)| m.config_offset)
            .max()
            .unwrap_or(0);
        if lock(&h.configs).offset < newest {
            h.config_log.read_to_end().await?;
        }
        let configs = lock(&h.configs);
        assignment::assign(&joined.member_id, &members, &configs)
            .into_iter()
            .filter_map(|(id, a)| Some((id, Bytes::from(serde_json::to_vec(&a).ok()?))))
            .collect()
    } else {
        Vec::new()
    };
    let Some(mine) = member.sync(assignments).await? else {
        return Ok(None);
    };
    let assignment: Assignment = serde_json::from_slice(&mine)
        .map_err(|e| Error::Group(format!("the leader's assignment is not readable: {e}")))?;
    if lock(&h.configs).offset < assignment.config_offset {
        h.config_log.read_to_end().await?;
    }
    h.generation.store(joined.generation, Ordering::Relaxed);
    Ok(Some(assignment))
}

fn is_source(config: &crate::api::Config) -> bool {
    let class = config
        .get("connector.class")
        .map(String::as_str)
        .unwrap_or("");
    connectors::find(class).is_ok_and(|p| p.kind == "source")
}

fn instantiate(config: &crate::api::Config) -> Result<Connector> {
    let class = config
        .get("connector.class")
        .map(String::as_str)
        .unwrap_or("");
    Ok(connectors::find(class)?.instantiate())
}

impl DistributedHerder {
    fn initial(target: TargetState) -> TargetState {
        if target == TargetState::Paused {
            TargetState::Paused
        } else {
            TargetState::Started
        }
    }

    /// Starts the assigned tasks and, for the assigned connectors, brings their task
    /// configs up to date.
    async fn apply_assignment(&self, a: &Assignment) {
        let mut local = self.local.lock().await;
        local.connectors = a.connectors.clone();
        for name in &a.connectors {
            if let Err(e) = self.reconcile_and_fence(name).await {
                tracing::error!(connector = %name, error = %e, "connector failed");
                local.failures.insert(name.clone(), e.to_string());
            }
        }
        for (name, id) in &a.tasks {
            self.start_task(&mut local, name, *id);
        }
    }

    /// Brings the connector's task configs up to date; when they are current, fences
    /// the previous task generation if that is still to do.
    async fn reconcile_and_fence(&self, name: &str) -> Result<()> {
        if !self.reconcile(name).await? {
            self.fence_zombies(name).await?;
        }
        Ok(())
    }

    /// KIP-618's zombie fencing, by the connector's owner once the previous task
    /// generation stopped (the eager rebalance released every task): every transactional
    /// id of that generation is fenced, then the new task count is recorded, which lets
    /// the new tasks start wherever they were assigned.
    async fn fence_zombies(&self, name: &str) -> Result<()> {
        if !self.settings.exactly_once.fences() {
            return Ok(());
        }
        let Some(entry) = lock(&self.configs).live(name).cloned() else {
            return Ok(());
        };
        let config = entry.config.clone().unwrap_or_default();
        if !entry.pending_fencing || entry.target() == TargetState::Stopped || !is_source(&config) {
            return Ok(());
        }
        let ids: Vec<String> = (0..entry.fenced_task_count.unwrap_or(0))
            .map(|t| transactional_id(&self.settings.group_id, name, t))
            .collect();
        tracing::info!(connector = %name, fenced = ?ids, tasks = entry.tasks.len(), "fencing out the previous task generation");
        let mut client = rdkafka::ClientConfig::new();
        client.set("bootstrap.servers", &self.worker.config().bootstrap_servers);
        for (k, v) in wconfig::with_prefix(&self.worker.config().props, "producer.") {
            client.set(k, v);
        }
        fence_producers(client, ids).await?;
        self.config_log
            .send(
                &configs::task_count_key(name),
                Some(&configs::task_count_value(entry.tasks.len())),
            )
            .await?;
        self.config_log.read_to_end().await
    }

    /// Starts the tasks that waited for their connector's fencing.
    async fn start_fenced(&self, name: &str) {
        let mut local = self.local.lock().await;
        let (ready, waiting): (Vec<_>, Vec<_>) = local
            .awaiting_fencing
            .drain(..)
            .partition(|(n, _)| n == name);
        local.awaiting_fencing = waiting;
        for (n, id) in ready {
            self.start_task(&mut local, &n, id);
        }
    }

    /// The connector's owner splits its work into task configs and, where they changed,
    /// writes them and their commit record — which makes the group rebalance. True when
    /// it wrote.
    async fn reconcile(&self, name: &str) -> Result<bool> {
        let Some(entry) = lock(&self.configs).live(name).cloned() else {
            return Ok(false);
        };
        if entry.target() == TargetState::Stopped {
            return Ok(false);
        }
        let config = entry.config.unwrap_or_default();
        let max = wconfig::tasks_max(&config);
        let mut wanted = match instantiate(&config)? {
            Connector::Source(c) => c.task_configs(&config, max)?,
            Connector::Sink(c) => c.task_configs(&config, max)?,
        };
        wanted.truncate(max);
        if wanted == entry.tasks {
            return Ok(false);
        }
        for (id, t) in wanted.iter().enumerate() {
            self.config_log
                .send(
                    &configs::task_key(name, id),
                    Some(&configs::properties_value(t)),
                )
                .await?;
        }
        self.config_log
            .send(
                &configs::commit_key(name),
                Some(&configs::commit_value(wanted.len())),
            )
            .await?;
        Ok(true)
    }

    fn start_task(&self, local: &mut Local, name: &str, id: usize) {
        let Some(entry) = lock(&self.configs).live(name).cloned() else {
            return;
        };
        let Some(task_config) = entry.tasks.get(id).cloned() else {
            return;
        };
        if entry.target() == TargetState::Stopped {
            local.idle.push((name.to_string(), id));
            return;
        }
        let target = entry.target();
        let config = entry.config.unwrap_or_default();
        if entry.pending_fencing
            && self.settings.exactly_once == SourceSupport::Enabled
            && is_source(&config)
        {
            tracing::info!(connector = %name, task = id, "waiting for the connector to fence out the tasks of its previous generation");
            local.awaiting_fencing.push((name.to_string(), id));
            return;
        }
        match instantiate(&config) {
            Ok(connector) => {
                let run = self.worker.spawn_task(
                    name,
                    id,
                    task_config,
                    &connector,
                    Self::initial(target),
                );
                local.tasks.insert((name.to_string(), id), run);
            }
            Err(e) => {
                local.failures.insert(name.to_string(), e.to_string());
            }
        }
    }

    async fn apply_target(&self, name: &str) {
        let Some(target) = lock(&self.configs).live(name).map(|e| e.target()) else {
            return;
        };
        let mut local = self.local.lock().await;
        let mine: Vec<(String, usize)> = local
            .tasks
            .keys()
            .filter(|(n, _)| n == name)
            .cloned()
            .collect();
        if target == TargetState::Stopped {
            for key in mine {
                if let Some(mut run) = local.tasks.remove(&key) {
                    run.stop().await;
                }
                local.idle.push(key);
            }
            return;
        }
        for key in &mine {
            if let Some(run) = local.tasks.get(key) {
                let _ = run.target.send(target);
            }
        }
        let (wake, idle): (Vec<_>, Vec<_>) = local.idle.drain(..).partition(|(n, _)| n == name);
        local.idle = idle;
        for (n, id) in wake {
            self.start_task(&mut local, &n, id);
        }
        if local.connectors.iter().any(|c| c == name) {
            // Resumed from STOPPED: its task configs may need writing again.
            if let Err(e) = self.reconcile_and_fence(name).await {
                local.failures.insert(name.to_string(), e.to_string());
            }
        }
    }

    async fn restart_local(&self, name: &str, include_tasks: bool, only_failed: bool) {
        let mut local = self.local.lock().await;
        if local.connectors.iter().any(|c| c == name)
            && (!only_failed || local.failures.contains_key(name))
        {
            local.failures.remove(name);
            if let Err(e) = self.reconcile_and_fence(name).await {
                local.failures.insert(name.to_string(), e.to_string());
            }
        }
        if !include_tasks {
            return;
        }
        let restart: Vec<(String, usize)> = local
            .tasks
            .iter()
            .filter(|((n, _), run)| {
                n == name && (!only_failed || run.status().state == State::Failed)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (n, id) in restart {
            self.restart_one(&mut local, &n, id).await;
        }
    }

    async fn restart_local_task(&self, name: &str, id: usize) {
        let mut local = self.local.lock().await;
        if local.tasks.contains_key(&(name.to_string(), id)) {
            self.restart_one(&mut local, name, id).await;
        }
    }

    async fn restart_one(&self, local: &mut Local, name: &str, id: usize) {
        if let Some(mut run) = local.tasks.remove(&(name.to_string(), id)) {
            run.stop().await;
        }
        self.start_task(local, name, id);
    }

    /// Writes the statuses of what runs here that changed since they were last written.
    async fn publish_statuses(&self) {
        let mut local = self.local.lock().await;
        let generation = self.generation.load(Ordering::Relaxed);
        let worker_id = self.worker_id();
        let record = |state: &str, trace: Option<String>| StatusRecord {
            state: state.to_string(),
            trace,
            worker_id: worker_id.clone(),
            generation,
        };
        let mut records = Vec::new();
        for name in &local.connectors {
            let Some(target) = lock(&self.configs).live(name).map(|e| e.target()) else {
                continue;
            };
            let r = match (local.failures.get(name), target) {
                (Some(f), _) => record("FAILED", Some(f.clone())),
                (None, TargetState::Started) => record("RUNNING", None),
                (None, TargetState::Paused) => record("PAUSED", None),
                (None, TargetState::Stopped) => record("STOPPED", None),
            };
            records.push((status::connector_key(name), r));
        }
        for ((name, id), run) in &local.tasks {
            let s = run.status();
            records.push((status::task_key(name, *id), record(s.state.name(), s.trace)));
        }
        for (key, r) in records {
            let bytes = r.to_bytes();
            if local.published.get(&key) == Some(&bytes) {
                continue;
            }
            match self.status_log.send(&key, Some(&bytes)).await {
                Ok(()) => {
                    local.published.insert(key, bytes);
                }
                Err(e) => tracing::warn!(error = %e, "writing a status failed"),
            }
        }
    }

    /// Stops everything running here and reports the tasks UNASSIGNED.
    async fn release_all(&self) {
        self.publish_statuses().await;
        let mut local = self.local.lock().await;
        let generation = self.generation.load(Ordering::Relaxed);
        let tasks = std::mem::take(&mut local.tasks);
        for ((name, id), mut run) in tasks {
            run.stop().await;
            let failed = run.status();
            // A failed task keeps its FAILED status and trace for whoever looks.
            if failed.state == State::Failed {
                continue;
            }
            let r = StatusRecord {
                state: State::Unassigned.name().to_string(),
                trace: None,
                worker_id: self.worker_id(),
                generation,
            };
            if let Err(e) = self
                .status_log
                .send(&status::task_key(&name, id), Some(&r.to_bytes()))
                .await
            {
                tracing::warn!(error = %e, "writing a status failed");
            }
        }
        *local = Local::default();
    }
}
