@0xb3f1c0de5a17e402;
# The scheduler's journal (dscheduler --journal DIR): one JournalEntry per record, each an
# event that changed the scheduler's durable state, or a part of a snapshot. Never sent on
# the wire. See docs/architecture.md ("The journal") for the files and their framing.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("distrib::proto");

using P = import "distrib.capnp";

struct JournalEntry {
  stimulus @0 :UInt64;             # the event's stimulus id, kept on replay
  union {
    addClient @1 :JournalClient;
    removeClient @2 :UInt64;
    addWorker @3 :JournalWorker;
    removeWorker @4 :JournalWorkerGone;
    updateGraph @5 :JournalGraph;
    taskFinished @6 :JournalTaskFinished;
    taskErred @7 :JournalTaskErred;
    releaseKeys @8 :JournalKeys;
    scattered @9 :JournalScattered;
    cancelKeys @10 :JournalKeys;
    stealResponse @11 :JournalStealResponse;
    missingData @12 :JournalMissingData;
    snapshotHeader @13 :SnapshotHeader;   # a snapshot's first record
    snapshotTasks @14 :List(SnapshotTask); # the following ones
    restart @15 :Void;                    # client.restart(): every task cancelled and forgotten
    workerPaused @16 :JournalWorkerPaused; # a worker paused or resumed (placement depends on it)
    replicated @17 :JournalReplicated;     # a worker stores copies of these keys (retire_workers)
    taskSeceded @18 :JournalTaskSeceded;   # a task no longer takes a thread (placement depends on it)
    dropReplicas @19 :JournalReplicated;   # a worker no longer stores these copies (replicate, rebalance)
    fireAndForget @20 :JournalKeys;        # the scheduler wants these keys until each is finished or erred
    retry @21 :JournalRetry;               # erred keys computed again (client.retry)
  }
}

struct JournalClient {
  id @0 :UInt64;
  token @1 :Text;                  # the client's own id, by which it re-attaches ("": none)
}

struct JournalWorker {
  id @0 :UInt64;
  info @1 :P.RegisterWorker;
}

struct JournalWorkerPaused {
  worker @0 :UInt64;
  paused @1 :Bool;
}

struct JournalWorkerGone {
  id @0 :UInt64;
  safe @1 :Bool;
  reason @2 :Text;                 # why it went, if it said (restarting for memory)
}

struct JournalGraph {
  client @0 :UInt64;
  graph @1 :P.UpdateGraph;
}

struct JournalTaskFinished {
  worker @0 :UInt64;
  report @1 :P.TaskFinished;       # without the value: the scheduler does not keep it
}

struct JournalTaskErred {
  worker @0 :UInt64;
  report @1 :P.TaskErred;
}

struct JournalKeys {
  client @0 :UInt64;
  keys @1 :List(Text);
}

struct JournalScatteredKey {
  key @0 :Text;
  type @1 :Text;
  nbytes @2 :UInt64;
  holders @3 :List(UInt64);
}

struct JournalScattered {
  client @0 :UInt64;
  keys @1 :List(JournalScatteredKey);
}

struct JournalStealResponse {
  worker @0 :UInt64;
  report @1 :P.StealResponse;
}

struct JournalMissingData {
  worker @0 :UInt64;
  key @1 :Text;
  holder @2 :Text;
}

struct PrefixDuration {
  prefix @0 :Text;
  seconds @1 :Float64;
}

struct SnapshotHeader {
  clients @0 :List(JournalClient);
  workers @1 :List(JournalWorker);
  nextId @2 :UInt64;               # the server's next client/worker id
  nextRunId @3 :UInt64;
  durations @4 :List(PrefixDuration);
  tasks @5 :UInt64;                # SnapshotTask records that follow, in all
}

struct SnapshotTask {
  key @0 :Text;
  spec @1 :P.TaskSpec;             # unset for a scattered key
  status @2 :UInt8;                # TaskStatus: waiting, memory, erred, processing (others: waiting)
  wantedBy @3 :List(UInt64);
  holders @4 :List(UInt64);
  type @5 :Text;
  nbytes @6 :UInt64;
  processingOn @7 :UInt64;
  runId @8 :UInt64;
  exceptionType @9 :Text;
  exceptionMessage @10 :Text;
  retriesLeft @11 :UInt32;
  suspicious @12 :UInt32;
  scattered @13 :Bool;             # placed by a client: cannot be recomputed
}

struct JournalTaskSeceded {
  worker @0 :UInt64;
  report @1 :P.LongRunning;
}

struct JournalReplicated {
  holder @0 :UInt64;
  keys @1 :List(Text);
}

struct JournalRetry {
  client @0 :UInt64;
  id @1 :UInt64;                   # the client's request id
  keys @2 :List(Text);
}
