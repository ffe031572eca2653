// Programs that link distrib get mimalloc as their allocator (DISTRIB_USE_MIMALLOC, on by
// default): the loader must bind malloc to it, not to glibc, and operator new to libdistrib's
// (src/core/large_allocations.cpp: large blocks from the buffer pool, the rest from malloc).
// A link order or --as-needed slip would silently bring glibc's malloc back and cost a third
// of the task throughput, so this checks where the process's malloc and operator new live.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

namespace {
std::string library_defining(const char* symbol) {
  void* address = dlsym(RTLD_DEFAULT, symbol);
  if (!address) return "(not found)";
  Dl_info info{};
  if (dladdr(address, &info) == 0 || !info.dli_fname) return "(unknown)";
  return info.dli_fname;
}
}  // namespace

#if DISTRIB_TEST_EXPECT_MIMALLOC
TEST(Allocator, MallocAndFreeAreMimallocs) {
  for (const char* symbol : {"malloc", "free"})
    EXPECT_NE(library_defining(symbol).find("mimalloc"), std::string::npos)
        << symbol << " is served by " << library_defining(symbol);
}
#endif

TEST(Allocator, OperatorNewAndDeleteAreLibdistribs) {
  for (const char* symbol : {"_Znwm", "_Znam", "_ZdlPv", "_ZdlPvm", "_ZdaPv", "_ZdaPvm"})
    EXPECT_NE(library_defining(symbol).find("libdistrib"), std::string::npos)
        << symbol << " is served by " << library_defining(symbol);
}

#if !DISTRIB_TEST_EXPECT_MIMALLOC
TEST(Allocator, MallocIsTheSystemsWithoutMimalloc) {
  EXPECT_EQ(library_defining("malloc").find("mimalloc"), std::string::npos) << library_defining("malloc");
}
#endif
