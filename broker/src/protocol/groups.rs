//! Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, ListGroups, DescribeGroups, DeleteGroups. The state machine lives in
//! [`crate::group::coordinator`]; this module maps messages onto it.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;

use super::sb;
use crate::broker::BrokerState;
use crate::error::ErrorCode;
use crate::group::{GroupState, JoinRequest};

pub(crate) fn find_coordinator(
    state: &BrokerState,
    req: FindCoordinatorRequest,
    _version: i16,
) -> FindCoordinatorResponse {
    let mut resp = FindCoordinatorResponse::default();
    // Key type 0 is a group, 1 a transactional id: this broker coordinates both.
    if !(0..=1).contains(&req.key_type) {
        resp.error_code = ErrorCode::InvalidRequest.code();
        resp.error_message = Some(sb(format!("unknown coordinator key type {}", req.key_type)));
        resp.node_id = BrokerId(-1);
        resp.port = -1;
        return resp;
    }
    resp.node_id = BrokerId(state.config.node_id);
    resp.host = sb(&state.advertised_host);
    resp.port = state.advertised_port;
    resp
}

pub(crate) async fn join_group(
    state: &BrokerState,
    req: JoinGroupRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> JoinGroupResponse {
    let join = JoinRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id,
        client_host,
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let r = state.groups.join(join).await;
    let mut resp = JoinGroupResponse::default();
    resp.error_code = r.error.code();
    resp.generation_id = r.generation_id;
    resp.protocol_type = r.protocol_type.map(sb);
    resp.protocol_name = if version >= 7 {
        r.protocol_name.map(sb)
    } else {
        Some(sb(r.protocol_name.unwrap_or_default()))
    };
    resp.leader = sb(r.leader);
    resp.member_id = sb(r.member_id);
    resp.members = r
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = sb(id);
            m.group_instance_id = instance.map(sb);
            m.metadata = metadata;
            m
        })
        .collect();
    resp
}

pub(crate) async fn sync_group(state: &BrokerState, req: SyncGroupRequest) -> SyncGroupResponse {
    let assignments = req
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let r = state
        .groups
        .sync(
            req.group_id.0.as_str(),
            req.member_id.as_str(),
            req.generation_id,
            assignments,
        )
        .await;
    let mut resp = SyncGroupResponse::default();
    resp.error_code = r.error.code();
    resp.protocol_type = r.protocol_type.map(sb);
    resp.protocol_name = r.protocol_name.map(sb);
    resp.assignment = r.assignment;
    resp
}

pub(crate) fn heartbeat(state: &BrokerState, req: HeartbeatRequest) -> HeartbeatResponse {
    let mut resp = HeartbeatResponse::default();
    resp.error_code = state
        .groups
        .heartbeat(
            req.group_id.0.as_str(),
            req.member_id.as_str(),
            req.generation_id,
        )
        .code();
    resp
}

pub(crate) fn leave_group(
    state: &BrokerState,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let mut resp = LeaveGroupResponse::default();
    let group = req.group_id.0.to_string();
    if version < 3 {
        let errors = state.groups.leave(&group, &[req.member_id.to_string()]);
        resp.error_code = errors.first().copied().unwrap_or(ErrorCode::None).code();
        return resp;
    }
    let ids: Vec<String> = req
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    let errors = state.groups.leave(&group, &ids);
    resp.members = req
        .members
        .iter()
        .zip(errors)
        .map(|(m, e)| {
            let mut r = MemberResponse::default();
            r.member_id = m.member_id.clone();
            r.group_instance_id = m.group_instance_id.clone();
            r.error_code = e.code();
            r
        })
        .collect();
    resp
}

pub(crate) fn list_groups(state: &BrokerState, req: ListGroupsRequest) -> ListGroupsResponse {
    let mut resp = ListGroupsResponse::default();
    let mut groups: Vec<(String, String, String)> = state
        .groups
        .list()
        .into_iter()
        .map(|(id, s, t)| (id, s.name().to_string(), t))
        .collect();
    // Groups known only by their committed offsets (e.g. after a restart) are Empty.
    for id in state.offsets.groups() {
        if !groups.iter().any(|g| g.0 == id) {
            groups.push((id, "Empty".to_string(), "consumer".to_string()));
        }
    }
    groups.sort();
    resp.groups = groups
        .into_iter()
        .filter(|(_, s, _)| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|f| f.as_str().eq_ignore_ascii_case(s))
        })
        .map(|(id, s, t)| {
            let mut g = ListedGroup::default();
            g.group_id = GroupId(sb(id));
            g.protocol_type = sb(if t.is_empty() {
                "consumer".to_string()
            } else {
                t
            });
            g.group_state = sb(s);
            g
        })
        .collect();
    resp
}

pub(crate) fn describe_groups(
    state: &BrokerState,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut resp = DescribeGroupsResponse::default();
    for id in req.groups {
        let mut g = DescribedGroup::default();
        g.group_id = id.clone();
        match state.groups.describe(id.0.as_str()) {
            Some(d) => {
                g.group_state = sb(d.state.name());
                g.protocol_type = sb(d.protocol_type);
                g.protocol_data = sb(d.protocol);
                g.members = d
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut dm = DescribedGroupMember::default();
                        dm.member_id = sb(m.member_id);
                        dm.group_instance_id = m.group_instance_id.map(sb);
                        dm.client_id = sb(m.client_id);
                        dm.client_host = sb(m.client_host);
                        dm.member_metadata = m.metadata;
                        dm.member_assignment = m.assignment;
                        dm
                    })
                    .collect();
            }
            None if state.offsets.has_group(id.0.as_str()) => {
                g.group_state = sb(GroupState::Empty.name());
                g.protocol_type = sb("consumer");
            }
            // Kafka describes an unknown group as Dead, without an error.
            None => g.group_state = sb("Dead"),
        }
        resp.groups.push(g);
    }
    resp
}

pub(crate) fn delete_groups(state: &BrokerState, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut resp = DeleteGroupsResponse::default();
    for id in req.groups_names {
        let name = id.0.to_string();
        let mut r = DeletableGroupResult::default();
        r.group_id = id;
        let known = state.groups.describe(&name).is_some() || state.offsets.has_group(&name);
        let code = if !known {
            ErrorCode::GroupIdNotFound
        } else {
            match state.groups.remove_if_empty(&name) {
                ErrorCode::None => match state.offsets.delete_group(&name) {
                    Ok(()) => ErrorCode::None,
                    Err(e) => e.code(),
                },
                other => other,
            }
        };
        r.error_code = code.code();
        resp.results.push(r);
    }
    resp
}
