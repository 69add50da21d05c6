//! The rule that makes every party of a case converge: **one sequencer per
//! case**.
//!
//! The node where a case was written (the requester's, the alert's or
//! notification's sender's) is its *sequencer*. Its log of the case's steps
//! is final; every other node holds a copy of that log.
//!
//! - A step taken at the sequencer is checked against the case as it stands
//!   there, appended to the log and sent to every other holder.
//! - A step taken at another node is checked against that node's view,
//!   kept as *pending* and proposed to the sequencer. The sequencer takes
//!   proposals from one node in the order they were made and checks each
//!   against the case as it stands **when it arrives**: if the state machine
//!   allows it, it is logged as applied; if not (another party's step came
//!   first), it is logged as *overtaken*, naming the step that came first.
//!   Either way the entry goes to every holder, the proposer included.
//! - A holder applies the sequencer's entries in log order. A node's view
//!   of a case is the sequencer's log plus its own pending steps; a pending
//!   step leaves the view when its entry comes back.
//!
//! When every message has arrived, every holder has the same log (same
//! entries, positions and outcomes) and so the same state. Officials whose
//! step lost read it in the history: "accept the request — overtaken by
//! withdraw the request".
//!
//! Everything here is pure: the node stores a [`Replica`] per case, in the
//! same write as the envelopes carrying the [`Outgoing`] messages, and
//! delivery brings each message exactly once, in order per pair of nodes.
//! The replica does not rely on that: duplicates are ignored and entries
//! or proposals that arrive early wait for those before them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{CaseState, Retention};
use crate::{
    Actor, CaseAction, CaseId, Content, Date, Destination, Effect, NodeAddress, StepId, Timestamp,
    TransitionError,
};

/// A step an official took, as it travels from node to node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The step's id, the same on every node.
    pub id: StepId,
    /// Who took it.
    pub actor: Actor,
    /// When (the moment every node uses to apply it).
    pub at: Timestamp,
    /// What they did.
    pub action: CaseAction,
    /// What the step says: answers to standard questions, free text.
    pub content: Content,
}

/// What became of a step in the sequencer's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The step changed the case.
    Applied,
    /// The step was not taken: when it reached the sequencer the case no
    /// longer allowed it.
    Overtaken {
        /// The position of the entry that changed the case first, when
        /// another step came between the proposer's view and its step.
        by: Option<u64>,
        /// Why the state machine refused it then.
        reason: String,
    },
}

/// One entry of a case's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its place in the log, from 1.
    pub position: u64,
    /// The node where the step was taken.
    pub node: NodeAddress,
    /// The step.
    pub step: Step,
    /// Applied or overtaken.
    pub outcome: Outcome,
}

/// What a node needs to start its copy of a case: the case as it was
/// written and the log so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    /// The case's sequencer.
    pub sequencer: NodeAddress,
    /// The case as it was first written.
    pub initial: CaseState,
    /// Every entry before those of the message.
    pub entries: Vec<Entry>,
}

/// A message about a case between two nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseMessage {
    /// A step taken at a node that is not the sequencer, for the sequencer
    /// to log.
    Propose {
        /// The proposer's count of its proposals for this case, from 1.
        counter: u64,
        /// The log position the proposer's view was based on.
        based_on: u64,
        /// The step.
        step: Box<Step>,
    },
    /// Entries of the sequencer's log, in order.
    Log {
        /// For a node that does not hold the case yet.
        opening: Option<Box<Opening>>,
        /// The new entries.
        entries: Vec<Entry>,
    },
}

/// A message a replica asks its node to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The node it goes to.
    pub to: NodeAddress,
    /// What it says.
    pub message: CaseMessage,
}

/// Why a message about a case was refused. Nothing of the case changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// A proposal reached a node that is not the case's sequencer.
    #[error("node {me} is not the sequencer of case {case}; {sequencer} is")]
    NotSequencer {
        /// The case.
        case: CaseId,
        /// This node.
        me: NodeAddress,
        /// The case's sequencer.
        sequencer: NodeAddress,
    },
    /// Log entries came from a node that is not the case's sequencer.
    #[error("log entries of case {case} may only come from its sequencer {sequencer}, not {from}")]
    NotFromSequencer {
        /// The case.
        case: CaseId,
        /// Who sent them.
        from: NodeAddress,
        /// The case's sequencer.
        sequencer: NodeAddress,
    },
    /// This node does not hold the case and the message does not open it.
    #[error("case {0} is not held here and the message does not carry it; send the opening first")]
    Unknown(CaseId),
    /// An entry logged as applied cannot be applied to the case here: the
    /// logs disagree.
    #[error("entry {position} of case {case} cannot be applied here: {reason}")]
    Incoherent {
        /// The case.
        case: CaseId,
        /// The entry.
        position: u64,
        /// Why.
        reason: String,
    },
    /// An entry logged as applied is a step the case does not allow.
    #[error("entry {position} of case {case} cannot be applied: {error}")]
    Refused {
        /// The case.
        case: CaseId,
        /// The entry.
        position: u64,
        /// What the state machine said.
        error: TransitionError,
    },
    /// A step of an official of one country, said to be taken at a node of
    /// another.
    #[error("node {node} may only speak for officials of {}, not of {country}", node.country)]
    ForeignActor {
        /// The node named.
        node: NodeAddress,
        /// The official's country.
        country: crate::Country,
    },
    /// A message about another case.
    #[error("{0}")]
    Mismatch(String),
}

/// The deadline and retention clocks, as the effects of the applied
/// entries set them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clocks {
    /// The running reply-by date, if any.
    pub deadline: Option<Date>,
    /// The data-protection clock, if the case is closed.
    pub retention: Option<Retention>,
}

impl Clocks {
    /// Carries out the clock effects of one transition, in order.
    pub fn apply(&mut self, effects: &[Effect]) {
        for effect in effects {
            match effect {
                Effect::StartDeadline { due } => self.deadline = Some(*due),
                Effect::StopDeadline => self.deadline = None,
                Effect::StartRetention { closed_at } => {
                    self.retention = Some(Retention {
                        closed_at: *closed_at,
                    });
                }
                Effect::StopRetention => self.retention = None,
                Effect::Deliver(_) | Effect::Notify(_) | Effect::Forget => {}
            }
        }
    }
}

/// A step of this node not yet in the sequencer's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Its proposal counter.
    pub counter: u64,
    /// The log position the view was at when it was taken.
    pub based_on: u64,
    /// The step.
    pub step: Step,
}

/// One node's copy of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    me: NodeAddress,
    sequencer: NodeAddress,
    initial: CaseState,
    /// The case after every applied entry of the log.
    state: CaseState,
    clocks: Clocks,
    log: Vec<Entry>,
    pending: Vec<Pending>,
    /// The counter of this node's last proposal.
    proposed: u64,
    /// Sequencer: the counter of the last proposal logged, per node.
    taken: BTreeMap<NodeAddress, u64>,
    /// Sequencer: proposals that arrived before an earlier one of their node.
    early: BTreeMap<(NodeAddress, u64), (u64, Step)>,
    /// Sequencer: the nodes that hold the case (were sent its opening).
    holders: BTreeSet<NodeAddress>,
    /// Holder: entries that arrived before an earlier one.
    ahead: BTreeMap<u64, Entry>,
}

/// What [`Replica::act`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acted {
    /// The case as this node now shows it.
    pub view: CaseState,
    /// The effects of the step.
    pub effects: Vec<Effect>,
    /// Messages to send.
    pub outgoing: Vec<Outgoing>,
}

/// Turns a destination (a party authority, an addressed country) into the
/// node that serves it, or says that none is known.
pub trait Resolve {
    /// The node serving `destination`.
    fn node(&self, destination: &Destination) -> Option<NodeAddress>;
}

impl<F: Fn(&Destination) -> Option<NodeAddress>> Resolve for F {
    fn node(&self, destination: &Destination) -> Option<NodeAddress> {
        self(destination)
    }
}

impl Replica {
    /// A case just written at `me`, which becomes its sequencer.
    pub fn create(me: NodeAddress, initial: CaseState) -> Replica {
        Replica {
            sequencer: me.clone(),
            me,
            state: initial.clone(),
            initial,
            clocks: Clocks::default(),
            log: Vec::new(),
            pending: Vec::new(),
            proposed: 0,
            taken: BTreeMap::new(),
            early: BTreeMap::new(),
            holders: BTreeSet::new(),
            ahead: BTreeMap::new(),
        }
    }

    /// A copy of a case at `me`, from the opening the sequencer sent.
    pub fn open(me: NodeAddress, opening: Opening) -> Result<Replica, LogError> {
        let mut replica = Replica::create(me, opening.initial);
        replica.sequencer = opening.sequencer;
        for entry in opening.entries {
            replica.append(entry)?;
        }
        Ok(replica)
    }

    /// A copy of a case at `me`, from the first message `from` sent about
    /// it: log entries with the opening, from the case's sequencer.
    pub fn from_message(
        me: NodeAddress,
        case: CaseId,
        from: &NodeAddress,
        message: CaseMessage,
    ) -> Result<Replica, LogError> {
        let CaseMessage::Log {
            opening: Some(opening),
            entries,
        } = message
        else {
            return Err(LogError::Unknown(case));
        };
        if opening.sequencer != *from {
            return Err(LogError::NotFromSequencer {
                case,
                from: from.clone(),
                sequencer: opening.sequencer,
            });
        }
        if opening.initial.id() != case {
            return Err(LogError::Mismatch(format!(
                "the message names case {case} but carries case {}",
                opening.initial.id()
            )));
        }
        let mut replica = Replica::open(me, *opening)?;
        replica.receive_entries(entries)?;
        Ok(replica)
    }

    /// The case id.
    pub fn id(&self) -> CaseId {
        self.initial.id()
    }

    /// The node whose log is final.
    pub fn sequencer(&self) -> &NodeAddress {
        &self.sequencer
    }

    /// Whether this node is the case's sequencer.
    pub fn is_sequencer(&self) -> bool {
        self.me == self.sequencer
    }

    /// The case as it was written.
    pub fn initial(&self) -> &CaseState {
        &self.initial
    }

    /// The case after every entry of the sequencer's log this node holds.
    pub fn confirmed(&self) -> &CaseState {
        &self.state
    }

    /// The log as this node holds it.
    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    /// This node's steps not yet in the log.
    pub fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// The nodes the sequencer has sent the case to.
    pub fn holder_nodes(&self) -> &BTreeSet<NodeAddress> {
        &self.holders
    }

    /// The case as this node shows it: the log, then this node's pending
    /// steps that still apply.
    pub fn view(&self) -> CaseState {
        self.view_with_clocks().0
    }

    /// The clocks as this node shows them.
    pub fn clocks(&self) -> Clocks {
        self.view_with_clocks().1
    }

    fn view_with_clocks(&self) -> (CaseState, Clocks) {
        let mut state = self.state.clone();
        let mut clocks = self.clocks;
        for pending in &self.pending {
            if let Ok(t) = state.apply(&pending.step.actor, pending.step.at, &pending.step.action) {
                clocks.apply(&t.effects);
                state = t.state;
            }
        }
        (state, clocks)
    }

    /// Takes `step` at this node: checked against the view, then logged
    /// (sequencer) or proposed to the sequencer.
    pub fn act(&mut self, step: Step, resolve: &impl Resolve) -> Result<Acted, TransitionError> {
        let transition = self.view().apply(&step.actor, step.at, &step.action)?;
        if self.is_sequencer() {
            let entry = Entry {
                position: self.log.len() as u64 + 1,
                node: self.me.clone(),
                step,
                outcome: Outcome::Applied,
            };
            let first = self.log.len();
            self.append(entry)
                .expect("a step checked against the sequencer's state applies");
            let outgoing = self.distribute(first, resolve);
            return Ok(Acted {
                view: self.state.clone(),
                effects: transition.effects,
                outgoing,
            });
        }
        self.proposed += 1;
        let pending = Pending {
            counter: self.proposed,
            based_on: self.log.len() as u64,
            step,
        };
        let message = CaseMessage::Propose {
            counter: pending.counter,
            based_on: pending.based_on,
            step: Box::new(pending.step.clone()),
        };
        self.pending.push(pending);
        Ok(Acted {
            view: self.view(),
            effects: transition.effects,
            outgoing: vec![Outgoing {
                to: self.sequencer.clone(),
                message,
            }],
        })
    }

    /// Takes a message about this case from node `from`. Returns the
    /// messages to send in turn.
    pub fn receive(
        &mut self,
        from: &NodeAddress,
        message: CaseMessage,
        resolve: &impl Resolve,
    ) -> Result<Vec<Outgoing>, LogError> {
        match message {
            CaseMessage::Propose {
                counter,
                based_on,
                step,
            } => self.propose(from, counter, based_on, *step, resolve),
            CaseMessage::Log {
                opening: _,
                entries,
            } => {
                if *from != self.sequencer {
                    return Err(LogError::NotFromSequencer {
                        case: self.id(),
                        from: from.clone(),
                        sequencer: self.sequencer.clone(),
                    });
                }
                self.receive_entries(entries)?;
                Ok(vec![])
            }
        }
    }

    fn propose(
        &mut self,
        from: &NodeAddress,
        counter: u64,
        based_on: u64,
        step: Step,
        resolve: &impl Resolve,
    ) -> Result<Vec<Outgoing>, LogError> {
        if !self.is_sequencer() {
            return Err(LogError::NotSequencer {
                case: self.id(),
                me: self.me.clone(),
                sequencer: self.sequencer.clone(),
            });
        }
        if step.actor.country != from.country {
            return Err(LogError::ForeignActor {
                node: from.clone(),
                country: step.actor.country,
            });
        }
        let last = self.taken.get(from).copied().unwrap_or(0);
        if counter <= last {
            return Ok(vec![]);
        }
        self.early.insert((from.clone(), counter), (based_on, step));
        let first = self.log.len();
        let mut next = last + 1;
        while let Some((based_on, step)) = self.early.remove(&(from.clone(), next)) {
            let position = self.log.len() as u64 + 1;
            let outcome = match self.state.apply(&step.actor, step.at, &step.action) {
                Ok(_) => Outcome::Applied,
                Err(err) => Outcome::Overtaken {
                    by: self
                        .log
                        .iter()
                        .skip(based_on.min(self.log.len() as u64) as usize)
                        .find(|e| e.outcome == Outcome::Applied && e.node != *from)
                        .map(|e| e.position),
                    reason: err.to_string(),
                },
            };
            let entry = Entry {
                position,
                node: from.clone(),
                step,
                outcome,
            };
            self.append(entry)
                .expect("an entry the sequencer found applicable applies");
            self.taken.insert(from.clone(), next);
            next += 1;
        }
        Ok(self.distribute(first, resolve))
    }

    fn receive_entries(&mut self, entries: Vec<Entry>) -> Result<(), LogError> {
        for entry in entries {
            let position = entry.position;
            if position <= self.log.len() as u64 {
                continue;
            }
            self.ahead.insert(position, entry);
        }
        while let Some(entry) = self.ahead.remove(&(self.log.len() as u64 + 1)) {
            self.append(entry)?;
        }
        Ok(())
    }

    /// Appends the next entry of the log, applying it if it was applied.
    fn append(&mut self, entry: Entry) -> Result<(), LogError> {
        let (case, position) = (self.id(), entry.position);
        let incoherent = |reason: String| LogError::Incoherent {
            case,
            position,
            reason,
        };
        if position != self.log.len() as u64 + 1 {
            return Err(incoherent(format!(
                "the log here has {} entries",
                self.log.len()
            )));
        }
        if entry.step.actor.country != entry.node.country {
            return Err(LogError::ForeignActor {
                node: entry.node.clone(),
                country: entry.step.actor.country,
            });
        }
        if entry.outcome == Outcome::Applied {
            let t = self
                .state
                .apply(&entry.step.actor, entry.step.at, &entry.step.action)
                .map_err(|error| LogError::Refused {
                    case,
                    position,
                    error,
                })?;
            self.clocks.apply(&t.effects);
            self.state = t.state;
        }
        if entry.node == self.me {
            self.pending.retain(|p| p.step.id != entry.step.id);
        }
        self.log.push(entry);
        Ok(())
    }

    /// The messages that carry the log from index `first` on to every
    /// holder but this node, with the opening for nodes that do not hold
    /// the case yet.
    fn distribute(&mut self, first: usize, resolve: &impl Resolve) -> Vec<Outgoing> {
        if first >= self.log.len() || !self.state.is_shared() && self.holders.is_empty() {
            return vec![];
        }
        let mut openings = BTreeMap::new();
        for destination in self.state.holders() {
            if let Some(node) = resolve.node(&destination)
                && node != self.me
                && !self.holders.contains(&node)
            {
                self.holders.insert(node.clone());
                // A new holder gets the log before these entries with them.
                openings.insert(
                    node,
                    Opening {
                        sequencer: self.sequencer.clone(),
                        initial: self.initial.clone(),
                        entries: self.log[..first].to_vec(),
                    },
                );
            }
        }
        let entries = self.log[first..].to_vec();
        let mut outgoing = Vec::new();
        for node in &self.holders {
            outgoing.push(Outgoing {
                to: node.clone(),
                message: CaseMessage::Log {
                    opening: openings.remove(node).map(Box::new),
                    entries: entries.clone(),
                },
            });
        }
        outgoing
    }
}
