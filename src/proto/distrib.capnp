@0xecc40522afe30877;
# The distrib wire protocol. One `Message` per frame group; see docs/protocol.md for the
# framing around it. Large values are not stored in these structs: a `Value` names an
# out-of-band frame that travels right after the Cap'n Proto header.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("distrib::proto");

const protocolVersion :UInt32 = 2;

enum Role {
  client @0;
  worker @1;
  scheduler @2;
  peer @3;       # a worker or client asking another worker for data
}

# A Codec-encoded value: its type's name and its bytes, inline, in a frame, or in the
# sender's shared memory (same host only; see SharedBuffer).
struct Value {
  type @0 :Text;
  union {
    inline @1 :Data;
    frame @2 :UInt32;    # index into this message's out-of-band frames
    shared @3 :SharedBuffer;
  }
}

# Bytes the sender holds in a memfd that a process of the same user on the same host maps
# instead of receiving them: it opens /proc/<pid>/fd/<fd>, checks that the file is the inode
# named and sealed against shrinking, takes a shared flock on it (held while it maps it: the
# holder reuses the buffer only when it can lock it exclusively), checks that the file's last
# page starts with `generation` (little-endian u64; bumped by the holder when it reuses the
# buffer), and maps [offset, offset + length) copy-on-write. Sent only in dataReply (to a
# getData with `shared`) and putData, to a peer whose handshake offered `sameHost` with this
# host's boot id and this user's uid.
struct SharedBuffer {
  pid @0 :UInt32;
  fd @1 :Int32;
  inode @2 :UInt64;
  offset @3 :UInt64;
  length @4 :UInt64;
  generation @5 :UInt64;
}

# In a handshake: the sender can hand values over through shared memory and map a peer's.
struct SameHost {
  bootId @0 :Text;           # /proc/sys/kernel/random/boot_id
  uid @1 :UInt32;
  pid @2 :UInt32;
}

# First message on every connection, in both directions.
struct Handshake {
  version @0 :UInt32;
  role @1 :Role;
  name @2 :Text;
  clientId @3 :Text;         # client -> scheduler: the client's unique id, the same on every
                             # connection, by which it re-attaches to its keys after a drop
  sameHost @4 :SameHost;     # set when the sender has shared memory on (data ports and their
                             # peers): values may then travel as SharedBuffer between the two
}

# Sent just before a connection is closed for cause.
struct Error {
  reason @0 :Text;
}

struct Resource {
  name @0 :Text;
  amount @1 :Float64;
}

struct RegisterWorker {
  name @0 :Text;
  address @1 :Text;          # where peers fetch data from this worker: tcp://host:port
  nthreads @2 :UInt32;
  memoryLimit @3 :UInt64;
  functions @4 :List(Text);  # task functions this worker can run
  resources @5 :List(Resource);   # e.g. GPU=2, for tasks that ask for resources
  restarts @6 :UInt32;       # times its nanny restarted this worker's process so far
  held @7 :List(HeldKey);    # keys it still holds from before (it lost its scheduler and came back)
  nanny @8 :Bool;            # a nanny supervises it: restartWorker restarts it
}

struct HeldKey {
  key @0 :Text;
  type @1 :Text;
  nbytes @2 :UInt64;
}

struct WorkerRegistered {
  ok @0 :Bool;
  reason @1 :Text;
}

struct Heartbeat {
  memoryBytes @0 :UInt64;    # resident set size of the worker process
  executing @1 :UInt32;
  stored @2 :UInt32;         # keys held in memory
  cpuSeconds @3 :Float64;    # CPU time of the worker process so far (user + system)
  bytesIn @4 :UInt64;        # bytes received on all its connections so far
  bytesOut @5 :UInt64;       # bytes sent
  sharedBytesIn @6 :UInt64;  # bytes of values mapped from same-host peers' shared memory so far
  sharedBytesOut @7 :UInt64; # bytes of values handed to same-host peers through shared memory
  managedBytes @8 :UInt64;   # its stored values' sizes, in memory
  spilledBytes @9 :UInt64;   # its stored values' sizes, spilled to its local directory
  paused @10 :Bool;          # past its memory pause threshold (or its disk is full): start nothing
}

# worker -> scheduler, at once when the worker pauses or resumes (heartbeats repeat it).
struct WorkerStatus {
  paused @0 :Bool;
  reason @1 :Text;           # why, for the scheduler's log
  restarting @2 :Bool;       # past its terminate threshold: it exits now and its nanny starts a
                             # fresh one (the scheduler names `reason` if its tasks end KilledWorker)
}

# One argument of a task: a value, or the key of the task whose result it is.
struct Arg {
  union {
    value @0 :Value;
    key @1 :Text;
    keys @2 :KeyList;        # a container of futures: their results, in order, as one vector
  }
}

struct KeyList {
  keys @0 :List(Text);
  type @1 :Text;             # the vector's type name, e.g. "vector<f64>"
}

struct TaskSpec {
  key @0 :Text;
  function @1 :Text;
  args @2 :List(Arg);
  priority @3 :Int64;        # lower runs first
  retries @4 :UInt32;        # times to rerun the task if it raises
  workers @5 :List(Text);    # restrict to these workers (names or addresses)
  allowOtherWorkers @6 :Bool;
  resources @7 :List(Resource);
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
  runId @2 :UInt64;          # this assignment of the key: echoed in its report, so a report of
                             # an earlier assignment (released, then given again) is told apart
  pending @3 :List(Text);    # assigned ahead: inputs still being computed, here or by a peer
                             # that pushes them here (pushTo); the task starts once they arrive
}

# worker -> scheduler
struct TaskFinished {
  key @0 :Text;
  type @1 :Text;
  nbytes @2 :UInt64;
  duration @3 :Float64;      # seconds the task ran, for the scheduler's estimates
  value @4 :Value;           # the result itself when it is small (kInlineResultBytes), else unset
  runId @5 :UInt64;          # the ComputeTask's runId
}

# worker -> scheduler, and scheduler -> client
struct TaskErred {
  key @0 :Text;
  exceptionType @1 :Text;
  message @2 :Text;
  runId @3 :UInt64;          # worker -> scheduler: the ComputeTask's runId
}

# scheduler -> client: a wanted key is in memory at `worker`.
struct KeyInMemory {
  key @0 :Text;
  worker @1 :Text;
  type @2 :Text;
  nbytes @3 :UInt64;
  value @4 :Value;           # a small result, passed on from taskFinished: no fetch needed
}

# any -> worker, answered by DataReply with the same id.
struct GetData {
  id @0 :UInt64;
  keys @1 :List(Text);
  shared @2 :Bool;           # the reply may carry SharedBuffer values; the requester answers
                             # sharedDone with the id once it has mapped them (or failed to)
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

struct WorkerInfo {
  name @0 :Text;
  address @1 :Text;
  nthreads @2 :UInt32;
  memoryLimit @3 :UInt64;
  memoryBytes @4 :UInt64;    # last reported resident memory
  processing @5 :UInt32;     # tasks assigned and not finished
  stored @6 :UInt32;         # keys held
  storedBytes @7 :UInt64;
  restarts @8 :UInt32;       # times its nanny restarted this worker's process
  sharedBytesIn @9 :UInt64;  # from its heartbeats: bytes moved through shared memory so far
  sharedBytesOut @10 :UInt64;
  managedBytes @11 :UInt64;  # from its heartbeats: stored values in memory, and spilled to disk
  spilledBytes @12 :UInt64;
  paused @13 :Bool;          # paused for memory: given no new tasks
}

# scheduler -> client, whenever workers join or leave.
struct ClusterInfo {
  workers @0 :UInt32;
  threads @1 :UInt32;
  members @2 :List(WorkerInfo);
  dashboardPort @3 :UInt16;  # the scheduler's HTTP dashboard, 0 if none
}

# client -> scheduler: keys whose values the client placed on workers itself (scatter).
struct ScatteredKey {
  key @0 :Text;
  type @1 :Text;
  nbytes @2 :UInt64;
  workers @3 :List(Text);    # addresses that hold it
}

# client -> worker (data port): store these values. Answered by putDataDone with the id.
# worker -> worker: the same, as a push (push = true): results for tasks assigned ahead on
# the receiver, which keeps them only while a task of its own waits for them. `available`
# names results too large to push: the receiver fetches them from the sender.
struct PutData {
  id @0 :UInt64;
  values @1 :List(KeyValue);
  push @2 :Bool;
  available @3 :List(Text);
  from @4 :Text;             # a push: the sender's data address, to fetch `available` from
}

# data port -> sender, instead of putDataDone: the other values of putData `id` are stored.
struct PutDataUnmapped {
  id @0 :UInt64;
  keys @1 :List(Text);
  reason @2 :Text;
}

# client -> worker (data port): run a function now, outside the scheduler (Client::run).
struct RunFunction {
  id @0 :UInt64;
  spec @1 :TaskSpec;
}

struct RunResult {
  id @0 :UInt64;
  union {
    value @1 :Value;
    error @2 :TaskErred;
  }
}

struct MissingData {
  key @0 :Text;
  worker @1 :Text;           # the peer that did not have it
}

struct StealResponse {
  key @0 :Text;
  released @1 :Bool;         # true: the worker dropped the task; false: it runs or ran there
  runId @2 :UInt64;          # the runId the worker holds the task under (0: unknown key)
}

# client.restart(): cancel every key of every client, restart every worker, wait for them.
struct RestartRequest {
  id @0 :UInt64;
  timeoutMs @1 :UInt64;      # how long to wait for the workers to come back (> 0)
  waitForWorkers @2 :Bool;   # false: answer once the workers were told, without waiting
}

# The answer to RestartRequest `id`.
struct RestartReply {
  id @0 :UInt64;
  ok @1 :Bool;               # false: not every worker came back within the timeout
  workersBefore @2 :UInt32;  # workers registered when the restart began
  workersNow @3 :UInt32;     # workers registered when it answered
  reason @4 :Text;           # why not ok, for the client's error
}

# client.retire_workers(): these workers (names or addresses) get no new work, and once
# their running tasks are done, every value that only they hold is copied to another
# worker; then they are closed. Nothing is recomputed.
struct RetireRequest {
  id @0 :UInt64;
  workers @1 :List(Text);
  timeoutMs @2 :UInt64;      # give up (and take them back into service) after this long
}

# The answer to RetireRequest `id`.
struct RetireReply {
  id @0 :UInt64;
  ok @1 :Bool;
  retired @2 :List(Text);    # the addresses of the workers closed
  reason @3 :Text;           # why not ok
}

# client.upload_file(): a shared library for every worker, present and future, to load.
struct UploadFile {
  id @0 :UInt64;
  name @1 :Text;             # the file's name (no directories)
  data @2 :Value;            # its bytes (type "bytes")
}

# worker -> scheduler, and scheduler -> client: how loading upload `id` went.
struct UploadResult {
  id @0 :UInt64;
  error @1 :Text;            # "" when loaded (on every worker, for the client's answer)
  functions @2 :List(Text);  # worker -> scheduler: task functions it has now
}

struct InfoRequest {
  id @0 :UInt64;
  keys @1 :List(Text);       # keys to report who_has for (all of the client's if empty)
  story @2 :Bool;            # also the story (last transitions) of each of `keys`
}

# One transition of a task, for client.story(key).
struct StoryLine {
  key @0 :Text;
  stimulus @1 :Text;         # the event that caused it, e.g. "task-finished-1234"
  from @2 :Text;
  to @3 :Text;
  worker @4 :Text;           # the worker it concerns, or ""
  time @5 :Float64;          # seconds since the epoch, on the scheduler's clock
}

struct TaskCount {
  state @0 :Text;
  count @1 :UInt64;
}

struct InfoReply {
  id @0 :UInt64;
  workers @1 :List(WorkerInfo);
  whoHas @2 :List(KeyLocation);
  taskCounts @3 :List(TaskCount);
  hasWhat @4 :List(KeyLocation);   # per worker address: the keys it holds (key = address)
  story @5 :List(StoryLine);       # when asked for: the requested keys' transitions, oldest first
}

# A task that seceded (distrib::secede, worker_client) waits on other tasks: it still runs
# there, but no longer takes one of the worker's threads.
struct LongRunning {
  key @0 :Text;
  runId @1 :UInt64;
}

# Issue 19's three families of messages, one union member each, so that they grow apart:
# coordination primitives (Queue, Variable, Event, Lock, Semaphore, datasets, topics), more
# of the Client (fire_and_forget, retry, replicate, rebalance, run_on_scheduler, nbytes),
# and diagnostics (task stream, call stacks). Their fields come with their features.

# Coordination primitives held by the scheduler (include/distrib/coordination.hpp): a client
# (or a task's client) sends a call with an id of its own; the scheduler answers it with a
# reply of the same id, at once or, for a call that waits (a queue's get, a lock's acquire,
# an event's wait ...), when the state changes or its timeout passes. A call re-sent with an
# id already answered (a client re-attaching after a drop) gets the same answer again.
struct Coordination {
  id @0 :UInt64;                 # the client's call id, echoed by its reply; 0 for a topicEvent
  union {
    call @1 :CoordinationCall;   # client -> scheduler
    reply @2 :CoordinationReply; # scheduler -> client: the answer to call `id`
    topicEvent @3 :TopicEvent;   # scheduler -> each client subscribed to the topic
  }
}

enum CoordinationOp {
  queuePut @0;          # name, type, value, limit (maxsize, 0: unspecified), timeoutMs -> done
  queueGet @1;          # name, type, timeoutMs -> value
  queueSize @2;         # name -> count
  variableSet @3;       # name, type, value -> done
  variableGet @4;       # name, type, timeoutMs -> value
  variableDelete @5;    # name -> done
  eventSet @6;          # name -> done
  eventClear @7;        # name -> done
  eventWait @8;         # name, timeoutMs -> flag (true: set)
  eventIsSet @9;        # name -> flag
  lockAcquire @10;      # name, lease, timeoutMs -> flag (true: acquired)
  lockRelease @11;      # name, lease -> done
  semaphoreAcquire @12; # name, lease, limit (max_leases), timeoutMs -> flag
  semaphoreRelease @13; # name, lease -> done
  leaseCount @14;       # name (a semaphore's), or a lock's with `lock` -> count of leases held
  publishDataset @15;   # name, key, type, override -> done
  getDataset @16;       # name, type -> dataset
  listDatasets @17;     # -> names
  unpublishDataset @18; # name -> done
  logEvent @19;         # name (the topic), type, value -> done
  subscribeTopic @20;   # name -> done; topicEvent messages follow
  unsubscribeTopic @21; # name -> done
  getEvents @22;        # name -> events
}

struct CoordinationCall {
  op @0 :CoordinationOp;
  name @1 :Text;         # the primitive's name (a topic's, a dataset's)
  type @2 :Text;         # the type of value the caller puts or expects back
  value @3 :Value;
  timeoutMs @4 :Int64;   # how long a call may wait: -1 for ever, 0 not at all
  lease @5 :UInt64;      # a lock's or semaphore's lease id, chosen by the caller
  limit @6 :UInt64;      # a queue's maxsize, a semaphore's max_leases
  key @7 :Text;          # publishDataset: the future's key
  override @8 :Bool;     # publishDataset: replace a dataset of that name
  lock @9 :Bool;         # leaseCount: of the lock `name`, not the semaphore
}

enum CoordinationFailure {
  invalidArgument @0;    # a bad maxsize or max_leases, a name too long ...
  notFound @1;           # no dataset of that name (or its key is gone)
  notHeld @2;            # releasing a lock or lease this caller does not hold
  wrongType @3;          # the value there has another type than the caller's
  exists @4;             # a dataset of that name is published already
  full @5;               # the scheduler holds as much coordination data as it may
}

struct CoordinationReply {
  union {
    done @0 :Void;
    timedOut @1 :Void;   # the call's timeout passed before it could be answered
    value @2 :Value;
    count @3 :UInt64;
    flag @4 :Bool;
    dataset @5 :DatasetRef;
    names @6 :List(Text);
    events @7 :List(TopicEvent);
    failed @8 :CoordinationError;
  }
}

struct CoordinationError {
  kind @0 :CoordinationFailure;
  message @1 :Text;
}

struct DatasetRef {
  key @0 :Text;
  type @1 :Text;         # the result type of the published future
}

struct TopicEvent {
  topic @0 :Text;
  time @1 :Float64;      # seconds since the epoch, on the scheduler's clock
  value @2 :Value;
}



# More of the Client (issue 19), as Dask's: one request or answer in `op`; `id` pairs a
# request with its answer (a request without one, fireAndForget, is not answered).
struct ClientOp {
  id @0 :UInt64;
  op :union {
    fireAndForget @1 :List(Text);  # client -> scheduler: compute these keys to the end even when no
                                   # client wants them any more; released once finished or erred
    retry @2 :List(Text);          # client -> scheduler: compute these erred keys (and their erred
                                   # inputs) again; answered by retried
    retried @3 :List(Text);        # scheduler -> client: these keys of yours compute again (id: your
                                   # retry; 0 when another client's retry reset them)
    nbytes @4 :List(Text);         # client -> scheduler: the sizes of these keys; answered by sizes
    sizes @5 :List(KeySize);       # scheduler -> client: the keys asked for that are in memory
    replicate @6 :ReplicateOp;     # client -> scheduler: answered by done
    rebalance @7 :List(Text);      # client -> scheduler: even out the bytes workers store, moving these
                                   # keys (empty: any key in memory); answered by done
    runOnScheduler @8 :TaskSpec;   # client -> scheduler: call a function there; answered by runResult
    runResult @9 :RunResult;       # scheduler -> client
    done @10 :Text;                # scheduler -> client: request `id` is over ("": done; else why not)
  }
}

struct KeySize {
  key @0 :Text;
  nbytes @1 :UInt64;
}

# client.replicate: copy each key until `n` workers hold it (0: every worker), drop copies beyond.
struct ReplicateOp {
  keys @0 :List(Text);
  n @1 :UInt32;
}
struct Diagnostics {}

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
    scattered @17 :List(ScatteredKey);
    putData @18 :PutData;
    putDataDone @19 :UInt64;
    cancelKeys @20 :List(Text);      # client -> scheduler
    keysCancelled @21 :List(Text);   # scheduler -> client
    runFunction @22 :RunFunction;
    runResult @23 :RunResult;
    infoRequest @24 :InfoRequest;
    infoReply @25 :InfoReply;
    stealRequest @26 :Text;          # scheduler -> worker: give this task back if it has not started
    stealResponse @27 :StealResponse;
    missingData @28 :MissingData;    # worker -> scheduler: a peer did not have a key
    keyLocations @29 :KeyLocation;   # scheduler -> worker: where a key lives now
    restartWorker @30 :Void;         # scheduler -> worker: exit so that the nanny starts a fresh process
    reregister @31 :Text;            # scheduler -> worker: you were removed (the reason); drop every task
                                     # and key and register anew, as a new worker
    restart @32 :RestartRequest;     # client -> scheduler: client.restart()
    restartReply @33 :RestartReply;  # scheduler -> client: the answer, once the workers are back (or the timeout)
    restarted @34 :List(Text);       # scheduler -> every client: a restart forgot every task; these keys of
                                     # yours are cancelled
    pushTo @35 :List(KeyLocation);   # scheduler -> worker: once you have `key`, send it to `workers`, where a
                                     # task assigned ahead waits for it (putData with push = true)
    pushFailed @36 :KeyLocation;     # worker -> scheduler: pushing `key` to `workers` failed
    sharedDone @37 :UInt64;          # requester -> data port: the SharedBuffer values of dataReply `id`
                                     # are mapped (or were not): the holder may drop what it kept for them
    putDataUnmapped @38 :PutDataUnmapped;  # data port -> sender: these SharedBuffer values of putData
                                     # `id` could not be mapped and were not stored; send them as frames
    workerStatus @39 :WorkerStatus;  # worker -> scheduler: it paused or resumed
    retireWorkers @40 :RetireRequest;  # client -> scheduler: client.retire_workers()
    retireReply @41 :RetireReply;    # scheduler -> client: the answer
    replicate @42 :List(KeyLocation);  # scheduler -> worker: store `key` on `workers` too (putData), then
                                     # say so with replicated
    replicated @43 :List(KeyLocation);  # worker -> scheduler: `key` is now stored on `workers` too
                                     # (empty `workers`: the copy failed)
    uploadFile @44 :UploadFile;      # client -> scheduler -> every worker (and each worker that registers later)
    uploadResult @45 :UploadResult;  # worker -> scheduler, then scheduler -> client
    longRunning @46 :LongRunning;    # worker -> scheduler: this task seceded
    coordination @47 :Coordination;  # client or task <-> scheduler (issue 19)
    clientOp @48 :ClientOp;          # client <-> scheduler (issue 19)
    diagnostics @49 :Diagnostics;    # client <-> scheduler <-> worker (issue 19)
  }
}
