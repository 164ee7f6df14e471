//! Network-namespace labs of real routers (BIRD 2, FRR, GoBGP, ExaBGP), traffic probes and the interop suite. Built by the testbed issue.
