// Package faces holds one behaviour table of the API's verbs (run, get,
// exists, status, cancel, invalidate, backfill, and the gates' approve,
// reject, approvals and signal), run against each of the
// three faces a user calls them through: the embedded engine
// (flowstone.Engine), the *Pipeline methods (the default embedded engine)
// and client.Client over a fleet (a coordinator and two workers on an
// embedded nats-server). A behaviour that differs between faces fails the
// table, so that the faces cannot drift apart. It has tests only.
package faces
