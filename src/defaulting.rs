//! Defaulting: the CRD's structural defaults and the autoscaler defaults, as an RFC 6902
//! JSON Patch against the original object. Pure and idempotent.
