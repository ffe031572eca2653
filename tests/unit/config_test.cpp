// The configuration schema (include/distrib/config.hpp): defaults, the DISTRIB_CONFIG file,
// the environment, in that order of precedence, and errors that name the key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "distrib/client.hpp"
#include "distrib/config.hpp"
#include "distrib/local_cluster.hpp"

namespace distrib::config {
namespace {

// Writes a YAML file, points DISTRIB_CONFIG at it; undoes every change at the end.
class ConfigTest : public ::testing::Test {
 protected:
  std::string path = (std::filesystem::temp_directory_path() / ("distrib-config-" + std::to_string(getpid()) + ".yaml")).string();
  void write(const std::string& yaml) {
    std::ofstream(path) << yaml;
    setenv("DISTRIB_CONFIG", path.c_str(), 1);
    reload();
  }
  void TearDown() override {
    for (const char* v : {"DISTRIB_CONFIG", "DISTRIB_CLIENT__CONNECT_TIMEOUT", "DISTRIB_WORKER__NTHREAD",
                          "DISTRIB_LOCAL_CLUSTER__N_WORKERS"})
      unsetenv(v);
    std::filesystem::remove(path);
    reload();
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(ConfigTest, DefaultsComeFromTheSchema) {
  reload();
  EXPECT_EQ(get("client.name"), "client");
  EXPECT_EQ(get_duration("client.connect-timeout"), std::chrono::seconds(10));
  EXPECT_TRUE(get_bool("local-cluster.processes"));
  EXPECT_EQ(get_fraction("local-cluster.memory.target"), 0.6);
  EXPECT_EQ(ClientOptions{}.connect_timeout, std::chrono::seconds(10));
}

TEST_F(ConfigTest, FileThenEnvironmentThenTheCaller) {
  write("client:\n  connect-timeout: 2m\n  name: from-file\nlocal-cluster:\n  n-workers: 3\n  memory:\n"
        "    pause: false\nworker:\n  preload: [a.so, b.so]\n");
  EXPECT_EQ(get_duration("client.connect-timeout"), std::chrono::minutes(2));
  EXPECT_EQ(ClientOptions{}.name, "from-file");
  EXPECT_EQ(LocalClusterOptions{}.n_workers, 3);
  EXPECT_EQ(LocalClusterOptions{}.memory_pause_fraction, std::nullopt);  // a threshold turned off
  EXPECT_EQ(get("worker.preload"), "a.so\nb.so");
  auto s = settings("client.connect-timeout");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].source, "file " + path);
  EXPECT_EQ(s[0].env, "DISTRIB_CLIENT__CONNECT_TIMEOUT");

  setenv("DISTRIB_CLIENT__CONNECT_TIMEOUT", "500ms", 1);
  EXPECT_EQ(get_duration("client.connect-timeout"), std::chrono::milliseconds(500));  // the environment wins
  EXPECT_EQ(settings("client.connect-timeout")[0].source, "env DISTRIB_CLIENT__CONNECT_TIMEOUT");
  ClientOptions mine;
  mine.connect_timeout = std::chrono::seconds(1);  // and what the program sets wins over both
  EXPECT_EQ(mine.connect_timeout, std::chrono::seconds(1));
  LocalClusterOptions designated{.n_workers = 5};
  EXPECT_EQ(designated.n_workers, 5);
  EXPECT_EQ(designated.memory_pause_fraction, std::nullopt);
}

TEST_F(ConfigTest, UnknownKeysAndBadValuesAreNamed) {
  write("worker:\n  nthread: 4\n");
  auto e = error_of([] { get("client.name"); });
  EXPECT_NE(e.find("unknown key 'worker.nthread'"), std::string::npos) << e;
  EXPECT_NE(e.find("worker.nthreads"), std::string::npos) << e;  // the known keys of the section
  EXPECT_NE(e.find(path), std::string::npos) << e;

  write("client:\n  connect-timeout: soon\n");
  e = error_of([] { get_duration("client.connect-timeout"); });
  EXPECT_NE(e.find("client.connect-timeout = 'soon'"), std::string::npos) << e;
  EXPECT_NE(e.find("file " + path), std::string::npos) << e;

  write("- not\n- a mapping\n");
  EXPECT_NE(error_of([] { get("client.name"); }).find("not a YAML mapping"), std::string::npos);
  write("client: [unclosed\n");
  EXPECT_NE(error_of([] { get("client.name"); }).find(path), std::string::npos);

  unsetenv("DISTRIB_CONFIG");
  setenv("DISTRIB_WORKER__NTHREAD", "4", 1);
  reload();
  e = error_of([] { get("client.name"); });
  EXPECT_NE(e.find("unknown setting DISTRIB_WORKER__NTHREAD"), std::string::npos) << e;
  unsetenv("DISTRIB_WORKER__NTHREAD");
  reload();
  EXPECT_NE(error_of([] { get("client.nmae"); }).find("unknown configuration key 'client.nmae'"), std::string::npos);
  setenv("DISTRIB_LOCAL_CLUSTER__N_WORKERS", "two", 1);
  EXPECT_NE(error_of([] { get_int("local-cluster.n-workers"); }).find("env DISTRIB_LOCAL_CLUSTER__N_WORKERS"),
            std::string::npos);
}

}  // namespace
}  // namespace distrib::config
