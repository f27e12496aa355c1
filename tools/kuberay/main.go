// Command kuberay runs parts of KubeRay's operator (github.com/ray-project/kuberay/ray-operator,
// imported as a Go module, nothing copied) for raygate's tests and benchmarks:
//
//	kuberay operator [flags]
//	    KubeRay's reconcilers (controllers/ray: NewReconciler(...).SetupWithManager, and on request
//	    the RayJob/RayService ones) in a controller-runtime manager, wired as the operator's own
//	    main.go wires them: the same scheme, cache selectors, feature gates, batch-scheduler
//	    manager and reconciler options. The kubeconfig comes from KUBECONFIG (or --kubeconfig);
//	    the operator's environment switches (ENABLE_RANDOM_POD_DELETE,
//	    ENABLE_INIT_CONTAINER_INJECTION, ENABLE_PROBES_INJECTION, ...) are read by KubeRay itself.
//	kuberay serve --listen 127.0.0.1:9443 --cert-dir DIR
//	    KubeRay's validating webhook (RayClusterWebhook from ray-operator/pkg/webhooks/v1) on
//	    controller-runtime's webhook server, as the operator's manager serves it, at
//	    /validate-ray-io-v1-raycluster, with DIR/tls.crt and DIR/tls.key.
//	kuberay diff < objects.jsonl
//	    For each RayCluster (one JSON object per line) prints one JSON line
//	    {"error": "<first error>"} or {"error": null}, from utils.ValidateRayClusterMetadata and
//	    then utils.ValidateRayClusterSpec, in that order (the operator's reconcile-time check).
//	kuberay version
//	    Prints the ray-operator module version this binary was built with.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"go.uber.org/zap/zapcore"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	k8szap "sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	configapi "github.com/ray-project/kuberay/ray-operator/apis/config/v1alpha1"
	rayv1 "github.com/ray-project/kuberay/ray-operator/apis/ray/v1"
	"github.com/ray-project/kuberay/ray-operator/controllers/ray"
	"github.com/ray-project/kuberay/ray-operator/controllers/ray/batchscheduler"
	"github.com/ray-project/kuberay/ray-operator/controllers/ray/utils"
	"github.com/ray-project/kuberay/ray-operator/pkg/features"
	webhooks "github.com/ray-project/kuberay/ray-operator/pkg/webhooks/v1"
)

const modulePath = "github.com/ray-project/kuberay/ray-operator"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "operator":
		operator(os.Args[2:])
	case "serve":
		serve(os.Args[2:])
	case "diff":
		diff()
	case "version":
		fmt.Println(operatorVersion())
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kuberay operator [flags] | kuberay serve --listen HOST:PORT --cert-dir DIR | kuberay diff < objects.jsonl | kuberay version")
	os.Exit(2)
}

// operatorVersion is the ray-operator module version linked into this binary.
func operatorVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				return d.Version
			}
		}
	}
	return "unknown"
}

func fail(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "kuberay: %s: %v\n", what, err)
		os.Exit(1)
	}
}

func operator(args []string) {
	fs := flag.NewFlagSet("operator", flag.ExitOnError)
	metricsAddr := fs.String("metrics-addr", "0", "metrics endpoint address (\"0\" disables it; the operator's default is :8080)")
	probeAddr := fs.String("health-probe-bind-address", "0", "health probe address (\"0\" disables it; the operator's default is :8082)")
	leaderElect := fs.Bool("enable-leader-election", false, "leader election (the operator's default is on; one replica here)")
	leaderNS := fs.String("leader-election-namespace", "", "namespace of the leader-election Lease")
	concurrency := fs.Int("reconcile-concurrency", configapi.DefaultReconcileConcurrency, "max concurrency for reconciling")
	watchNS := fs.String("watch-namespace", "", "namespaces to watch, comma-separated (empty: all)")
	featureGates := fs.String("feature-gates", "", "KubeRay feature gates, e.g. RayClusterStatusConditions=true,RayMultiHostIndexing=false")
	controllers := fs.String("controllers", "raycluster", "comma-separated: raycluster, rayjob, rayservice")
	qps := fs.Float64("qps", float64(configapi.DefaultQPS), "client QPS")
	burst := fs.Int("burst", configapi.DefaultBurst, "client burst")
	zopts := k8szap.Options{TimeEncoder: zapcore.ISO8601TimeEncoder}
	zopts.BindFlags(fs)
	_ = fs.Parse(args)

	// The operator's logger: zap with the ISO-8601 time encoder, also used for client-go's klog.
	logger := k8szap.New(k8szap.UseFlagOptions(&zopts))
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	setupLog := ctrl.Log.WithName("setup")

	// As the operator: feature gates first, then the scheme (Gateway API only for the gate that
	// needs it), the Job cache selector, the namespaces.
	fail(utilfeature.DefaultMutableFeatureGate.Set(*featureGates), "feature gates")
	features.LogFeatureGates(setupLog)
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(rayv1.AddToScheme(scheme))
	utilruntime.Must(batchv1.AddToScheme(scheme))
	utilruntime.Must(configapi.AddToScheme(scheme))

	config := configapi.Configuration{
		MetricsAddr:                  *metricsAddr,
		ProbeAddr:                    *probeAddr,
		EnableLeaderElection:         leaderElect,
		LeaderElectionNamespace:      *leaderNS,
		ReconcileConcurrency:         *concurrency,
		WatchNamespace:               *watchNS,
		DeleteRayJobAfterJobFinishes: os.Getenv(utils.DELETE_RAYJOB_CR_AFTER_JOB_FINISHES) == "true",
		QPS:                          qps,
		Burst:                        burst,
	}
	label, err := labels.NewRequirement(utils.KubernetesCreatedByLabelKey, selection.Equals, []string{utils.ComponentName})
	fail(err, "cache selector")
	options := ctrl.Options{
		Scheme: scheme,
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{},
			ByObject: map[client.Object]cache.ByObject{
				&batchv1.Job{}: {Label: labels.NewSelector().Add(*label)},
			},
		},
		Metrics:                 metricsserver.Options{BindAddress: config.MetricsAddr},
		HealthProbeBindAddress:  config.ProbeAddr,
		LeaderElection:          *config.EnableLeaderElection,
		LeaderElectionID:        "ray-operator-leader",
		LeaderElectionNamespace: config.LeaderElectionNamespace,
	}
	if config.WatchNamespace != "" {
		for _, ns := range strings.Split(config.WatchNamespace, ",") {
			options.Cache.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	restConfig := ctrl.GetConfigOrDie()
	restConfig.UserAgent = fmt.Sprintf("kuberay-operator/%s", utils.KUBERAY_VERSION)
	restConfig.QPS = float32(*config.QPS)
	restConfig.Burst = *config.Burst
	mgr, err := ctrl.NewManager(restConfig, options)
	fail(err, "manager")
	ctx := ctrl.SetupSignalHandler()

	batchSchedulerManager, err := batchscheduler.NewSchedulerManager(ctx, config, restConfig, mgr.GetClient())
	fail(err, "batch scheduler manager")
	batchSchedulerManager.AddToScheme(mgr.GetScheme())

	for _, c := range strings.Split(*controllers, ",") {
		switch strings.TrimSpace(c) {
		case "raycluster":
			opts := ray.RayClusterReconcilerOptions{
				HeadSidecarContainers:   config.HeadSidecarContainers,
				WorkerSidecarContainers: config.WorkerSidecarContainers,
				IsOpenShift:             utils.GetClusterType(),
				BatchSchedulerManager:   batchSchedulerManager,
				DefaultContainerEnvs:    config.DefaultContainerEnvs,
			}
			fail(ray.NewReconciler(ctx, mgr, opts).SetupWithManager(mgr, config.ReconcileConcurrency), "RayCluster controller")
		case "rayjob":
			opts := ray.RayJobReconcilerOptions{BatchSchedulerManager: batchSchedulerManager}
			fail(ray.NewRayJobReconciler(ctx, mgr, opts, config).SetupWithManager(mgr, config.ReconcileConcurrency), "RayJob controller")
		case "rayservice":
			fail(ray.NewRayServiceReconciler(ctx, mgr, config).SetupWithManager(mgr, config.ReconcileConcurrency), "RayService controller")
		default:
			fail(fmt.Errorf("unknown controller %q (raycluster, rayjob, rayservice)", c), "--controllers")
		}
	}
	fail(mgr.AddHealthzCheck("healthz", healthz.Ping), "health check")
	fail(mgr.AddReadyzCheck("readyz", healthz.Ping), "ready check")
	setupLog.Info("starting manager", "rayOperator", operatorVersion(), "controllers", *controllers)
	fail(mgr.Start(ctx), "manager")
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:9443", "host:port")
	certDir := fs.String("cert-dir", "", "directory with tls.crt and tls.key")
	_ = fs.Parse(args)
	host, portStr, err := net.SplitHostPort(*listen)
	fail(err, "--listen")
	port, err := strconv.Atoi(portStr)
	fail(err, "--listen port")
	// The operator logs through zap (production JSON encoder, Info level); RayClusterWebhook
	// logs one "validate create"/"validate update" line per request through it.
	ctrl.SetLogger(k8szap.New(k8szap.UseFlagOptions(&k8szap.Options{TimeEncoder: zapcore.ISO8601TimeEncoder})))
	scheme := runtime.NewScheme()
	fail(rayv1.AddToScheme(scheme), "scheme")
	// The operator builds its webhook server from webhook.Options with only these set; the
	// handler is what ctrl.NewWebhookManagedBy(mgr).For(&RayCluster{}).WithValidator(...) builds.
	srv := webhook.NewServer(webhook.Options{Host: host, Port: port, CertDir: *certDir})
	srv.Register("/validate-ray-io-v1-raycluster",
		admission.WithCustomValidator(scheme, &rayv1.RayCluster{}, &webhooks.RayClusterWebhook{}))
	fail(srv.Start(ctrl.SetupSignalHandler()), "webhook server")
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
	fail(in.Err(), "stdin")
}
