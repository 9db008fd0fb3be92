#include "simd.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "error.h"

namespace quiver {

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::AVX2: return "avx2";
    case SimdLevel::AVX512: return "avx512";
    case SimdLevel::Neon: return "neon";
  }
  return "scalar";
}

bool parse_simd_level(const char* name, SimdLevel* out) {
  if (std::strcmp(name, "scalar") == 0) *out = SimdLevel::Scalar;
  else if (std::strcmp(name, "avx2") == 0) *out = SimdLevel::AVX2;
  else if (std::strcmp(name, "avx512") == 0) *out = SimdLevel::AVX512;
  else if (std::strcmp(name, "neon") == 0) *out = SimdLevel::Neon;
  else return false;
  return true;
}

bool simd_level_supported(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return true;
#ifdef QUIVER_HAVE_X86_KERNELS
    case SimdLevel::AVX2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case SimdLevel::AVX512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#endif
#ifdef QUIVER_HAVE_NEON_KERNELS
    case SimdLevel::Neon: return true;
#endif
    default: return false;
  }
  return false;
}

SimdLevel best_supported_simd_level() {
  if (simd_level_supported(SimdLevel::Neon)) return SimdLevel::Neon;
  if (simd_level_supported(SimdLevel::AVX512)) return SimdLevel::AVX512;
  if (simd_level_supported(SimdLevel::AVX2)) return SimdLevel::AVX2;
  return SimdLevel::Scalar;
}

std::vector<SimdLevel> supported_simd_levels() {
  std::vector<SimdLevel> out;
  for (SimdLevel l : {SimdLevel::Scalar, SimdLevel::AVX2, SimdLevel::AVX512, SimdLevel::Neon})
    if (simd_level_supported(l)) out.push_back(l);
  return out;
}

const Kernels& kernels_for(SimdLevel level) {
  QV_CHECK(simd_level_supported(level), Unsupported,
           "SIMD level '" << simd_level_name(level) << "' is not supported by this CPU or build");
  switch (level) {
#ifdef QUIVER_HAVE_X86_KERNELS
    case SimdLevel::AVX2: return kAvx2Kernels;
    case SimdLevel::AVX512: return __builtin_cpu_supports("avx512vbmi") ? kAvx512VbmiKernels : kAvx512Kernels;
#endif
#ifdef QUIVER_HAVE_NEON_KERNELS
    case SimdLevel::Neon: return kNeonKernels;
#endif
    default: return kScalarKernels;
  }
}

namespace {

SimdLevel initial_level() {
  SimdLevel level = best_supported_simd_level();
  if (const char* env = std::getenv("QUIVER_SIMD")) {
    SimdLevel forced;
    // An unknown or unsupported forced level falls back to the best one rather than aborting start-up;
    // simd_level() then tells what is really in use.
    if (parse_simd_level(env, &forced) && simd_level_supported(forced)) level = forced;
  }
  return level;
}

std::atomic<int>& active_level() {
  static std::atomic<int> level{int(initial_level())};
  return level;
}

}  // namespace

SimdLevel simd_level() { return SimdLevel(active_level().load(std::memory_order_relaxed)); }

void set_simd_level(SimdLevel level) {
  kernels_for(level);  // validates
  active_level().store(int(level));
}

const Kernels& kernels() { return kernels_for(simd_level()); }

}  // namespace quiver
