// Command kuberay-h2h runs KubeRay's RayCluster validation outside the operator:
//
//	kuberay-h2h serve --listen 127.0.0.1:9443 --cert-dir DIR
//	    KubeRay's validating webhook (RayClusterWebhook from ray-operator/pkg/webhooks/v1) on
//	    controller-runtime's webhook server, as the operator's manager serves it, at
//	    /validate-ray-io-v1-raycluster, with DIR/tls.crt and DIR/tls.key.
//	kuberay-h2h diff < objects.jsonl
//	    For each RayCluster (one JSON object per line) prints one JSON line
//	    {"error": "<first error>"} or {"error": null}, from utils.ValidateRayClusterMetadata and
//	    then utils.ValidateRayClusterSpec, in that order (the operator's reconcile-time check).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	k8szap "sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	rayv1 "github.com/ray-project/kuberay/ray-operator/apis/ray/v1"
	"github.com/ray-project/kuberay/ray-operator/controllers/ray/utils"
	webhooks "github.com/ray-project/kuberay/ray-operator/pkg/webhooks/v1"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kuberay-h2h serve --listen HOST:PORT --cert-dir DIR | kuberay-h2h diff < objects.jsonl")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "diff":
		diff()
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:9443", "host:port")
	certDir := fs.String("cert-dir", "", "directory with tls.crt and tls.key")
	_ = fs.Parse(args)
	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// The operator logs through zap (production JSON encoder, Info level); RayClusterWebhook
	// logs one "validate create"/"validate update" line per request through it.
	ctrl.SetLogger(k8szap.New(k8szap.UseFlagOptions(&k8szap.Options{TimeEncoder: zapcore.ISO8601TimeEncoder})))
	scheme := runtime.NewScheme()
	if err := rayv1.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The operator builds its webhook server from webhook.Options with only these set; the
	// handler is what ctrl.NewWebhookManagedBy(mgr).For(&RayCluster{}).WithValidator(...) builds.
	srv := webhook.NewServer(webhook.Options{Host: host, Port: port, CertDir: *certDir})
	srv.Register("/validate-ray-io-v1-raycluster",
		admission.WithCustomValidator(scheme, &rayv1.RayCluster{}, &webhooks.RayClusterWebhook{}))
	if err := srv.Start(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func diff() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		var rc rayv1.RayCluster
		var res struct {
			Error *string `json:"error"`
			Parse *string `json:"parse,omitempty"`
		}
		if err := json.Unmarshal(in.Bytes(), &rc); err != nil {
			s := err.Error()
			res.Parse = &s
		} else {
			err := utils.ValidateRayClusterMetadata(rc.ObjectMeta)
			if err == nil {
				err = utils.ValidateRayClusterSpec(&rc.Spec, rc.Annotations)
			}
			if err != nil {
				s := err.Error()
				res.Error = &s
			}
		}
		_ = enc.Encode(res)
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
