{
  "variables": {
    # OMNISEG_STATIC_OPENBLAS=1 in the environment links libopenblas.a instead of libopenblas.so.
    "omniseg_static_openblas%": "<!(node -p \"process.env.OMNISEG_STATIC_OPENBLAS === '1' ? 1 : 0\")",
    # OMNISEG_STATIC_RUNTIME=1 (scripts/prebuild.sh) links libstdc++ statically too.
    "omniseg_static_runtime%": "<!(node -p \"process.env.OMNISEG_STATIC_RUNTIME === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "omniseg",
      "sources": [
        "<!@(node -p \"const s=require('./native/sources.json'); s.cpu.concat(s.addon).join(' ')\")"
      ],
      # /usr/include/openblas: where Fedora / RHEL (openblas-devel) put cblas.h; Debian's is on the
      # default path.
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "/usr/include/openblas"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      # -fvisibility=hidden as the CMake build: the addon exports only its Node-API entry point, so its
      # internals never interpose with another library's (the CUDA prebuild is loaded beside it).
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fvisibility=hidden", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["omniseg_static_openblas==1", {
          # Prebuilds (npm run prebuild): OpenBLAS linked in and its symbols kept private, so the
          # binary needs nothing beyond glibc, libstdc++ and libgcc at run time.
          "libraries": ["-Wl,--exclude-libs,ALL", "-Wl,-Bstatic", "-lopenblas", "-Wl,-Bdynamic", "-lpthread", "-lm"]
        }, {
          "libraries": ["-lopenblas"]
        }],
        ["omniseg_static_runtime==1", {
          # Prebuilds: libstdc++ linked in (private, as OpenBLAS), so the binary loads
          # beside an older libstdc++ than the build machine's; see native/core/prebuild_compat.cc.
          "sources": ["native/core/prebuild_compat.cc"],
          "ldflags": ["-static-libstdc++", "-Wl,--exclude-libs,ALL"]
        }]
      ]
    }
  ]
}
