//! [`CaseDesk`]: the cases of a node, as a handle the web UI and the
//! node's own commands share.
//!
//! A desk holds what taking a step needs (the node's address, store,
//! delivery and signing key) and nothing of the node's links, so it can be
//! cloned into the web UI's adapter. [`Node`] offers the same calls.

use std::sync::Arc;

use imi_protocol::{
    Actor, CaseAction, CaseId, Content, Date, NodeAddress, SigningKey, TaskOwner, Timestamp,
};

use super::tasks::{Dated, TaskRow};
use super::{CaseApp, CaseError, CaseRecord, CaseState};
use crate::delivery::Delivery;
use crate::node::Node;
use crate::store::{Store, StoreError};

/// The cases of one node: read them, and take steps in them.
#[derive(Clone)]
pub struct CaseDesk {
    address: NodeAddress,
    store: Store,
    delivery: Delivery,
    key: Arc<SigningKey>,
}

impl std::fmt::Debug for CaseDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseDesk")
            .field("node", &self.address)
            .finish_non_exhaustive()
    }
}

impl CaseDesk {
    /// The node's address.
    pub fn address(&self) -> &NodeAddress {
        &self.address
    }

    /// The node's store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    pub(crate) fn signing_key(&self) -> &Arc<SigningKey> {
        &self.key
    }
}

impl Node<CaseApp> {
    /// The node's cases, as a handle that can be shared (the web UI's).
    pub fn cases(&self) -> CaseDesk {
        CaseDesk {
            address: self.address().clone(),
            store: self.store().clone(),
            delivery: self.delivery().clone(),
            key: Arc::clone(self.signing_key()),
        }
    }

    /// The case as stored here.
    pub fn case(&self, case: CaseId) -> Result<Option<CaseRecord>, StoreError> {
        self.cases().case(case)
    }

    /// How many cases are stored here.
    pub fn case_count(&self) -> Result<u64, StoreError> {
        self.cases().case_count()
    }

    /// Stores a new draft; see [`CaseDesk::create`].
    pub async fn create(&self, state: CaseState, actor: Actor) -> Result<CaseId, CaseError> {
        self.cases().create(state, actor).await
    }

    /// Takes a step; see [`CaseDesk::act`].
    pub async fn act(
        &self,
        case: CaseId,
        actor: Actor,
        action: CaseAction,
        content: Content,
    ) -> Result<CaseRecord, CaseError> {
        self.cases().act(case, actor, action, content).await
    }

    /// Writes a case and takes its first step; see [`CaseDesk::open_case`].
    pub async fn open_case(
        &self,
        state: CaseState,
        actor: Actor,
        action: CaseAction,
        content: Content,
    ) -> Result<CaseRecord, CaseError> {
        self.cases().open_case(state, actor, action, content).await
    }

    /// The tasks waiting for any of `owners`; see [`CaseDesk::tasks_of`].
    pub fn tasks_of(&self, owners: &[TaskOwner]) -> Result<Vec<TaskRow>, StoreError> {
        self.cases().tasks_of(owners)
    }

    /// The tasks of `actor`'s "My tasks"; see [`CaseDesk::tasks_for`].
    pub fn tasks_for(&self, actor: &Actor) -> Result<Vec<TaskRow>, StoreError> {
        self.cases().tasks_for(actor)
    }

    /// Requests overdue on `day`; see [`CaseDesk::due_before`].
    pub fn due_before(&self, day: Date) -> Result<Vec<Dated>, StoreError> {
        self.cases().due_before(day)
    }

    /// Cases closed before `time`; see [`CaseDesk::closed_before`].
    pub fn closed_before(&self, time: Timestamp) -> Result<Vec<Dated>, StoreError> {
        self.cases().closed_before(time)
    }
}
