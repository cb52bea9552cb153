//! Consumer groups: the classic-protocol coordinator, the committed-offset store and
//! the group metadata records that let groups survive a restart.

pub mod coordinator;
pub mod metadata;
pub mod offsets;

pub use coordinator::{
    GroupCoordinator, GroupState, GroupTimeouts, JoinRequest, JoinResponse, SyncResponse,
};
pub use offsets::{Committed, OffsetStore, OFFSETS_TOPIC};
