//! Consumer groups: the classic-protocol coordinator and the committed-offset store.

pub mod coordinator;
pub mod offsets;

pub use coordinator::{
    GroupCoordinator, GroupState, GroupTimeouts, JoinRequest, JoinResponse, SyncResponse,
};
pub use offsets::{Committed, OffsetStore, OFFSETS_TOPIC};
