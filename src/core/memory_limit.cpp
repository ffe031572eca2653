#include "core/memory_limit.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace distrib::detail {

namespace {
std::string lower_trimmed(std::string_view text) {
  std::string s;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) s.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return s;
}

// Dask's parse_bytes table: decimal for kb/k, binary for kib/ki.
double unit_factor(const std::string& unit) {
  static const std::pair<const char*, double> units[] = {
      {"", 1},           {"b", 1},           {"k", 1e3},         {"kb", 1e3},        {"m", 1e6},  {"mb", 1e6},
      {"g", 1e9},        {"gb", 1e9},        {"t", 1e12},        {"tb", 1e12},       {"p", 1e15}, {"pb", 1e15},
      {"ki", 1024.0},    {"kib", 1024.0},    {"mi", 1048576.0},  {"mib", 1048576.0}, {"gi", 1073741824.0},
      {"gib", 1073741824.0}, {"ti", 1099511627776.0}, {"tib", 1099511627776.0}};
  for (const auto& [name, factor] : units)
    if (unit == name) return factor;
  return -1;
}
}  // namespace

std::uint64_t parse_byte_size(std::string_view text) {
  const std::string s = lower_trimmed(text);
  const char* begin = s.c_str();
  char* end = nullptr;
  const double number = std::strtod(begin, &end);
  const double factor = end == begin ? -1 : unit_factor(std::string(end));
  const double bytes = number * factor;
  if (factor < 0 || !std::isfinite(bytes) || bytes < 0 || bytes >= 1.8e19)
    throw std::invalid_argument("'" + std::string(text) + "' is not a size in bytes (e.g. 4000000000, 4GiB, 512MB)");
  return static_cast<std::uint64_t>(std::llround(bytes));
}

std::optional<std::uint64_t> parse_memory_limit(std::string_view text, std::uint64_t machine_bytes, unsigned nthreads,
                                                unsigned cores) {
  const std::string s = lower_trimmed(text);
  if (s == "0" || s == "none") return std::nullopt;
  if (s == "auto") {
    const double share = cores == 0 ? 1.0 : std::min(1.0, static_cast<double>(nthreads) / cores);
    return static_cast<std::uint64_t>(static_cast<double>(machine_bytes) * share);
  }
  // A plain number up to 1 is a fraction of the machine (Dask's float form); above, bytes.
  char* end = nullptr;
  const double number = std::strtod(s.c_str(), &end);
  if (end != s.c_str() && *end == '\0' && number > 0 && number <= 1 && s.find_first_of(".e") != std::string::npos)
    return static_cast<std::uint64_t>(static_cast<double>(machine_bytes) * number);
  try {
    const auto bytes = parse_byte_size(text);
    if (bytes == 0) return std::nullopt;
    return bytes;
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument("--memory-limit '" + std::string(text) +
                                "': expected bytes, a size such as 4GiB, a fraction of the machine's memory "
                                "such as 0.5, auto, or 0 for no limit");
  }
}

std::optional<double> parse_memory_fraction(std::string_view text, std::string_view option) {
  const std::string s = lower_trimmed(text);
  if (s == "false" || s == "none" || s == "off") return std::nullopt;
  char* end = nullptr;
  const double number = std::strtod(s.c_str(), &end);
  // strtod also reads "nan" and "inf": the range test refuses both.
  if (!s.empty() && end != s.c_str() && *end == '\0' && number > 0 && number <= 1) return number;
  throw std::invalid_argument(std::string(option) + " '" + std::string(text) +
                              "': expected a fraction of the memory limit in (0, 1] such as 0.7, or false "
                              "(also none, off) to disable it");
}

std::string format_byte_size(std::uint64_t bytes) {
  // Dask's order: the largest unit the number reaches 0.9 of.
  static const std::pair<const char*, double> units[] = {
      {"PiB", 1125899906842624.0}, {"TiB", 1099511627776.0}, {"GiB", 1073741824.0}, {"MiB", 1048576.0}, {"kiB", 1024.0}};
  const auto n = static_cast<double>(bytes);
  char text[64];
  for (const auto& [unit, factor] : units)
    if (n >= factor * 0.9) {
      std::snprintf(text, sizeof text, "%.2f %s", n / factor, unit);
      return text;
    }
  return std::to_string(bytes) + " B";
}

}  // namespace distrib::detail
