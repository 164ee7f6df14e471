//! CRD types (`Eip`, `BgpConf`, `BgpPeer` in `network.kubesphere.io/v1alpha2`), annotation and label keys, pure validation, and `crdgen`. Built by the controller issue.
