@0xecc40522afe30877;
# The distrib wire protocol. One `Message` per frame group; see docs/protocol.md for the
# framing around it. Large values are not stored in these structs: a `Value` names an
# out-of-band frame that travels right after the Cap'n Proto header.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("distrib::proto");

const protocolVersion :UInt32 = 1;

enum Role {
  client @0;
  worker @1;
  scheduler @2;
  peer @3;       # a worker or client asking another worker for data
}

# A Codec-encoded value: its type's name and its bytes, inline or in a frame.
struct Value {
  type @0 :Text;
  union {
    inline @1 :Data;
    frame @2 :UInt32;    # index into this message's out-of-band frames
  }
}

# First message on every connection, in both directions.
struct Handshake {
  version @0 :UInt32;
  role @1 :Role;
  name @2 :Text;
}

# Sent just before a connection is closed for cause.
struct Error {
  reason @0 :Text;
}

struct RegisterWorker {
  name @0 :Text;
  address @1 :Text;          # where peers fetch data from this worker: tcp://host:port
  nthreads @2 :UInt32;
  memoryLimit @3 :UInt64;
  functions @4 :List(Text);  # task functions this worker can run
}

struct WorkerRegistered {
  ok @0 :Bool;
  reason @1 :Text;
}

struct Heartbeat {
  memoryBytes @0 :UInt64;    # resident set size of the worker process
  executing @1 :UInt32;
  stored @2 :UInt32;         # keys held in memory
}

# One argument of a task: a value, or the key of the task whose result it is.
struct Arg {
  union {
    value @0 :Value;
    key @1 :Text;
  }
}

struct TaskSpec {
  key @0 :Text;
  function @1 :Text;
  args @2 :List(Arg);
  priority @3 :Int64;        # lower runs first
}

# client -> scheduler: new tasks, and the keys this client holds futures for.
struct UpdateGraph {
  tasks @0 :List(TaskSpec);
  wanted @1 :List(Text);
}

struct KeyLocation {
  key @0 :Text;
  workers @1 :List(Text);    # peer addresses that hold the key
}

# scheduler -> worker
struct ComputeTask {
  spec @0 :TaskSpec;
  whoHas @1 :List(KeyLocation);   # where each dependency can be fetched
}

# worker -> scheduler
struct TaskFinished {
  key @0 :Text;
  type @1 :Text;
  nbytes @2 :UInt64;
}

# worker -> scheduler, and scheduler -> client
struct TaskErred {
  key @0 :Text;
  exceptionType @1 :Text;
  message @2 :Text;
}

# scheduler -> client: a wanted key is in memory at `worker`.
struct KeyInMemory {
  key @0 :Text;
  worker @1 :Text;
  type @2 :Text;
  nbytes @3 :UInt64;
}

# any -> worker, answered by DataReply with the same id.
struct GetData {
  id @0 :UInt64;
  keys @1 :List(Text);
}

struct KeyValue {
  key @0 :Text;
  value @1 :Value;
}

struct DataReply {
  id @0 :UInt64;
  values @1 :List(KeyValue);
  missing @2 :List(Text);    # keys the worker does not hold
}

# scheduler -> client
struct ClusterInfo {
  workers @0 :UInt32;
  threads @1 :UInt32;
}

struct Message {
  union {
    handshake @0 :Handshake;
    error @1 :Error;
    registerWorker @2 :RegisterWorker;
    workerRegistered @3 :WorkerRegistered;
    heartbeat @4 :Heartbeat;
    updateGraph @5 :UpdateGraph;
    computeTasks @6 :List(ComputeTask);
    tasksFinished @7 :List(TaskFinished);
    taskErred @8 :List(TaskErred);
    keysInMemory @9 :List(KeyInMemory);
    releaseKeys @10 :List(Text);     # client -> scheduler: futures dropped
    freeKeys @11 :List(Text);        # scheduler -> worker: forget these keys
    getData @12 :GetData;
    dataReply @13 :DataReply;
    clusterInfo @14 :ClusterInfo;
    shutdown @15 :Void;              # client -> scheduler -> workers: stop the cluster
    close @16 :Void;                 # polite goodbye before closing the socket
  }
}
