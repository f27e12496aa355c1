module raygate.local/kuberay-oracle

go 1.26.0

require github.com/ray-project/kuberay/ray-operator v1.7.0
