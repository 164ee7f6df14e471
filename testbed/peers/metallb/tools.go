//go:build tools

// Package tools pins MetalLB's speaker and controller (the `main` packages of the module
// go.universe.tf/metallb) so that scripts/build-peers.sh can `go build` them at the version
// in go.mod. Berth's comparison benchmark runs them as processes beside the testbed's
// control plane; nothing here is part of what Berth's users run, and no MetalLB code is
// copied into this tree (their CRDs are read from the module cache at run time).
package tools

import (
	_ "go.universe.tf/metallb/controller"
	_ "go.universe.tf/metallb/speaker"
)
