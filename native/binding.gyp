{
  "variables": {
    "with_bpf%": 0
  },
  "targets": [
    {
      "target_name": "sock_diag",
      "sources": ["sock_diag.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lpthread"]
    },
    {
      "target_name": "dns_answers",
      "sources": ["dns_answers.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lpthread"]
    }
  ],
  "conditions": [
    ["with_bpf==1", {
      "targets": [
        {
          "target_name": "bpf_source",
          "sources": ["bpf_source.c"],
          "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"],
          "defines": ["NAPI_VERSION=8"],
          "libraries": ["-lbpf", "-lpthread"]
        }
      ]
    }]
  ]
}
