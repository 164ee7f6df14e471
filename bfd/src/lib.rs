//! Bidirectional Forwarding Detection (RFC 5880, 5881, 5883): a sans-IO state machine and a tokio driver. Built by the BFD issue.
