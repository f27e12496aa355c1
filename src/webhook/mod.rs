//! HTTPS admission (validate, mutate) and CRD conversion webhook server.
