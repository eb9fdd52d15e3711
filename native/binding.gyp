{
  "targets": [
    {
      "target_name": "sock_diag",
      "sources": ["sock_diag.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lpthread"]
    }
  ]
}
