//! Annotation, label, finalizer and class names Berth reads or writes.
//!
//! OpenELB's keys are kept byte for byte so existing manifests work unchanged; Berth's own keys
//! live under `berth.io`. MetalLB's keys are accepted for users migrating from it.

/// API group of every Berth/OpenELB custom resource.
pub const GROUP: &str = "network.kubesphere.io";
/// API version of every Berth/OpenELB custom resource (storage version).
pub const VERSION: &str = "v1alpha2";

/// OpenELB opt-in annotation on a Service; its value must be [`OPENELB_OPT_IN_VALUE`].
pub const OPENELB_OPT_IN: &str = "lb.kubesphere.io/v1alpha1";
/// The value of [`OPENELB_OPT_IN`] that opts a Service in.
pub const OPENELB_OPT_IN_VALUE: &str = "openelb";
/// OpenELB annotation naming the Eip (pool) a Service takes its address from.
pub const OPENELB_POOL: &str = "eip.openelb.kubesphere.io/v1alpha2";
/// OpenELB annotation asking for a specific address (beats `spec.loadBalancerIP`).
pub const OPENELB_REQUESTED_IP: &str = "eip.openelb.kubesphere.io/v1alpha1";
/// OpenELB annotation on an Eip marking it as the default pool (value `"true"`).
pub const OPENELB_DEFAULT_POOL: &str = "eip.openelb.kubesphere.io/is-default-eip";
/// OpenELB node label giving a node's rack, keyed into `BgpConf.spec.asPerRack`.
pub const OPENELB_RACK_LABEL: &str = "openelb.kubesphere.io/rack";

/// MetalLB annotation: comma-separated requested addresses, at most one per family.
pub const METALLB_LOAD_BALANCER_IPS: &str = "metallb.io/loadBalancerIPs";
/// MetalLB annotation naming the pool.
pub const METALLB_ADDRESS_POOL: &str = "metallb.io/address-pool";
/// MetalLB annotation holding a sharing key: Services with the same key may share an address.
pub const METALLB_ALLOW_SHARED_IP: &str = "metallb.io/allow-shared-ip";

/// Service annotation: standard communities added to the pool's for this Service's
/// addresses, comma-separated (`65000:100, no-export`); see [`crate::bgp_overrides`].
pub const BGP_COMMUNITIES: &str = "berth.io/bgp-communities";
/// Service annotation: large communities added to the pool's, comma-separated
/// (`65000:1:2, 65000:1:3`).
pub const BGP_LARGE_COMMUNITIES: &str = "berth.io/bgp-large-communities";
/// Service annotation: LOCAL_PREF replacing the pool's (0–4294967295; iBGP only).
pub const BGP_LOCAL_PREF: &str = "berth.io/bgp-local-pref";
/// Service annotation: MULTI_EXIT_DISC replacing the pool's (0–4294967295).
pub const BGP_MED: &str = "berth.io/bgp-med";
/// Service annotation: AS_PATH prepend count replacing the pool's `asPathPrepend` (0–10;
/// `0` turns the pool's prepending off for this Service).
pub const BGP_AS_PATH_PREPEND: &str = "berth.io/bgp-as-path-prepend";
/// Service annotation: the AS to prepend (1–4294967295) with [`BGP_AS_PATH_PREPEND`]
/// (required beside it); unset: the local AS.
pub const BGP_AS_PATH_PREPEND_ASN: &str = "berth.io/bgp-as-path-prepend-asn";

/// Berth's `spec.loadBalancerClass`. Services with another class are never touched.
pub const LOAD_BALANCER_CLASS: &str = "berth.io/lb";

/// Standalone mode: when a Service's addresses were allocated (RFC 3339, written with its
/// status). Where two Services claim one address, the older allocation keeps it: files carry
/// no trustworthy creation time.
pub const ALLOCATED_AT: &str = "berth.io/allocated-at";

/// Finalizer on a Service holding an address: removed once the address is released.
pub const SERVICE_FINALIZER: &str = "berth.io/service-address";
/// Finalizer on an Eip while any Service holds one of its addresses.
pub const EIP_FINALIZER: &str = "berth.io/pool-in-use";

/// Field manager used for every server-side apply Berth's controller makes.
pub const CONTROLLER_FIELD_MANAGER: &str = "berth-controller";

/// Standard node label: nodes carrying it never announce load-balancer addresses.
pub const EXCLUDE_FROM_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// Name of the only `BgpConf` object that counts.
pub const BGP_CONF_NAME: &str = "default";

/// The annotation `kubectl apply` keeps a whole copy of the object in. Neither binary reads
/// it; both drop it from the objects they cache.
pub const KUBECTL_LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
