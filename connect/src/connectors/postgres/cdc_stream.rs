//! The CDC source's change stream: pgoutput over the logical replication protocol
//! (`START_REPLICATION SLOT ... LOGICAL` on a replication connection, through the
//! `pgwire-replication` crate). The server decodes each change once and pushes it;
//! a poll takes what arrived, at most `max.batch.size` records, so a transaction of any
//! size is handed out in pieces and never held whole. The slot's confirmed position
//! (the standby status update) moves only to the end of transactions whose every
//! record the broker acknowledged and whose offsets were committed: the runtime says
//! so through `SourceTask::commit` (`confirm`).

use std::collections::HashMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pgwire_replication::{
    Lsn, PgWireError, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig,
};

use super::{err, offset_map, pg, Column, PostgresCdcTask};
use crate::api::{JsonMap, SourceRecord};
use crate::connectors::postgres::pgoutput::{
    decode, format_lsn, parse_lsn, Message, RelationColumn, PG_EPOCH_OFFSET_US,
};
use crate::connectors::postgres::types::schema_for;
use crate::error::{Error, Result};

/// How long a poll that has records waits for more once the buffer is empty.
const BATCH_LINGER: Duration = Duration::from_millis(5);
/// Records a poll reserves room for before reading (a larger `max.batch.size` grows).
const MAX_PRESIZE: usize = 100_000;

/// An open replication stream and the transaction it is in the middle of.
pub(super) struct ChangeStream {
    client: ReplicationClient,
    tx: Option<Tx>,
}

/// The transaction being read; it may span polls.
#[derive(Debug, Clone, Copy)]
struct Tx {
    xid: u32,
    commit_lsn: u64,
    /// Microseconds since 2000-01-01.
    time: i64,
    /// Changes of the transaction read so far (Debezium's `lsn_proc` counts them).
    index: u64,
    /// The snapshot saw it, or an earlier run emitted it whole.
    skip: bool,
}

fn replication_error(e: PgWireError) -> Error {
    let text = format!("replication connection: {e}");
    if e.is_transient() || e.is_io() {
        Error::Retriable(text)
    } else {
        err(text)
    }
}

impl PostgresCdcTask {
    /// Opens the replication connection at the slot's confirmed position, waiting (as
    /// Debezium does, `slot.max.retries` times `slot.retry.delay.ms`) while another
    /// connection — a task that is stopping — still holds the slot.
    async fn open_stream(&mut self) -> Result<ChangeStream> {
        let c = self.cfg()?.clone();
        let mut attempt = 0;
        loop {
            let row = self
                .client()
                .await?
                .query_opt(
                    "SELECT active_pid, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                    &[&c.slot],
                )
                .await
                .map_err(pg)?
                .ok_or_else(|| err(format!("replication slot {} does not exist", c.slot)))?;
            let holder: Option<i32> = row.get(0);
            let confirmed = row
                .get::<_, Option<String>>(1)
                .and_then(|l| parse_lsn(&l))
                .unwrap_or(0);
            let started = match holder {
                Some(pid) => Err(format!(
                    "replication slot {} is active for PID {pid}",
                    c.slot
                )),
                None => self.start_replication(confirmed).await,
            };
            match started {
                Ok(client) => {
                    tracing::info!(slot = %c.slot, from = %format_lsn(confirmed), "PostgresCdcSource streaming");
                    return Ok(ChangeStream { client, tx: None });
                }
                Err(why) if why.contains("is active for PID") && attempt < c.slot_max_retries => {
                    attempt += 1;
                    tracing::warn!(attempt, "{why}; retrying in {} ms", c.slot_retry_delay_ms);
                    tokio::time::sleep(Duration::from_millis(c.slot_retry_delay_ms)).await;
                }
                Err(why) => return Err(Error::Retriable(why)),
            }
        }
    }

    async fn start_replication(
        &self,
        confirmed: u64,
    ) -> std::result::Result<ReplicationClient, String> {
        let c = self.cfg().map_err(|e| e.to_string())?;
        let r = &c.replication;
        let config = ReplicationConfig::new(
            r.host.clone(),
            r.user.clone(),
            r.password.clone(),
            c.dbname.clone(),
            c.slot.clone(),
            c.publication.clone(),
        )
        .with_port(r.port)
        .with_tls(TlsConfig::disabled())
        // Lsn 0: the server starts at the slot's confirmed_flush_lsn. Until this task
        // confirms more, it reports the position the slot already has, never less.
        .with_start_lsn(Lsn::ZERO)
        .with_ack_lsn(Lsn::from_u64(confirmed))
        .with_status_interval(Duration::from_millis(c.status_update_interval_ms))
        .with_wakeup_interval(Duration::from_millis(c.status_update_interval_ms))
        .with_buffer_size(c.max_queue_size)
        .with_application_name(format!("runnel-cdc-{}", c.topic_prefix));
        let mut client = ReplicationClient::connect(config)
            .await
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(30), client.wait_started()).await {
            Ok(Ok(())) => Ok(client),
            Ok(Err(e)) => Err(format!("starting replication from slot {}: {e}", c.slot)),
            Err(_) => Err(format!(
                "starting replication from slot {}: no answer in 30 s",
                c.slot
            )),
        }
    }

    /// One poll of the change stream: waits up to `poll.interval.ms` for the first
    /// event, then takes what has arrived, up to `max.batch.size` records.
    pub(super) async fn stream(&mut self) -> Result<Vec<SourceRecord>> {
        let c = self.cfg()?.clone();
        let mut stream = match self.change_stream.take() {
            Some(s) => s,
            None => self.open_stream().await?,
        };
        // A confirmation that came while the stream was closed.
        if let Some(lsn) = self.advance_to.take() {
            stream.client.update_applied_lsn(Lsn::from_u64(lsn));
        }
        // Sized up front: growing moves every record read so far.
        let mut out = Vec::with_capacity(c.max_batch_size.min(MAX_PRESIZE));
        let wait = Duration::from_millis(c.poll_interval_ms);
        while out.len() < c.max_batch_size {
            let next = if out.is_empty() {
                match tokio::time::timeout(wait, stream.client.recv()).await {
                    Ok(next) => next,
                    Err(_) => break,
                }
            } else {
                // What is buffered, without a timer per event: recv polled once (a
                // channel receive, so dropping it pending loses nothing). When the
                // buffer runs dry, a short wait for more: each poll costs a produce
                // round trip and an offset commit, so batches should be full.
                let mut recv = std::pin::pin!(stream.client.recv());
                let ready = {
                    let mut cx = Context::from_waker(Waker::noop());
                    recv.as_mut().poll(&mut cx)
                };
                match ready {
                    Poll::Ready(next) => next,
                    Poll::Pending => match tokio::time::timeout(BATCH_LINGER, recv).await {
                        Ok(next) => next,
                        Err(_) => break,
                    },
                }
            };
            let event = match next {
                Ok(Some(event)) => event,
                Ok(None) => {
                    return self.lost(out, Error::Retriable("the replication stream ended".into()))
                }
                Err(e) => return self.lost(out, replication_error(e)),
            };
            if let Err(e) = self.on_event(&mut stream, event, &mut out).await {
                return self.lost(out, e);
            }
        }
        self.change_stream = Some(stream);
        Ok(out)
    }

    /// The stream failed: what was read before is still handed out (its offsets say
    /// where it ends); the next poll reconnects from the slot's confirmed position and
    /// skips what was emitted.
    fn lost(&mut self, out: Vec<SourceRecord>, e: Error) -> Result<Vec<SourceRecord>> {
        if out.is_empty() || !matches!(e, Error::Retriable(_)) {
            return Err(e);
        }
        tracing::warn!("PostgresCdcSource: {e}; reconnecting on the next poll");
        Ok(out)
    }

    async fn on_event(
        &mut self,
        stream: &mut ChangeStream,
        event: ReplicationEvent,
        out: &mut Vec<SourceRecord>,
    ) -> Result<()> {
        match event {
            ReplicationEvent::Begin {
                final_lsn,
                xid,
                commit_time_micros,
            } => {
                let final_lsn = final_lsn.as_u64();
                let seen = self.visibility.as_ref().is_some_and(|v| v.saw(xid));
                if self.visibility.is_some() && !seen {
                    // The snapshot did not see this transaction, so it committed after
                    // the snapshot was taken, and so does every later one (they arrive
                    // in commit order): the visibility has done its work, and the
                    // offsets stop carrying it.
                    self.visibility = None;
                }
                let done = self.resume.is_some_and(|(l, _)| final_lsn < l);
                stream.tx = Some(Tx {
                    xid,
                    commit_lsn: final_lsn,
                    time: commit_time_micros,
                    index: 0,
                    skip: seen || done,
                });
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                stream.tx = None;
                // Confirmable once the last record emitted so far is committed.
                self.confirmable.push_back((self.resume, end_lsn.as_u64()));
            }
            ReplicationEvent::XLogData { data, .. } => {
                let msg = decode(&data)?;
                self.on_change(stream, msg, out).await?;
            }
            ReplicationEvent::KeepAlive { .. }
            | ReplicationEvent::Message { .. }
            | ReplicationEvent::StoppedAt { .. } => {}
        }
        Ok(())
    }

    async fn on_change(
        &mut self,
        stream: &mut ChangeStream,
        msg: Message,
        out: &mut Vec<SourceRecord>,
    ) -> Result<()> {
        let (relation, op) = match &msg {
            Message::Relation {
                id,
                namespace,
                name,
                columns,
                ..
            } => {
                let cols = self.columns(columns).await?;
                let rel = self.relation(namespace, name, cols);
                self.relations.insert(*id, rel);
                return Ok(());
            }
            Message::Insert { relation, .. } => (*relation, "c"),
            Message::Update { relation, .. } => (*relation, "u"),
            Message::Delete { relation, .. } => (*relation, "d"),
            _ => return Ok(()),
        };
        let Some(tx) = stream.tx.as_mut() else {
            return Ok(());
        };
        tx.index += 1;
        if tx.skip
            || self
                .resume
                .is_some_and(|(l, n)| tx.commit_lsn == l && tx.index <= n)
        {
            return Ok(());
        }
        let tx = *tx;
        let Some(rel) = self.relations.get(&relation) else {
            return Err(err(format!(
                "a change of relation {relation} came before its description"
            )));
        };
        if !rel.included {
            return Ok(());
        }
        let ts_ms = (tx.time + PG_EPOCH_OFFSET_US) / 1000;
        let offset = offset_map([
            ("lsn_commit", tx.commit_lsn.into()),
            ("lsn_proc", tx.index.into()),
            ("txId", tx.xid.into()),
            ("snapshot_completed", true.into()),
            ("visibility", self.visibility_json()),
        ]);
        let (before, after) = match msg {
            Message::Insert { new, .. } => (None, Some(Self::row(rel, &new)?)),
            Message::Update { old, new, .. } => (
                old.map(|o| Self::row(rel, &o)).transpose()?,
                Some(Self::row(rel, &new)?),
            ),
            Message::Delete { old, .. } => (Some(Self::row(rel, &old)?), None),
            _ => return Ok(()),
        };
        self.event(
            rel,
            op,
            before,
            after,
            ts_ms,
            "false",
            Some((tx.xid, tx.commit_lsn)),
            offset,
            out,
        )?;
        self.resume = Some((tx.commit_lsn, tx.index));
        Ok(())
    }

    /// A relation message's columns with their type names (looked up once per type).
    async fn columns(&mut self, columns: &[RelationColumn]) -> Result<Vec<Column>> {
        let unknown: Vec<i64> = columns
            .iter()
            .map(|c| i64::from(c.type_oid))
            .filter(|oid| !self.type_names.contains_key(oid))
            .collect();
        if !unknown.is_empty() {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT oid::int8, typname::text FROM pg_type WHERE oid::int8 = ANY($1)",
                    &[&unknown],
                )
                .await
                .map_err(pg)?;
            let found: HashMap<i64, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            self.type_names.extend(found);
        }
        Ok(columns
            .iter()
            .map(|c| {
                let type_name = self
                    .type_names
                    .get(&i64::from(c.type_oid))
                    .cloned()
                    .unwrap_or_else(|| "text".into());
                let scale = (type_name == "numeric" && c.type_modifier > 0)
                    .then(|| ((c.type_modifier - 4) & 0xffff) as u32);
                Column {
                    name: c.name.clone(),
                    schema: schema_for(&type_name, !c.key, scale),
                    type_name,
                    key: c.key,
                }
            })
            .collect())
    }

    /// The runtime committed offsets up to `committed`: the transactions whose records
    /// all lie at or before it are confirmed to the server (sent with the next standby
    /// status update), never one with a record still unacknowledged.
    pub(super) fn confirm(&mut self, committed: &[(JsonMap, JsonMap)]) {
        for (_, offset) in committed {
            let at = |k: &str| offset.get(k).and_then(serde_json::Value::as_u64);
            if let (Some(l), Some(n)) = (at("lsn_commit"), at("lsn_proc")) {
                self.committed_position = self.committed_position.max(Some((l, n)));
            }
        }
        let mut confirm = None;
        while let Some((position, end_lsn)) = self.confirmable.front().copied() {
            if position > self.committed_position {
                break;
            }
            confirm = Some(end_lsn);
            self.confirmable.pop_front();
        }
        let Some(lsn) = confirm else {
            return;
        };
        match &self.change_stream {
            Some(s) => s.client.update_applied_lsn(Lsn::from_u64(lsn)),
            None => self.advance_to = Some(lsn),
        }
    }

    /// Ends the replication connection so the slot is free for the next task at once.
    pub(super) async fn close_stream(&mut self) {
        if let Some(mut s) = self.change_stream.take() {
            if let Some(lsn) = self.advance_to.take() {
                s.client.update_applied_lsn(Lsn::from_u64(lsn));
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), s.client.shutdown()).await;
        }
    }
}
