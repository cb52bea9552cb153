//! A member of a worker group, spoken over the Kafka group protocol with
//! `protocol_type = "connect"` — what Kafka Connect's WorkerGroupMember does. librdkafka
//! only joins groups as a consumer, so this small client encodes the requests with
//! kafka-protocol: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    RequestHeader, ResponseHeader, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// Kafka's error codes this client acts on.
const NONE: i16 = 0;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

/// Frames larger than this are refused rather than allocated.
const MAX_FRAME: usize = 64 << 20;

/// One TCP connection to a broker, one request at a time.
struct Connection {
    stream: TcpStream,
    correlation: i32,
    client_id: StrBytes,
}

impl Connection {
    async fn open(addr: &str, client_id: &str) -> Result<Connection> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| Error::io(format!("connecting to {addr}"), e))?;
        stream.set_nodelay(true).ok();
        Ok(Connection {
            stream,
            correlation: 0,
            client_id: StrBytes::from_string(client_id.to_string()),
        })
    }

    async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp> {
        self.correlation = self.correlation.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(self.client_id.clone());
        let encode_err = |e: String| Error::Group(format!("encoding {key:?}: {e}"));
        let mut body = BytesMut::new();
        body.put_i32(0);
        header
            .encode(&mut body, key.request_header_version(version))
            .map_err(|e| encode_err(e.to_string()))?;
        request
            .encode(&mut body, version)
            .map_err(|e| encode_err(e.to_string()))?;
        let len = (body.len() - 4) as i32;
        body[..4].copy_from_slice(&len.to_be_bytes());
        let io = |e| Error::io(format!("{key:?} request"), e);
        self.stream.write_all(&body).await.map_err(io)?;
        let len = self.stream.read_i32().await.map_err(io)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_FRAME)
            .ok_or_else(|| Error::Group(format!("{key:?} response of {len} bytes refused")))?;
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).await.map_err(io)?;
        let mut buf = Bytes::from(buf);
        let decode_err = |e: String| Error::Group(format!("decoding the {key:?} response: {e}"));
        let resp_header = ResponseHeader::decode(&mut buf, key.response_header_version(version))
            .map_err(|e| decode_err(e.to_string()))?;
        if resp_header.correlation_id != self.correlation {
            return Err(decode_err(format!(
                "correlation id {} where {} was expected",
                resp_header.correlation_id, self.correlation
            )));
        }
        let resp = Resp::decode(&mut buf, version).map_err(|e| decode_err(e.to_string()))?;
        if buf.has_remaining() {
            tracing::debug!("{} unread bytes after {key:?} response", buf.remaining());
        }
        Ok(resp)
    }
}

/// What a JoinGroup round returned.
#[derive(Debug, Clone)]
pub struct Joined {
    pub generation: i32,
    pub member_id: String,
    pub leader: String,
    /// Every member's metadata; only the leader receives them.
    pub members: Vec<(String, Bytes)>,
}

impl Joined {
    pub fn is_leader(&self) -> bool {
        self.leader == self.member_id
    }
}

/// How a heartbeat went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    Alive,
    /// The group is rebalancing or forgot us: join again.
    Rejoin,
}

pub struct GroupMember {
    bootstrap: Vec<String>,
    group: String,
    client_id: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    conn: Option<Connection>,
    member_id: String,
    generation: i32,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

impl GroupMember {
    pub fn new(
        bootstrap_servers: &str,
        group: &str,
        client_id: &str,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
    ) -> GroupMember {
        GroupMember {
            bootstrap: bootstrap_servers
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            group: group.to_string(),
            client_id: client_id.to_string(),
            session_timeout_ms,
            rebalance_timeout_ms,
            conn: None,
            member_id: String::new(),
            generation: -1,
        }
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// Asks any bootstrap broker for the group's coordinator and connects to it.
    async fn coordinator(&mut self) -> Result<&mut Connection> {
        if self.conn.is_none() {
            let mut last =
                Error::Group(format!("no bootstrap.servers to find group {}", self.group));
            let mut found = None;
            for addr in &self.bootstrap {
                let attempt = async {
                    let mut c = Connection::open(addr, &self.client_id).await?;
                    let mut req = FindCoordinatorRequest::default();
                    req.key = str_bytes(&self.group);
                    let resp: FindCoordinatorResponse =
                        c.call(ApiKey::FindCoordinator, 2, &req).await?;
                    if resp.error_code != NONE {
                        return Err(Error::Group(format!(
                            "FindCoordinator for group {} failed with error code {}",
                            self.group, resp.error_code
                        )));
                    }
                    Ok(format!("{}:{}", resp.host.as_str(), resp.port))
                };
                match attempt.await {
                    Ok(a) => {
                        found = Some(a);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            let addr = found.ok_or(last)?;
            self.conn = Some(Connection::open(&addr, &self.client_id).await?);
        }
        // The branch above fills `conn` or returns.
        self.conn
            .as_mut()
            .ok_or_else(|| Error::Group("no coordinator connection".into()))
    }

    /// A coordinator error drops the connection so the next call looks it up again.
    fn coordinator_error(&mut self, code: i16) -> bool {
        if matches!(
            code,
            COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR
        ) {
            self.conn = None;
            return true;
        }
        false
    }

    /// Joins (or rejoins) the group with this worker's metadata; waits for the round.
    pub async fn join(&mut self, protocol: &str, metadata: Bytes) -> Result<Joined> {
        loop {
            let mut req = JoinGroupRequest::default();
            req.group_id = GroupId(str_bytes(&self.group));
            req.session_timeout_ms = self.session_timeout_ms;
            req.rebalance_timeout_ms = self.rebalance_timeout_ms;
            req.member_id = str_bytes(&self.member_id);
            req.protocol_type = str_bytes("connect");
            let mut p = JoinGroupRequestProtocol::default();
            p.name = str_bytes(protocol);
            p.metadata = metadata.clone();
            req.protocols = vec![p];
            let resp: JoinGroupResponse = match self.coordinator().await {
                Ok(c) => match c.call(ApiKey::JoinGroup, 5, &req).await {
                    Ok(r) => r,
                    Err(e) => {
                        self.conn = None;
                        return Err(e);
                    }
                },
                Err(e) => return Err(e),
            };
            match resp.error_code {
                NONE => {
                    self.member_id = resp.member_id.to_string();
                    self.generation = resp.generation_id;
                    return Ok(Joined {
                        generation: resp.generation_id,
                        member_id: self.member_id.clone(),
                        leader: resp.leader.to_string(),
                        members: resp
                            .members
                            .into_iter()
                            .map(|m| (m.member_id.to_string(), m.metadata))
                            .collect(),
                    });
                }
                MEMBER_ID_REQUIRED => self.member_id = resp.member_id.to_string(),
                UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => self.member_id.clear(),
                REBALANCE_IN_PROGRESS => {}
                code if self.coordinator_error(code) => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await
                }
                code => {
                    return Err(Error::Group(format!(
                        "JoinGroup for group {} failed with error code {code}",
                        self.group
                    )))
                }
            }
        }
    }

    /// Sends the leader's assignments (empty for followers) and returns this member's.
    /// `Ok(None)`: the round was superseded; join again.
    pub async fn sync(&mut self, assignments: Vec<(String, Bytes)>) -> Result<Option<Bytes>> {
        let mut req = SyncGroupRequest::default();
        req.group_id = GroupId(str_bytes(&self.group));
        req.generation_id = self.generation;
        req.member_id = str_bytes(&self.member_id);
        req.assignments = assignments
            .into_iter()
            .map(|(m, a)| {
                let mut x = SyncGroupRequestAssignment::default();
                x.member_id = str_bytes(&m);
                x.assignment = a;
                x
            })
            .collect();
        let resp: SyncGroupResponse = match self
            .coordinator()
            .await?
            .call(ApiKey::SyncGroup, 3, &req)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.conn = None;
                return Err(e);
            }
        };
        match resp.error_code {
            NONE => Ok(Some(resp.assignment)),
            REBALANCE_IN_PROGRESS => Ok(None),
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                self.member_id.clear();
                Ok(None)
            }
            code if self.coordinator_error(code) => Ok(None),
            code => Err(Error::Group(format!(
                "SyncGroup for group {} failed with error code {code}",
                self.group
            ))),
        }
    }

    pub async fn heartbeat(&mut self) -> Result<Beat> {
        let mut req = HeartbeatRequest::default();
        req.group_id = GroupId(str_bytes(&self.group));
        req.generation_id = self.generation;
        req.member_id = str_bytes(&self.member_id);
        let resp: HeartbeatResponse = match self
            .coordinator()
            .await?
            .call(ApiKey::Heartbeat, 3, &req)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.conn = None;
                return Err(e);
            }
        };
        match resp.error_code {
            NONE => Ok(Beat::Alive),
            REBALANCE_IN_PROGRESS => Ok(Beat::Rejoin),
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                self.member_id.clear();
                Ok(Beat::Rejoin)
            }
            code if self.coordinator_error(code) => Ok(Beat::Rejoin),
            code => Err(Error::Group(format!(
                "Heartbeat for group {} failed with error code {code}",
                self.group
            ))),
        }
    }

    /// Leaves the group so the others rebalance at once instead of after the session timeout.
    pub async fn leave(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        let mut req = LeaveGroupRequest::default();
        req.group_id = GroupId(str_bytes(&self.group));
        let mut m = MemberIdentity::default();
        m.member_id = str_bytes(&self.member_id);
        req.members = vec![m];
        if let Ok(c) = self.coordinator().await {
            let r: Result<LeaveGroupResponse> = c.call(ApiKey::LeaveGroup, 3, &req).await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "LeaveGroup failed");
            }
        }
        self.member_id.clear();
    }
}
