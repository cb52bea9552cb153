//! Transactions (KIP-98): the coordinator of transactional ids and their records in
//! `__transaction_state`. The partitions' side (open transactions, the last stable
//! offset, aborted transactions, markers) is in [`crate::log::transactions`].

pub mod coordinator;
pub mod metadata;

pub use coordinator::{Producing, TxnCoordinator, TxnLimits, TRANSACTION_STATE_TOPIC};
pub use metadata::{TxnMetadata, TxnState};
