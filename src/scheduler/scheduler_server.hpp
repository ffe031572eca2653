#pragma once
// SchedulerServer: the scheduler's I/O. Accepts clients and workers, turns their messages
// into SchedulerState events and the resulting actions into messages. Runs on one
// io_context; every method must be called on its thread, except the constructor.
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "comm/accept_backoff.hpp"
#include "comm/admission.hpp"
#include "comm/connection.hpp"
#include "comm/transport.hpp"
#include "journal/journal.hpp"
#include "proto/distrib.capnp.h"
#include "scheduler/client_sessions.hpp"
#include "scheduler/coordination_state.hpp"
#include "scheduler/dashboard_data.hpp"
#include "scheduler/restart_coordinator.hpp"
#include "scheduler/scheduler_state.hpp"
#include "scheduler/scheduler_wire.hpp"

namespace distrib::detail {

class Dashboard;

struct SchedulerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8786;  // 0: any free port
  FrameLimits limits;
  /// How many connections it keeps open, and how many still without their handshake
  /// (dscheduler --max-connections, --max-unauthenticated-connections).
  ConnectionCaps connection_caps;
  /// TLS files and token for every connection (dscheduler --tls-*, --auth-token-file).
  Security security;
  /// Listen on a non-loopback host with neither TLS nor a token (--insecure); otherwise the
  /// constructor refuses with SecurityError (protected mode).
  bool insecure = false;
  /// A worker silent for this long is removed (its tasks go elsewhere).
  std::chrono::milliseconds worker_timeout{30'000};
  /// Scheduling policy (queuing, work stealing).
  sched::SchedulerConfig policy;
  /// The web dashboard: "host:port", ":port", "0" (any port), or "" / "none" for none.
  std::string dashboard_address;
  /// If the dashboard's port is taken, use any free port instead of failing (LocalCluster).
  bool dashboard_fallback = false;
  /// How often the dashboard's snapshot is refreshed.
  std::chrono::milliseconds dashboard_interval{500};
  /// Also listen on this abstract Unix socket (a name, or unix://@name), for clients and
  /// workers on this host, or on "inproc://name" for those in this process ("": TCP only).
  /// LocalCluster sets it.
  std::string local_socket;
  /// Check every invariant of the state after every event, and abort on a broken one
  /// (slow: for tests). The environment variable DISTRIB_VALIDATE=1 turns it on.
  bool validate = false;
  /// A client whose connection drops keeps its keys this long, to re-attach to them
  /// (dscheduler --client-grace); a client that closes is released at once. Zero: at once.
  std::chrono::milliseconds client_grace{60'000};
  /// The write-ahead journal's directory (dscheduler --journal), "" for none. With one,
  /// the scheduler replays it on start and survives its own restart.
  std::string journal_dir;
  /// The journal is replaced by a snapshot once it passes this size.
  std::uint64_t journal_snapshot_bytes = std::uint64_t{64} << 20;
  /// The address workers and clients are told to use (dscheduler --contact-address), when it
  /// differs from where it listens (behind NAT, a port forward); "": the listening address,
  /// with a wildcard host replaced by the IP the default route leaves by.
  std::string contact_address;
  /// Write the scheduler file here once listening, removed at exit (dscheduler
  /// --scheduler-file; cluster/scheduler_file.hpp). "": none.
  std::string scheduler_file;
};

class SchedulerServer {
 public:
  /// What a worker's connection knows of it, beyond SchedulerState: for WorkerInfo.
  struct WorkerExtras {
    std::uint32_t restarts = 0;
    std::uint64_t shared_in = 0, shared_out = 0;
  };
  /// Binds the listening socket; throws CommError if the address is unavailable.
  SchedulerServer(asio::io_context& io, SchedulerOptions options);
  ~SchedulerServer();

  void start();
  /// Closes every connection and stops listening.
  void stop();
  /// "tcp://host:port" where the scheduler listens.
  const std::string& address() const { return address_; }
  /// Where workers and clients should connect: SchedulerOptions::contact_address, or
  /// address() with a wildcard host replaced by the default route's IP.
  std::string contact_address() const;
  /// "unix://@name" where it also listens, or "" (SchedulerOptions::local_socket).
  const std::string& local_address() const { return local_address_; }
  /// Called after a client asked for shutdown and the workers were told to stop.
  std::function<void()> on_shutdown;

  const sched::SchedulerState& state() const { return state_; }
  /// The dashboard's port, 0 if there is none.
  std::uint16_t dashboard_port() const { return dashboard_port_; }

 private:
  struct Peer;
  void accept(Listener& listener, AcceptBackoff& backoff);
  void on_accepted(ByteStreamPtr stream);
  void on_message(const std::shared_ptr<Peer>& peer, InMessage&& m);
  void on_closed(const std::shared_ptr<Peer>& peer, const std::string& reason);
  /// Applies an event to the state (its actions wait in actions_ for flush), then
  /// validates the state if asked to.
  void apply(sched::Event e, const std::string& client_token = {});
  void handle(sched::Event e, const std::string& client_token = {});
  /// Replays the journal into the state: what was processing waits again, the workers it
  /// knew are gone until they register again, its clients may re-attach.
  void recover();
  /// Soon, on this thread: the journal's buffer is written (and synced if a client's
  /// event is in it), then the actions waiting for it are sent (group commit).
  void schedule_commit();
  void commit_journal();
  /// A worker known before a journaled restart registered again (or is late): its ghost
  /// in the state is removed.
  void forget_ghost(const std::string& name, const char* why);
  void remove_late_ghosts(std::chrono::steady_clock::time_point now);
  /// Sends the actions' messages (through the wire adapter) and clears them.
  void flush(std::vector<sched::Action>& actions);
  void send(wire::Outgoing& o);
  void record_for_dashboard(const sched::Event& e, const Peer& peer);
  void check_heartbeats();
  void shutdown_cluster();
  void refresh_dashboard();
  OutMessage cluster_info() const;
  WorkerExtras extras_of(std::uint64_t worker) const;
  OutMessage info_reply(std::uint64_t client, proto::InfoRequest::Reader req) const;
  std::vector<DashboardStoryLine> story_lines(const std::string& key) const;
  /// client.restart(): cancels every key, restarts (or closes) every worker, and lets
  /// restart_ answer once they are back (scheduler_server.cpp, at the end).
  void restart_cluster(const Peer& by, proto::RestartRequest::Reader request);
  void send_to_client(std::uint64_t client, OutMessage m);
  /// client.retire_workers (scheduler_retire.cpp): the workers get no new work; once idle,
  /// what only they hold is copied elsewhere (replicate), then they are closed.
  struct Retirement;
  void begin_retire(const Peer& by, proto::RetireRequest::Reader request);
  void on_replicated(capnp::List<proto::KeyLocation>::Reader copies);
  void advance_retirements();
  /// Ends `r`: answers its client; workers not closed yet are taken back into service.
  void finish_retirement(Retirement& r, bool ok, const std::string& reason);
  /// client.upload_file (scheduler_uploads.cpp): kept, sent to every worker (and to each one
  /// that registers later), answered once every worker loaded it or said why not.
  struct Upload;
  struct UploadWait;
  void begin_upload(const Peer& by, MessageReader& mr, proto::UploadFile::Reader request);
  void send_uploads(Peer& worker);
  void on_upload_result(const Peer& worker, proto::UploadResult::Reader result);
  /// A worker that left answers nothing more.
  void forget_upload_worker(std::uint64_t worker);
  /// With --journal, uploads are also kept in <journal>/uploads/<sequence>-<name>, so that
  /// a restarted scheduler gives them to the workers that register again.
  void keep_upload_on_disk(const Upload& upload);
  void load_kept_uploads();
  void forget_kept_uploads();  // the cluster ended on purpose
  /// Coordination primitives (scheduler_coordination.cpp): a client's call, the replies and
  /// dataset key changes that follow, a client whose connection dropped (`removed`: gone for
  /// good, its leases are released), and the timer for waiters' deadlines.
  void on_coordination(const Peer& by, MessageReader& mr, proto::Coordination::Reader m);
  void after_coordination(std::vector<coord::Reply>& replies);
  void coordination_client_left(std::uint64_t client, bool removed);
  void arm_coordination_timer();
  /// Client operations that are requests (scheduler_client_ops.cpp): nbytes,
  /// run_on_scheduler, replicate and rebalance.
  struct CopyOp;
  struct CopyMove {
    std::string key;
    std::uint64_t from = 0, to = 0;  // to 0: `from` drops its (surplus) copy
  };
  void on_client_op(const Peer& by, MessageReader& mr, proto::ClientOp::Reader op);
  OutMessage run_here(std::uint64_t id, MessageReader& mr, proto::TaskSpec::Reader spec);
  void begin_copies(const Peer& by, std::uint64_t id, const std::vector<std::string>& keys, std::uint32_t n,
                    bool rebalance);
  std::vector<CopyMove> plan_replicate(const std::vector<std::string>& keys,
                                       const std::vector<sched::SchedulerState::WorkerSnapshot>& targets,
                                       std::size_t n) const;
  std::vector<CopyMove> plan_rebalance(const std::vector<std::string>& keys,
                                       const std::vector<sched::SchedulerState::WorkerSnapshot>& targets) const;
  /// A worker reported a copy of `key` to `target_address` ("": a failed copy).
  void on_copy_reported(const std::string& key, const std::string& target_address);
  /// A worker left: copies from or to it are over.
  void forget_copy_worker(std::uint64_t worker);

  asio::io_context& io_;
  SchedulerOptions options_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Listener> local_listener_;  // a LocalCluster's unix:// one, or null
  AcceptBackoff accept_backoff_, local_accept_backoff_;
  Admission admission_;
  LogLimiter bad_input_log_;  // "rejected ..." and "closed connection ...: <bad input>" lines
  asio::steady_timer heartbeat_timer_;
  std::string address_;
  std::string local_address_;
  sched::SchedulerState state_;
  std::vector<sched::Action> actions_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Peer>> workers_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Peer>> clients_;
  std::uint64_t next_id_ = 1;
  ClientSessions sessions_{options_.client_grace};
  RestartCoordinator restart_{io_, [this] { return static_cast<std::uint32_t>(workers_.size()); },
                              [this](std::uint64_t client, OutMessage m) { send_to_client(client, std::move(m)); }};
  bool stopped_ = false;
  DashboardRecorder recorder_;
  std::shared_ptr<SnapshotBox> snapshots_;
  std::unique_ptr<Dashboard> dashboard_;
  asio::steady_timer dashboard_timer_;
  std::uint16_t dashboard_port_ = 0;
  std::unique_ptr<journal::Journal> journal_;
  std::unordered_map<std::uint64_t, std::string> client_tokens_;  // with a journal: for snapshots
  bool commit_posted_ = false;
  std::vector<wire::Outgoing> held_for_sync_;  // messages to clients waiting for the journal's sync
  // Workers of the state replayed from the journal, by name, until they register again.
  std::unordered_map<std::string, std::pair<std::uint64_t, std::chrono::steady_clock::time_point>> ghosts_;
  std::vector<std::unique_ptr<Upload>> uploads_;
  std::unordered_map<std::uint64_t, std::unique_ptr<UploadWait>> upload_waits_;  // by upload id
  std::uint64_t next_upload_id_ = 1;
  std::uint64_t next_kept_upload_ = 1;  // the sequence number of the next upload kept on disk
  std::vector<std::unique_ptr<Retirement>> retirements_;
  std::vector<std::unique_ptr<CopyOp>> copy_ops_;  // replicate and rebalance under way
  asio::steady_timer retire_timer_{io_};
  bool retire_timer_armed_ = false;
  coord::CoordinationState coordination_;  // not journaled: lost on a restart
  asio::steady_timer coordination_timer_{io_};
  std::optional<coord::Clock::time_point> coordination_armed_;
  std::uint64_t datasets_client_ = 0;  // the scheduler's own client that wants published keys (0: none yet)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards work posted by HTTP threads
};

}  // namespace distrib::detail
