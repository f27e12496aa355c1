// kuberay-oracle runs KubeRay's own RayCluster validation (ray-operator v1.7.0, imported as a Go
// module, not copied) on JSON documents, for differential tests of raygate's rules.
//
// Usage: kuberay-oracle 'Gate=true,Other=false' < docs.jsonl
// Input: one RayCluster JSON object per line. Output: one JSON object per line:
// {"step": "metadata|spec|upgrade|status|decode|", "error": "<KubeRay's message or empty>"}.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	rayv1 "github.com/ray-project/kuberay/ray-operator/apis/ray/v1"
	"github.com/ray-project/kuberay/ray-operator/controllers/ray/utils"
	_ "github.com/ray-project/kuberay/ray-operator/pkg/features"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
)

type result struct {
	Step  string `json:"step"`
	Error string `json:"error"`
}

func check(rc *rayv1.RayCluster) result {
	if err := utils.ValidateRayClusterMetadata(rc.ObjectMeta); err != nil {
		return result{"metadata", err.Error()}
	}
	if err := utils.ValidateRayClusterSpec(&rc.Spec, rc.Annotations); err != nil {
		return result{"spec", err.Error()}
	}
	if err := utils.ValidateRayClusterUpgradeOptions(rc); err != nil {
		return result{"upgrade", err.Error()}
	}
	if err := utils.ValidateRayClusterStatus(rc); err != nil {
		return result{"status", err.Error()}
	}
	return result{"", ""}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] != "" {
		if err := utilfeature.DefaultMutableFeatureGate.Set(os.Args[1]); err != nil {
			fmt.Fprintln(os.Stderr, "feature gates:", err)
			os.Exit(2)
		}
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		var rc rayv1.RayCluster
		var r result
		if err := json.Unmarshal(in.Bytes(), &rc); err != nil {
			r = result{"decode", err.Error()}
		} else {
			r = func() (r result) {
				defer func() {
					if p := recover(); p != nil {
						r = result{"panic", fmt.Sprint(p)}
					}
				}()
				return check(&rc)
			}()
		}
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
