//! Structured output (annotation): `[output]` schemas sent to the mock over 127.0.0.1, every
//! reply validated, invalid replies re-asked, `parsed` on each line, `output.<property>`
//! columns in results.csv, and agreement across models.

#[path = "../support/mod.rs"]
mod support;

mod agreement;
mod columns;
mod reask;
