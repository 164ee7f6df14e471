// Command berth-controlplane is the testbed's Kubernetes control plane: one binary holding
// etcd, kube-apiserver, kube-controller-manager and kubectl, built from the Go module proxy
// at the versions pinned in go.mod. The first argument names the program to run; the rest are
// that program's own flags. One binary (as hyperkube once was) links the shared Kubernetes code
// once, which keeps the cold build and the cache small, while each component still runs as its
// own process, so a test can stop the API server or etcd alone.
//
// This is test infrastructure only: nothing here is part of what Berth's users run.
package main

import (
	"fmt"
	"os"
	_ "time/tzdata"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: berth-controlplane etcd|kube-apiserver|kube-controller-manager|kubectl [flags]")
		os.Exit(2)
	}
	program := os.Args[1]
	// Each program parses os.Args itself (etcd) or through cobra (the others): present the
	// arguments as if it had been started under its own name.
	os.Args = append([]string{program}, os.Args[2:]...)
	switch program {
	case "etcd":
		etcdmain.Main(os.Args)
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kubectl":
		logs.GlogSetter(kubectl.GetLogVerbosity(os.Args)) // nolint:errcheck
		if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
	default:
		fmt.Fprintf(os.Stderr, "berth-controlplane: unknown program %q\n", program)
		os.Exit(2)
	}
}
