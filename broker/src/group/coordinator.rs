//! The classic group coordinator (JoinGroup / SyncGroup / Heartbeat / LeaveGroup): a
//! state machine per group — Empty, PreparingRebalance, CompletingRebalance, Stable —
//! with member ids, generations, session and rebalance timeouts, as Kafka's
//! GroupCoordinator runs it. Long calls (JoinGroup, SyncGroup) wait on oneshot channels
//! that a completing rebalance answers; `tick` drives deadlines and session expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use tokio::sync::oneshot;

use super::metadata::{GroupMetadata, StoredMember};
use super::offsets::OffsetStore;
use crate::error::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED with its id.
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone)]
pub struct JoinResponse {
    pub error: ErrorCode,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: member id, instance id, metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResponse {
    fn error(error: ErrorCode, member_id: &str) -> JoinResponse {
        JoinResponse {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncResponse {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    fn error(error: ErrorCode) -> SyncResponse {
        SyncResponse {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// What DescribeGroups shows of a member.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug)]
struct Member {
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_heartbeat: Instant,
    join_waiter: Option<oneshot::Sender<JoinResponse>>,
    sync_waiter: Option<oneshot::Sender<SyncResponse>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug)]
struct Group {
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: IndexMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pending: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    /// Until then a fresh group waits for more members (`group.initial.rebalance.delay.ms`).
    initial_delay_until: Option<Instant>,
    /// Reached a state worth storing (Stable with assignments, or Empty) since the
    /// last metadata record was written.
    dirty: bool,
}

impl Group {
    fn new() -> Group {
        Group {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            dirty: false,
        }
    }

    /// The record Kafka would write for this group.
    fn metadata(&self) -> GroupMetadata {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupMetadata {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: crate::log::now_ms(),
            members: self
                .members
                .iter()
                .map(|(id, m)| StoredMember {
                    member_id: id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// A group as loaded from its metadata record: Stable with its members (each gets
    /// a full session timeout from now to heartbeat), or Empty.
    fn loaded(meta: GroupMetadata, now: Instant) -> Group {
        let mut g = Group::new();
        g.generation = meta.generation;
        g.protocol_type = Some(meta.protocol_type).filter(|t| !t.is_empty());
        g.protocol = meta.protocol.clone();
        g.leader = meta.leader;
        let protocol = meta.protocol.unwrap_or_default();
        for m in meta.members {
            g.members.insert(
                m.member_id,
                Member {
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    last_heartbeat: now,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }
}

/// Timing knobs, from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct GroupTimeouts {
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
}

#[derive(Debug)]
pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    timeouts: GroupTimeouts,
    /// Where group metadata records go (`__consumer_offsets`); none in unit tests.
    store: Option<Arc<OffsetStore>>,
}

impl GroupCoordinator {
    /// A coordinator with the groups `store` loaded at start-up.
    pub fn new(timeouts: GroupTimeouts, store: Option<Arc<OffsetStore>>) -> Arc<GroupCoordinator> {
        let now = Instant::now();
        let groups = store
            .iter()
            .flat_map(|s| s.take_loaded_groups())
            .map(|(id, meta)| (id, Group::loaded(meta, now)))
            .collect();
        Arc::new(GroupCoordinator {
            groups: Mutex::new(groups),
            timeouts,
            store,
        })
    }

    /// Writes the group's metadata record if it reached a state worth storing. Called
    /// with the groups lock held, so records are written in the order of the changes.
    fn persist(&self, id: &str, group: &mut Group) {
        if !std::mem::take(&mut group.dirty) {
            return;
        }
        if let Some(store) = &self.store {
            if let Err(e) = store.store_group(id, &group.metadata()) {
                tracing::error!(group = %id, error = %e, "could not store group metadata");
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        crate::sync::lock(&self.groups)
    }

    pub async fn join(&self, req: JoinRequest) -> JoinResponse {
        let rx = match self.join_now(req) {
            Ok(rx) => rx,
            Err(resp) => return *resp,
        };
        rx.await
            .unwrap_or_else(|_| JoinResponse::error(ErrorCode::UnknownServerError, ""))
    }

    fn join_now(
        &self,
        req: JoinRequest,
    ) -> Result<oneshot::Receiver<JoinResponse>, Box<JoinResponse>> {
        if super::offsets::check_group_id(&req.group_id).is_err() {
            return Err(Box::new(JoinResponse::error(
                ErrorCode::InvalidGroupId,
                &req.member_id,
            )));
        }
        if req.session_timeout_ms < self.timeouts.min_session_timeout_ms
            || req.session_timeout_ms > self.timeouts.max_session_timeout_ms
        {
            return Err(Box::new(JoinResponse::error(
                ErrorCode::InvalidSessionTimeout,
                &req.member_id,
            )));
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Err(Box::new(JoinResponse::error(
                ErrorCode::InconsistentGroupProtocol,
                &req.member_id,
            )));
        }
        let now = Instant::now();
        let mut groups = self.lock();
        let group = groups
            .entry(req.group_id.clone())
            .or_insert_with(Group::new);
        // Protocol compatibility with the members already there.
        if !group.members.is_empty() {
            let same_type = group.protocol_type.as_deref() == Some(req.protocol_type.as_str());
            let common = req.protocols.iter().any(|(name, _)| {
                group
                    .members
                    .iter()
                    .filter(|(id, _)| **id != req.member_id)
                    .all(|(_, m)| m.protocols.iter().any(|(n, _)| n == name))
            });
            if !same_type || !common {
                return Err(Box::new(JoinResponse::error(
                    ErrorCode::InconsistentGroupProtocol,
                    &req.member_id,
                )));
            }
        }
        let mut member_id = req.member_id.clone();
        if member_id.is_empty() {
            member_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
            // Static members (group.instance.id) replace their previous incarnation.
            if let Some(instance) = &req.group_instance_id {
                let old: Vec<String> = group
                    .members
                    .iter()
                    .filter(|(_, m)| m.group_instance_id.as_ref() == Some(instance))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in old {
                    if let Some(m) = group.members.shift_remove(&id) {
                        if let Some(w) = m.join_waiter {
                            let _ = w.send(JoinResponse::error(ErrorCode::UnknownMemberId, &id));
                        }
                    }
                    if group.leader.as_deref() == Some(id.as_str()) {
                        group.leader = None;
                    }
                }
            } else if req.require_known_member_id {
                group.pending.insert(member_id.clone(), now);
                return Err(Box::new(JoinResponse::error(
                    ErrorCode::MemberIdRequired,
                    &member_id,
                )));
            }
        } else if !group.members.contains_key(&member_id)
            && group.pending.remove(&member_id).is_none()
        {
            return Err(Box::new(JoinResponse::error(
                ErrorCode::UnknownMemberId,
                &member_id,
            )));
        }

        let (tx, rx) = oneshot::channel();
        let known = group.members.contains_key(&member_id);
        if known && group.state == GroupState::Stable {
            let m = &group.members[&member_id];
            let unchanged = m.protocols == req.protocols;
            let is_leader = group.leader.as_deref() == Some(member_id.as_str());
            if unchanged && !is_leader {
                // Nothing changed: hand back the current generation without a rebalance.
                let _ = tx.send(JoinResponse {
                    error: ErrorCode::None,
                    generation_id: group.generation,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol.clone(),
                    leader: group.leader.clone().unwrap_or_default(),
                    member_id,
                    members: Vec::new(),
                });
                return Ok(rx);
            }
        }
        let rebalance_timeout =
            Duration::from_millis(req.rebalance_timeout_ms.max(req.session_timeout_ms) as u64);
        let member = group
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                group_instance_id: req.group_instance_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                session_timeout: Duration::ZERO,
                rebalance_timeout,
                protocol_type: req.protocol_type.clone(),
                protocols: Vec::new(),
                assignment: Bytes::new(),
                last_heartbeat: now,
                join_waiter: None,
                sync_waiter: None,
            });
        member.session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
        member.rebalance_timeout = rebalance_timeout;
        member.protocols = req.protocols.clone();
        member.protocol_type = req.protocol_type.clone();
        member.last_heartbeat = now;
        if let Some(old) = member.join_waiter.replace(tx) {
            let _ = old.send(JoinResponse::error(
                ErrorCode::RebalanceInProgress,
                &member_id,
            ));
        }
        group.protocol_type = Some(req.protocol_type.clone());
        let was_empty = group.state == GroupState::Empty;
        if group.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(group, now, was_empty);
        } else if let Some(until) = group.initial_delay_until {
            if !known && until > now {
                // New members keep extending the initial delay, up to the rebalance timeout.
                let cap = group.rebalance_deadline.unwrap_or(now);
                group.initial_delay_until =
                    Some((now + self.timeouts.initial_rebalance_delay).min(cap));
            }
        }
        Self::maybe_complete_join(group, now);
        self.persist(&req.group_id, group);
        Ok(rx)
    }

    fn prepare_rebalance(&self, group: &mut Group, now: Instant, initial: bool) {
        // Members waiting for a sync of the old generation must rejoin.
        for m in group.members.values_mut() {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResponse::error(ErrorCode::RebalanceInProgress));
            }
        }
        let timeout = group
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        group.state = GroupState::PreparingRebalance;
        group.rebalance_deadline = Some(now + timeout);
        group.initial_delay_until = (initial && !self.timeouts.initial_rebalance_delay.is_zero())
            .then(|| now + self.timeouts.initial_rebalance_delay.min(timeout));
    }

    /// Completes the join phase when every member has rejoined (after any initial
    /// delay), or when the rebalance deadline passed (dropping those who did not).
    fn maybe_complete_join(group: &mut Group, now: Instant) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = group.members.values().all(|m| m.join_waiter.is_some());
        let delayed = group.initial_delay_until.is_some_and(|t| t > now);
        let expired = group.rebalance_deadline.is_some_and(|t| t <= now);
        if !(expired || (all_joined && !delayed)) {
            return;
        }
        group.members.retain(|_, m| m.join_waiter.is_some());
        group.generation += 1;
        group.rebalance_deadline = None;
        group.initial_delay_until = None;
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.protocol = None;
            group.leader = None;
            group.dirty = true;
            return;
        }
        if !group
            .leader
            .as_ref()
            .is_some_and(|l| group.members.contains_key(l))
        {
            group.leader = group.members.keys().next().cloned();
        }
        let leader = group.leader.clone().unwrap_or_default();
        // The leader's most preferred protocol that every member supports.
        let protocol = group.members[&leader]
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .find(|n| {
                group
                    .members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
            .unwrap_or_default();
        group.protocol = Some(protocol.clone());
        group.state = GroupState::CompletingRebalance;
        let all: Vec<(String, Option<String>, Bytes)> = group
            .members
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    m.group_instance_id.clone(),
                    m.metadata_for(&protocol),
                )
            })
            .collect();
        for (id, m) in group.members.iter_mut() {
            m.last_heartbeat = now;
            m.assignment = Bytes::new();
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResponse {
                    error: ErrorCode::None,
                    generation_id: group.generation,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: Some(protocol.clone()),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader {
                        all.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }

    pub async fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResponse {
        let rx = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(group_id) else {
                return SyncResponse::error(ErrorCode::UnknownMemberId);
            };
            if !group.members.contains_key(member_id) {
                return SyncResponse::error(ErrorCode::UnknownMemberId);
            }
            if generation != group.generation {
                return SyncResponse::error(ErrorCode::IllegalGeneration);
            }
            let ok = |g: &Group, assignment: Bytes| SyncResponse {
                error: ErrorCode::None,
                protocol_type: g.protocol_type.clone(),
                protocol_name: g.protocol.clone(),
                assignment,
            };
            match group.state {
                GroupState::Empty | GroupState::PreparingRebalance => {
                    return SyncResponse::error(ErrorCode::RebalanceInProgress)
                }
                GroupState::Stable => {
                    return ok(group, group.members[member_id].assignment.clone())
                }
                GroupState::CompletingRebalance => {}
            }
            let (tx, rx) = oneshot::channel();
            if let Some(m) = group.members.get_mut(member_id) {
                m.sync_waiter = Some(tx);
                m.last_heartbeat = Instant::now();
            }
            if group.leader.as_deref() == Some(member_id) {
                let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                group.state = GroupState::Stable;
                group.dirty = true;
                let resp_type = group.protocol_type.clone();
                let resp_name = group.protocol.clone();
                for (id, m) in group.members.iter_mut() {
                    m.assignment = given.remove(id).unwrap_or_default();
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(SyncResponse {
                            error: ErrorCode::None,
                            protocol_type: resp_type.clone(),
                            protocol_name: resp_name.clone(),
                            assignment: m.assignment.clone(),
                        });
                    }
                }
            }
            self.persist(group_id, group);
            rx
        };
        rx.await
            .unwrap_or_else(|_| SyncResponse::error(ErrorCode::RebalanceInProgress))
    }

    pub fn heartbeat(&self, group_id: &str, member_id: &str, generation: i32) -> ErrorCode {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return ErrorCode::UnknownMemberId;
        };
        let Some(m) = group.members.get_mut(member_id) else {
            return ErrorCode::UnknownMemberId;
        };
        m.last_heartbeat = Instant::now();
        if generation != group.generation {
            return ErrorCode::IllegalGeneration;
        }
        match group.state {
            GroupState::PreparingRebalance => ErrorCode::RebalanceInProgress,
            _ => ErrorCode::None,
        }
    }

    /// Removes members; returns one error per member id.
    pub fn leave(&self, group_id: &str, member_ids: &[String]) -> Vec<ErrorCode> {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return vec![ErrorCode::UnknownMemberId; member_ids.len()];
        };
        let mut out = Vec::new();
        let mut removed = false;
        for id in member_ids {
            match group.members.shift_remove(id) {
                Some(m) => {
                    if let Some(w) = m.join_waiter {
                        let _ = w.send(JoinResponse::error(ErrorCode::UnknownMemberId, id));
                    }
                    if let Some(w) = m.sync_waiter {
                        let _ = w.send(SyncResponse::error(ErrorCode::UnknownMemberId));
                    }
                    removed = true;
                    out.push(ErrorCode::None);
                }
                None => out.push(ErrorCode::UnknownMemberId),
            }
        }
        if removed {
            self.after_removal(group, Instant::now());
        }
        self.persist(group_id, group);
        out
    }

    fn after_removal(&self, group: &mut Group, now: Instant) {
        if group
            .leader
            .as_ref()
            .is_some_and(|l| !group.members.contains_key(l))
        {
            group.leader = None;
        }
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if group.members.is_empty() {
                    group.state = GroupState::Empty;
                    group.generation += 1;
                    group.protocol = None;
                    group.dirty = true;
                } else {
                    self.prepare_rebalance(group, now, false);
                }
            }
            GroupState::PreparingRebalance => Self::maybe_complete_join(group, now),
            GroupState::Empty => {}
        }
    }

    /// Drives deadlines: rebalance timeouts, the initial delay, expired sessions.
    pub fn tick(&self) {
        let now = Instant::now();
        let mut groups = self.lock();
        for (id, group) in groups.iter_mut() {
            group
                .pending
                .retain(|_, t| now.duration_since(*t) < Duration::from_secs(300));
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|(_, m)| {
                    m.join_waiter.is_none()
                        && now.duration_since(m.last_heartbeat) > m.session_timeout
                })
                .map(|(id, _)| id.clone())
                .collect();
            for member in &expired {
                tracing::info!(group = %id, %member, "member session expired");
                if let Some(m) = group.members.shift_remove(member) {
                    if let Some(w) = m.sync_waiter {
                        let _ = w.send(SyncResponse::error(ErrorCode::UnknownMemberId));
                    }
                }
            }
            if !expired.is_empty() {
                self.after_removal(group, now);
            }
            Self::maybe_complete_join(group, now);
            self.persist(id, group);
        }
    }

    /// Whether a commit from this member and generation may be accepted.
    pub fn validate_commit(&self, group_id: &str, member_id: &str, generation: i32) -> ErrorCode {
        let groups = self.lock();
        let Some(group) = groups.get(group_id) else {
            return if generation < 0 {
                ErrorCode::None
            } else {
                ErrorCode::IllegalGeneration
            };
        };
        if generation < 0 && member_id.is_empty() {
            // A standalone (assign-mode) commit: only while nobody consumes as a group.
            return if group.state == GroupState::Empty {
                ErrorCode::None
            } else {
                ErrorCode::UnknownMemberId
            };
        }
        if !group.members.contains_key(member_id) {
            return ErrorCode::UnknownMemberId;
        }
        if generation != group.generation {
            return ErrorCode::IllegalGeneration;
        }
        if group.state == GroupState::CompletingRebalance {
            return ErrorCode::RebalanceInProgress;
        }
        ErrorCode::None
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.lock();
        let g = groups.get(group_id)?;
        let protocol = g.protocol.clone().unwrap_or_default();
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: g
                .members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// Groups with members, with their state and protocol type.
    pub fn list(&self) -> Vec<(String, GroupState, String)> {
        self.lock()
            .iter()
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.state,
                    g.protocol_type.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Forgets an empty group; NON_EMPTY_GROUP if it has members.
    pub fn remove_if_empty(&self, group_id: &str) -> ErrorCode {
        let mut groups = self.lock();
        match groups.get(group_id) {
            Some(g) if g.state != GroupState::Empty => ErrorCode::NonEmptyGroup,
            _ => {
                groups.remove(group_id);
                ErrorCode::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator() -> Arc<GroupCoordinator> {
        GroupCoordinator::new(
            GroupTimeouts {
                initial_rebalance_delay: Duration::ZERO,
                min_session_timeout_ms: 10,
                max_session_timeout_ms: 60_000,
            },
            None,
        )
    }

    fn join_req(member: &str) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: member.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 200,
            rebalance_timeout_ms: 500,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_known_member_id: true,
        }
    }

    #[tokio::test]
    async fn two_members_join_sync_and_one_leaves() {
        let c = coordinator();
        let first = c.join(join_req("")).await;
        assert_eq!(first.error, ErrorCode::MemberIdRequired);
        let a = c.join(join_req(&first.member_id)).await;
        assert_eq!(
            (a.error, a.generation_id, a.leader == a.member_id),
            (ErrorCode::None, 1, true)
        );
        let s = c
            .sync(
                "g",
                &a.member_id,
                1,
                vec![(a.member_id.clone(), Bytes::from_static(b"all"))],
            )
            .await;
        assert_eq!(s.assignment, Bytes::from_static(b"all"));
        assert_eq!(c.heartbeat("g", &a.member_id, 1), ErrorCode::None);

        // A second member triggers a rebalance; the first learns it from its heartbeat.
        let b_id = c.join(join_req("")).await.member_id;
        let c2 = c.clone();
        let b_join = tokio::spawn(async move { c2.join(join_req(&b_id)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            c.heartbeat("g", &a.member_id, 1),
            ErrorCode::RebalanceInProgress
        );
        let a2 = c.join(join_req(&a.member_id)).await;
        let b = b_join.await.unwrap();
        assert_eq!((a2.generation_id, b.generation_id), (2, 2));
        assert_eq!(a2.members.len(), 2, "the leader sees both members");
        assert!(b.members.is_empty());
        let c3 = c.clone();
        let (b_id, a_id) = (b.member_id.clone(), a2.member_id.clone());
        let b_sync = tokio::spawn(async move { c3.sync("g", &b_id, 2, vec![]).await });
        let a_sync = c
            .sync(
                "g",
                &a_id,
                2,
                vec![
                    (a_id.clone(), Bytes::from_static(b"p0")),
                    (b.member_id.clone(), Bytes::from_static(b"p1")),
                ],
            )
            .await;
        assert_eq!(a_sync.assignment, Bytes::from_static(b"p0"));
        assert_eq!(b_sync.await.unwrap().assignment, Bytes::from_static(b"p1"));
        assert_eq!(c.describe("g").unwrap().state, GroupState::Stable);

        assert_eq!(
            c.leave("g", std::slice::from_ref(&b.member_id)),
            vec![ErrorCode::None]
        );
        assert_eq!(c.heartbeat("g", &a_id, 2), ErrorCode::RebalanceInProgress);
        assert_eq!(
            c.validate_commit("g", &a_id, 1),
            ErrorCode::IllegalGeneration
        );
    }

    #[tokio::test]
    async fn a_silent_member_expires() {
        let c = coordinator();
        let mut req = join_req("");
        req.require_known_member_id = false;
        let a = c.join(req).await;
        assert_eq!(a.error, ErrorCode::None);
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.tick();
        assert_eq!(
            c.heartbeat("g", &a.member_id, a.generation_id),
            ErrorCode::UnknownMemberId
        );
        assert_eq!(c.describe("g").unwrap().state, GroupState::Empty);
    }
}
