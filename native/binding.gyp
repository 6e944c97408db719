# Optional native GEMM for resflow (see README.md). Built by scripts/build-native.mjs with the
# node-gyp that npm bundles; a failed build only means the wasm kernels are used.
{
  "variables": {
    # -march value: "native" (the default: the module is built on the machine that runs it; the
    # loader refuses it on a CPU lacking the build CPU's instruction sets), or e.g. "x86-64-v3"
    # for a portable build (RESFLOW_NATIVE_MARCH=x86-64-v3 npm run prepare).
    "resflow_march%": "native"
  },
  "targets": [
    {
      "target_name": "resflow_native",
      "sources": ["src/addon.cc", "src/gemm.cc", "src/embeddings.cc", "src/adam.cc", "src/relu.cc", "src/add.cc", "src/huge_pages.cc"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-O0", "-O1", "-O2", "-Os"],
      "cflags_cc!": ["-fno-exceptions", "-O0", "-O1", "-O2", "-Os"],
      "cflags": ["-O3", "-ffp-contract=fast", "-fno-math-errno", "-pthread"],
      "cflags_cc": ["-O3", "-std=gnu++17", "-fexceptions", "-ffp-contract=fast", "-fno-math-errno", "-pthread"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["OS!='mac' and OS!='win'", {
          "cflags": ["-march=<(resflow_march)"],
          "cflags_cc": ["-march=<(resflow_march)"]
        }],
        ["OS=='mac'", {
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "gnu++17",
            "GCC_OPTIMIZATION_LEVEL": "3",
            "OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=fast"]
          }
        }],
        ["OS=='win'", {
          "msvs_settings": {
            "VCCLCompilerTool": { "ExceptionHandling": 1, "Optimization": 2, "AdditionalOptions": ["/std:c++17"] }
          }
        }]
      ]
    }
  ]
}
