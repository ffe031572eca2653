// The journal reader: decode_entry over a message made of arbitrary bytes, and
// read_records over a file holding them (bit 0 of the first byte: allow a torn tail). Bad
// records must give JournalCorrupt / invalid_argument / a Cap'n Proto exception, never a crash.
#include <kj/exception.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "fuzz_input.hpp"
#include "journal/journal_codec.hpp"
#include "journal/record_file.hpp"

using namespace distrib;
using namespace distrib::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  if (data[0] & 2) {
    InMessage m;
    if (!fuzz::message_from_bytes({data + 1, size - 1}, m)) return 0;
    journal::SnapshotParts parts;
    try {
      (void)journal::decode_entry(m, parts);
    } catch (const kj::Exception&) {
    } catch (const std::exception&) {
    }
    return 0;
  }
  static const std::string path = "/tmp/distrib_journal_fuzz." + std::to_string(::getpid());
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data + 1, 1, size - 1, f);
    std::fclose(f);
  } else {
    return 0;
  }
  FrameLimits limits;
  limits.max_header_bytes = 1 << 16;
  limits.max_frames = 64;
  limits.max_frame_bytes = 1 << 20;
  limits.max_message_bytes = 1 << 21;
  journal::SnapshotParts parts;
  try {
    journal::read_records(path, data[0] & 1, limits, [&](InMessage&& m, std::uint64_t) {
      try {
        (void)journal::decode_entry(m, parts);
      } catch (const kj::Exception&) {
      } catch (const std::invalid_argument&) {
      }
    });
  } catch (const journal::JournalCorrupt&) {
  } catch (const std::exception&) {
  }
  std::remove(path.c_str());
  return 0;
}
