#include <cstring>
#include <exception>

#include "check.h"
#include "simd.h"

namespace qvtest {

namespace {
int g_failures_in_case = 0;
}

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

void record_failure(const char* file, int line, const std::string& what) {
  ++g_failures_in_case;
  std::cerr << "    " << file << ":" << line << ": " << what << "\n";
}

}  // namespace qvtest

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  std::cout << "quiver C++ tests, SIMD level " << quiver::simd_level_name(quiver::simd_level()) << "\n";
  for (const auto& c : qvtest::registry()) {
    if (filter && !std::strstr(c.name, filter)) continue;
    qvtest::g_failures_in_case = 0;
    try {
      c.body();
    } catch (const qvtest::RequireFailed&) {
    } catch (const std::exception& e) {
      qvtest::record_failure("(exception)", 0, e.what());
    }
    if (qvtest::g_failures_in_case == 0) {
      ++passed;
      std::cout << "ok   " << c.name << "\n";
    } else {
      ++failed;
      std::cout << "FAIL " << c.name << "\n";
    }
  }
  std::cout << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}
