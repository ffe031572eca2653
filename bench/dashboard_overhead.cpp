// The dashboard's cost: task throughput (50k-task map + gather) with nobody looking, with
// the page's API polled twice a second, and with /status open in headless Chromium.
//   bench_dashboard_overhead [repeats] [--screenshot out.png]
// With --screenshot, also runs the seed's array example in a loop and saves a screenshot
// of /status taken while it runs (docs/dashboard.png is made this way).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <distrib/distrib.hpp>
#include <filesystem>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "cluster/process.hpp"

int inc(int x) { return x + 1; }
DISTRIB_TASK(inc);

namespace {
std::vector<std::string> chromium_args(const std::string& profile) {
  return {"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--no-first-run", "--user-data-dir=" + profile};
}

// Sends `sig` to every process whose command line mentions `profile` (the browser's tree).
void signal_profile(const std::string& profile, int sig) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::FILE* f = std::fopen((entry.path() / "cmdline").c_str(), "r");
    if (!f) continue;
    std::string cmdline;
    char buf[4096];
    std::size_t got;
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) cmdline.append(buf, got);
    std::fclose(f);
    if (cmdline.find(profile) != std::string::npos) kill(std::stoi(name), sig);
  }
}

double map_rate(distrib::Client& client, int n, int offset) {
  std::vector<int> xs(static_cast<std::size_t>(n));
  std::iota(xs.begin(), xs.end(), offset);
  auto t0 = bench::Clock::now();
  auto fs = client.map(inc, xs);
  auto r = client.gather(fs);
  return static_cast<double>(r.size()) / bench::seconds_since(t0);
}
}  // namespace

int main(int argc, char** argv) {
  distrib::init(argc, argv);
  int repeats = 3;
  std::string screenshot;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--screenshot" && i + 1 < argc) screenshot = argv[++i];
    else repeats = std::stoi(a);
  }
  if (access("/usr/bin/chromium", X_OK) != 0) {
    std::fprintf(stderr, "bench_dashboard_overhead needs chromium (apt-get install chromium)\n");
    return 1;
  }
  distrib::LocalCluster cluster({.n_workers = 2, .threads_per_worker = 1, .dashboard_address = "0"});
  distrib::Client client(cluster);
  client.wait_for_workers(2);
  const std::string link = client.dashboard_link();
  std::fprintf(stderr, "dashboard at %s\n", link.c_str());
  const std::string profile = "/tmp/distrib-bench-chromium-" + std::to_string(getpid());

  if (!screenshot.empty()) {
    namespace da = distrib::array;
    std::atomic<bool> stop{false};
    std::thread work([&] {
      while (!stop) {
        auto x = da::random::random({10000, 10000}, {1000, 1000});
        auto z = (x + x.T()).mean(0);
        client.compute(z).result();
      }
    });
    auto args = chromium_args(profile);
    args.insert(args.end(), {"--window-size=1400,1100", "--virtual-time-budget=4000", "--hide-scrollbars",
                             "--screenshot=" + screenshot, link});
    auto shot = distrib::detail::ChildProcess::spawn(args, {}, {}, -1);
    shot.wait(std::chrono::milliseconds(60000));
    stop = true;
    work.join();
    std::filesystem::remove_all(profile);
    std::fprintf(stderr, "screenshot saved to %s\n", screenshot.c_str());
  }

  // Alternately: no viewer (the browser stopped with SIGSTOP), the page open in headless
  // Chromium (SIGCONT), and the page's requests alone (curl every 500 ms). The browser
  // starts once and warms up first: its start-up costs several core-seconds.
  const int n = 50000;
  const std::string api = link.substr(0, link.rfind('/')) + "/api/v1/status";
  auto args = chromium_args(profile);
  args.push_back(link);
  auto browser = distrib::detail::ChildProcess::spawn(args, {}, {}, -1);
  std::this_thread::sleep_for(std::chrono::seconds(10));
  map_rate(client, n, 0);  // warm-up
  std::vector<double> closed, polled, browsed;
  int offset = 1;
  for (int r = 0; r < repeats; ++r) {
    signal_profile(profile, SIGSTOP);
    closed.push_back(map_rate(client, n, offset++ * 1000000));
    {
      auto poller = distrib::detail::ChildProcess::spawn(
          {"/bin/sh", "-c", "while true; do curl -s -o /dev/null " + api + "; sleep 0.5; done"}, {}, {}, -1);
      std::this_thread::sleep_for(std::chrono::seconds(1));
      polled.push_back(map_rate(client, n, offset++ * 1000000));
      poller.stop(std::chrono::milliseconds(1000));
    }
    signal_profile(profile, SIGCONT);
    std::this_thread::sleep_for(std::chrono::seconds(1));  // polling again
    browsed.push_back(map_rate(client, n, offset++ * 1000000));
  }
  browser.stop(std::chrono::milliseconds(2000));
  std::filesystem::remove_all(profile);
  bench::report("map_50k_no_viewer", "tasks/s", closed);
  bench::report("map_50k_api_polled", "tasks/s", polled);
  bench::report("map_50k_page_in_chromium", "tasks/s", browsed);
  std::printf("{\"bench\": \"polled_over_no_viewer\", \"unit\": \"ratio\", \"median\": %.4f}\n",
              bench::median(polled) / bench::median(closed));
  std::printf("{\"bench\": \"chromium_over_no_viewer\", \"unit\": \"ratio\", \"median\": %.4f}\n",
              bench::median(browsed) / bench::median(closed));
  client.shutdown();
  return 0;
}
