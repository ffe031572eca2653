#include "cluster/scheduler_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/durable_file.hpp"
#include "proto/distrib.capnp.h"

namespace distrib::detail {

namespace {
constexpr const char* kType = "distrib-scheduler";

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw std::runtime_error("scheduler file " + path + ": " + why);
}

}  // namespace

void write_scheduler_file(const std::string& path, const SchedulerFileContents& c) {
  nlohmann::json j{{"type", kType}, {"address", c.address}, {"protocol", c.protocol}, {"pid", c.pid}};
  if (!c.dashboard.empty()) j["dashboard"] = c.dashboard;
  if (!c.tls_ca_sha256.empty()) j["tls_ca_sha256"] = c.tls_ca_sha256;
  const std::string text = j.dump(2) + "\n";
  try {
    write_file_durably(path, text.data(), text.size());
  } catch (const std::runtime_error& e) {
    fail(path, e.what());
  }
}

SchedulerFileContents read_scheduler_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, access(path.c_str(), F_OK) == 0 ? "cannot be read" : "does not exist");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.str());
  } catch (const std::exception&) {
    fail(path, "is not JSON (is it a scheduler file?)");
  }
  if (!j.is_object() || j.value("type", "") != kType) fail(path, "is not a distrib scheduler file");
  SchedulerFileContents c;
  try {
    c.address = j.at("address").get<std::string>();
    c.protocol = j.at("protocol").get<std::uint32_t>();
    c.pid = j.value("pid", std::uint32_t{0});
    c.dashboard = j.value("dashboard", "");
    c.tls_ca_sha256 = j.value("tls_ca_sha256", "");
  } catch (const std::exception& e) {
    fail(path, std::string("bad field: ") + e.what());
  }
  if (c.address.empty()) fail(path, "has no address");
  if (c.protocol != proto::PROTOCOL_VERSION)
    fail(path, "was written by a scheduler speaking protocol " + std::to_string(c.protocol) + ", this program speaks " +
                   std::to_string(proto::PROTOCOL_VERSION) + " (mixed distrib versions?)");
  return c;
}

SchedulerFileContents wait_for_scheduler_file(const std::string& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last_error;
  while (true) {
    try {
      return read_scheduler_file(path);
    } catch (const std::runtime_error& e) {
      last_error = e.what();
    }
    if (std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error("no scheduler file within " + std::to_string(timeout.count()) + " ms: " + last_error);
    // Polling, not inotify: the writer may be on another host of a shared filesystem.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void remove_scheduler_file(const std::string& path, std::uint32_t pid) {
  try {
    if (read_scheduler_file(path).pid == pid) ::unlink(path.c_str());
  } catch (const std::exception&) {
    // gone already, or not ours any more
  }
}

}  // namespace distrib::detail
