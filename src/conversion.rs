//! `ray.io/v1alpha1` ⇄ `ray.io/v1` conversion, lossless through an annotation. Pure.
