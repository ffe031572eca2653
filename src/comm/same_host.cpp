#include "comm/same_host.hpp"

#include <unistd.h>

#include <atomic>
#include <fstream>

#include "comm/message.hpp"
#include "core/log.hpp"

namespace distrib::detail {

namespace {
// Identifies this boot of this host: two processes with the same boot id run on one kernel.
const std::string& boot_id() {
  static const std::string id = [] {
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string s;
    std::getline(in, s);
    return s;
  }();
  return id;
}
}  // namespace

void offer_same_host(proto::Handshake::Builder h) {
  if (!shm::enabled() || boot_id().empty()) return;
  auto s = h.initSameHost();
  s.setBootId(boot_id());
  s.setUid(static_cast<std::uint32_t>(getuid()));
  s.setPid(static_cast<std::uint32_t>(getpid()));
}

bool same_host_peer(proto::Handshake::Reader h) {
  if (!h.hasSameHost() || !shm::enabled() || boot_id().empty()) return false;
  auto s = h.getSameHost();
  return s.getBootId() == boot_id() && s.getUid() == static_cast<std::uint32_t>(getuid());
}

bool set_shared_value(proto::Value::Builder out, const Value& v, bool freeze) {
  if (v.bytes.size() < kSharedValueBytes) return false;
  auto d = shm::describe(v.bytes.data(), v.bytes.size(), freeze);
  if (!d) return false;
  out.setType(v.type);
  auto s = out.initShared();
  s.setPid(d->pid);
  s.setFd(d->fd);
  s.setInode(d->inode);
  s.setOffset(d->offset);
  s.setLength(d->length);
  s.setGeneration(d->generation);
  return true;
}

shm::Descriptor read_descriptor(proto::SharedBuffer::Reader r) {
  return shm::Descriptor{r.getPid(), r.getFd(), r.getInode(), r.getOffset(), r.getLength(), r.getGeneration()};
}

OutMessage make_shared_done(std::uint64_t id) {
  MessageBuilder mb;
  mb.root().setSharedDone(id);
  return mb.finish();
}

void note_shared_fallback(const std::string& peer, const std::string& why) {
  static std::atomic<bool> told{false};
  if (!told.exchange(true))
    log().warn("shared memory with {} failed ({}); values go through the socket instead", peer, why);
  else
    log().debug("shared memory with {} failed ({}); values go through the socket instead", peer, why);
}

}  // namespace distrib::detail
