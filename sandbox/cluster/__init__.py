"""The real tier of the test bench: etcd, kube-apiserver, kube-controller-manager and Flagger v1.44,
built from the Go module proxy (:mod:`sandbox.cluster.binaries`, ``build-binaries.sh``) and run on
127.0.0.1 (:mod:`sandbox.cluster.runner`, ``python -m sandbox.cluster``); tests reach it through
:class:`sandbox.cluster.handle.ClusterHandle`."""
