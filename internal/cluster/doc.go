// Package cluster holds the multi-process proof of cluster mode (issue 14):
// three `wick serve` processes sharing one PostgreSQL schema and a
// three-server NATS cluster with JetStream, all started by the tests, with
// devices spread over the nodes and one Wick node and one NATS server
// killed with SIGKILL while events flow. The package has no non-test code
// apart from this comment; docs/cluster-test.md describes what the tests
// check and the figures they print.
package cluster
