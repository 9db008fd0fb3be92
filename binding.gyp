{
  "targets": [
    {
      "target_name": "quiver",
      "sources": [
        "native/core/error.cpp",
        "native/core/faiss_io.cpp",
        "native/core/fastscan.cpp",
        "native/core/gpu.cpp",
        "native/core/index.cpp",
        "native/core/io.cpp",
        "native/core/ivf.cpp",
        "native/core/kernels_neon.cpp",
        "native/core/kernels_scalar.cpp",
        "native/core/kernels_x86.cpp",
        "native/core/kmeans.cpp",
        "native/core/linalg.cpp",
        "native/core/lut_quant.cpp",
        "native/core/metric.cpp",
        "native/core/opq.cpp",
        "native/core/pca.cpp",
        "native/core/split.cpp",
        "native/core/pq.cpp",
        "native/core/prq.cpp",
        "native/core/serialize.cpp",
        "native/core/refine.cpp",
        "native/core/rq.cpp",
        "native/core/shards.cpp",
        "native/core/simd.cpp",
        "native/core/spec.cpp",
        "native/core/thread_pool.cpp",
        "native/core/trq.cpp",
        "native/addon/addon.cpp",
        "native/addon/convert.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/core"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wno-unused-parameter"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      },
      "msvs_settings": {
        "VCCLCompilerSettings": { "ExceptionHandling": 1 }
      }
    }
  ]
}
