//! The processor graph. The DSL builds it out of typed nodes; each node keeps factories
//! for its children, and a task instantiates the graph once for itself, so every task
//! owns its processors and its store instances. Nodes that read the same partitions
//! (a join's two sides, a merge) share one sub-topology; a repartition topic starts a
//! new one. A task is one sub-topology on one partition number.

pub(crate) mod cache;
pub mod context;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

pub use context::TaskCtx;

use crate::record::{RawRecord, Record};
use crate::state::StoreSpec;

pub(crate) type Sink<K, V> = Box<dyn FnMut(&mut TaskCtx, Record<K, V>) + Send>;
pub(crate) type Factory<K, V> = Arc<dyn Fn(&mut BuildCtx) -> Sink<K, V> + Send + Sync>;
pub(crate) type RawSink = Box<dyn FnMut(&mut TaskCtx, &RawRecord) + Send>;
pub(crate) type RawFactory = Arc<dyn Fn(&mut BuildCtx) -> RawSink + Send + Sync>;

/// When a punctuation fires: as stream time or as the wall clock passes its interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunctuationType {
    StreamTime,
    WallClockTime,
}

/// A punctuation callback: (task context, time).
pub(crate) type Punctuate = Box<dyn FnMut(&mut TaskCtx, i64) + Send>;
/// A global table's record as a store write: (key, value or delete).
pub(crate) type GlobalApply =
    Arc<dyn Fn(&RawRecord) -> Option<(Vec<u8>, Option<Vec<u8>>)> + Send + Sync>;

pub(crate) struct Punctuator {
    pub kind: PunctuationType,
    pub interval_ms: i64,
    pub next: Option<i64>,
    pub f: Punctuate,
}

/// Called for each write a flush of the record cache takes out of it: (task, key,
/// new value, the value it replaces in the store).
pub(crate) type FlushListener =
    Box<dyn FnMut(&mut TaskCtx, &[u8], Option<&[u8]>, Option<&[u8]>) + Send>;

/// Runs a batching processor's waiting records; `false` when none waited.
pub(crate) type BatchFlush = Box<dyn FnMut(&mut TaskCtx) -> bool + Send>;
/// A processor's [`crate::Processor::commit`], bound to its node.
pub(crate) type CommitHook = Box<dyn FnMut(&mut TaskCtx) + Send>;

/// Collects what a task's processors register while the task is being built.
#[derive(Default)]
pub(crate) struct BuildCtx {
    pub punctuators: Vec<Punctuator>,
    /// The stores whose writes go through the task's record cache.
    pub cached: std::collections::HashSet<String>,
    /// Per cached store, what forwards its flushed writes.
    pub flush_listeners: std::collections::HashMap<String, FlushListener>,
    /// The instances of shared nodes built so far, by node address.
    pub shared_sinks: std::collections::HashMap<usize, Box<dyn std::any::Any + Send>>,
    /// Stream times shared by processors of this task (a join's two sides).
    pub shared_times: std::collections::HashMap<String, Arc<std::sync::atomic::AtomicI64>>,
    /// The batching processors' flushes, downstream ones first (a node builds its
    /// children before it registers itself).
    pub batches: Vec<BatchFlush>,
    /// The processors' commit callbacks, downstream ones first.
    pub commits: Vec<CommitHook>,
}

impl BuildCtx {
    pub fn is_cached(&self, store: &str) -> bool {
        self.cached.contains(store)
    }

    /// Makes `f` forward `store`'s writes when the record cache flushes them.
    pub fn on_flush(&mut self, store: &str, f: FlushListener) {
        self.flush_listeners.insert(store.to_string(), f);
    }

    /// The stream time the processors naming `name` share in this task (Kafka's
    /// TimeTracker of a stream-stream join): the largest timestamp either has seen.
    pub fn shared_time(&mut self, name: &str) -> Arc<std::sync::atomic::AtomicI64> {
        self.shared_times
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN)))
            .clone()
    }

    pub fn schedule(&mut self, kind: PunctuationType, interval_ms: i64, f: Punctuate) {
        self.punctuators.push(Punctuator {
            kind,
            interval_ms: interval_ms.max(1),
            next: None,
            f,
        });
    }
}

/// A node of the graph: the factories of its children.
pub(crate) struct Node<K, V> {
    children: Mutex<Vec<Factory<K, V>>>,
    /// Reached from more than one parent (a merge, the two sides of a join): built
    /// once per task and shared by its parents, so its processors — and their stores'
    /// in-memory companions — exist once, as in Kafka's processor graph.
    shared: bool,
}

/// A shared node's instance in a task: its parents' sinks all call it.
type SharedSink<K, V> = Arc<Mutex<Sink<K, V>>>;

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> Node<K, V> {
    pub fn new() -> Arc<Node<K, V>> {
        Arc::new(Node {
            children: Mutex::new(Vec::new()),
            shared: false,
        })
    }

    /// A node more than one parent forwards to.
    pub fn new_shared() -> Arc<Node<K, V>> {
        Arc::new(Node {
            children: Mutex::new(Vec::new()),
            shared: true,
        })
    }

    pub fn add(&self, f: Factory<K, V>) {
        crate::sync::lock(&self.children).push(f);
    }

    /// This task's instance of the node: its children, fanned out. A shared node is
    /// built on its first parent's call; later parents get a handle to that instance.
    pub fn build(&self, b: &mut BuildCtx) -> Sink<K, V> {
        if !self.shared {
            return self.build_new(b);
        }
        let id = self as *const Self as usize;
        let existing = b
            .shared_sinks
            .get(&id)
            .and_then(|s| s.downcast_ref::<SharedSink<K, V>>())
            .cloned();
        let sink = match existing {
            Some(s) => s,
            None => {
                let s: SharedSink<K, V> = Arc::new(Mutex::new(self.build_new(b)));
                b.shared_sinks.insert(id, Box::new(s.clone()));
                s
            }
        };
        // Only this task's thread calls it: the lock is never contended.
        Box::new(move |ctx, r| (crate::sync::lock(&sink))(ctx, r))
    }

    fn build_new(&self, b: &mut BuildCtx) -> Sink<K, V> {
        let factories: Vec<Factory<K, V>> = crate::sync::lock(&self.children).clone();
        let mut sinks: Vec<Sink<K, V>> = factories.iter().map(|f| f(b)).collect();
        match sinks.len() {
            0 => Box::new(|_, _| {}),
            1 => sinks.pop().unwrap_or_else(|| Box::new(|_, _| {})),
            _ => Box::new(move |ctx, r: Record<K, V>| {
                let last = sinks.len() - 1;
                for s in &mut sinks[..last] {
                    s(ctx, r.clone());
                }
                sinks[last](ctx, r);
            }),
        }
    }
}

/// A topic as the topology names it: a user's, or an internal one whose real name is
/// `<application.id>-<suffix>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TopicRef {
    User(String),
    Internal(String),
}

impl TopicRef {
    pub fn resolve(&self, application_id: &str) -> String {
        match self {
            TopicRef::User(t) => t.clone(),
            TopicRef::Internal(s) => format!("{application_id}-{s}"),
        }
    }
}

/// An internal topic to create before running.
#[derive(Debug, Clone)]
pub struct InternalTopic {
    pub topic: TopicRef,
    /// A changelog: compacted (and for windows also deleted after `retention_ms`).
    pub compact: bool,
    pub retention_ms: Option<i64>,
}

pub(crate) struct SourceDef {
    pub topic: TopicRef,
    pub group: usize,
    pub factory: RawFactory,
}

pub(crate) struct StoreDef {
    pub spec: StoreSpec,
    pub group: usize,
}

/// A GlobalKTable: every instance reads all of the topic's partitions into one store.
pub(crate) struct GlobalDef {
    pub topic: String,
    pub store: StoreSpec,
    /// Turns a raw record into the store write: (key, value or delete).
    pub apply: GlobalApply,
}

/// The graph while the DSL builds it.
#[derive(Default)]
pub(crate) struct Graph {
    pub sources: Vec<SourceDef>,
    pub stores: Vec<StoreDef>,
    pub globals: Vec<GlobalDef>,
    pub internal: Vec<InternalTopic>,
    /// Mistakes found while building (Kafka's TopologyException), reported at start.
    pub errors: Vec<String>,
    /// Union-find over groups: groups joined by a join or merge read together.
    parent: Vec<usize>,
    counter: usize,
}

impl Graph {
    pub fn new_group(&mut self) -> usize {
        self.parent.push(self.parent.len());
        self.parent.len() - 1
    }

    pub fn find(&mut self, g: usize) -> usize {
        let mut r = g;
        while self.parent[r] != r {
            r = self.parent[r];
        }
        self.parent[g] = r;
        r
    }

    pub fn union(&mut self, a: usize, b: usize) -> usize {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[rb] = ra;
        }
        ra
    }

    /// A name for an operator or store the user did not name, as Kafka Streams makes
    /// them: `KSTREAM-AGGREGATE-STATE-STORE-0000000003`.
    pub fn name(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{:010}", self.counter)
    }
}

/// One sub-topology: the topics it reads together and the stores its tasks own.
pub struct SubTopology {
    pub id: usize,
    pub(crate) sources: Vec<(TopicRef, RawFactory)>,
    pub stores: Vec<StoreSpec>,
}

impl SubTopology {
    pub fn topics(&self) -> Vec<TopicRef> {
        let set: BTreeSet<TopicRef> = self.sources.iter().map(|(t, _)| t.clone()).collect();
        set.into_iter().collect()
    }
}

/// A built topology, ready for [`KafkaStreams`](crate::KafkaStreams) or the
/// [`TopologyTestDriver`](crate::TopologyTestDriver).
pub struct Topology {
    pub subtopologies: Vec<SubTopology>,
    pub internal_topics: Vec<InternalTopic>,
    pub(crate) globals: Vec<GlobalDef>,
    errors: Vec<String>,
}

impl Topology {
    pub(crate) fn from_graph(mut g: Graph) -> Topology {
        let mut by_root: BTreeMap<usize, SubTopology> = BTreeMap::new();
        let sources = std::mem::take(&mut g.sources);
        for s in sources {
            let root = g.find(s.group);
            let n = by_root.len();
            by_root
                .entry(root)
                .or_insert_with(|| SubTopology {
                    id: n,
                    sources: Vec::new(),
                    stores: Vec::new(),
                })
                .sources
                .push((s.topic, s.factory));
        }
        let stores = std::mem::take(&mut g.stores);
        for s in stores {
            let root = g.find(s.group);
            if let Some(st) = by_root.get_mut(&root) {
                st.stores.push(s.spec);
            }
        }
        let mut subtopologies: Vec<SubTopology> = by_root.into_values().collect();
        subtopologies.sort_by_key(|s| s.id);
        Topology {
            subtopologies,
            internal_topics: g.internal,
            globals: g.globals,
            errors: g.errors,
        }
    }

    /// The first mistake found while the topology was built, if any.
    pub fn validate(&self) -> crate::error::Result<()> {
        match self.errors.first() {
            Some(e) => Err(crate::error::Error::Topology(e.clone())),
            None => Ok(()),
        }
    }

    /// A description like Kafka Streams' `Topology#describe()`.
    pub fn describe(&self) -> String {
        let mut out = String::from("Topologies:\n");
        for s in &self.subtopologies {
            let topics: Vec<String> = s.topics().iter().map(|t| format!("{t:?}")).collect();
            let stores: Vec<&str> = s.stores.iter().map(|s| s.name.as_str()).collect();
            out.push_str(&format!(
                "   Sub-topology: {}\n    Source topics: [{}]\n    Stores: [{}]\n",
                s.id,
                topics.join(", "),
                stores.join(", ")
            ));
        }
        for g in &self.globals {
            out.push_str(&format!(
                "   Global store: {} (topic {})\n",
                g.store.name, g.topic
            ));
        }
        out
    }
}
