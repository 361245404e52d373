package protocol

// Version is the protocol version this package speaks. Every request, reply,
// task, completion, manifest, event batch and event carries it as "v";
// peers of another version are refused with CodeUnsupportedVersion. Bump it
// for any change an older peer would misread (a new required field, a
// changed meaning), never for additions an older peer can safely reject as
// unknown.
const Version = 1

// ServiceVersion is the semantic version the coordinators' NATS micro
// service announces; its major number is Version.
const ServiceVersion = "1.0.0"
