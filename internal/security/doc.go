// Package security holds the tests of the fleet's roles and of TLS: a real
// nats-server started from the shipped configuration (deploy/nats.conf:
// JetStream, one user per role), a coordinator and a worker connected as
// their roles, and clients, fsctl included, connected as theirs.
//
// The role tests prove each allowance (every fsctl verb works as the
// client; the coordinator and the worker run a fleet with no permission
// refused them) and each denial (a client cannot pull tasks, publish
// tasks or completions, write a record, a run or a result, or forge a
// reply; a worker cannot call an API verb, invalidate, cancel, approve,
// reject or signal among them; a coordinator cannot pull tasks). The TLS
// tests run a fleet over TLS with the server verified, and with mutual
// TLS, and check that a client without the CA, or without a client
// certificate when one is required, fails saying what to give. The
// certificates are made at test time (internal/tlstest).
//
// The package has tests only; OPERATIONS.md ("Roles and permissions",
// "TLS") describes what they prove for operators.
package security
